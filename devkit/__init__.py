"""The dev kit: the shapes-world generator, the contrastive trainer and the evaluation metrics.

Used by tests, benchmarks and training; never imported by the runtime (clifs, indexer, gui)."""
