"""The engine: catalog, vectors, search, library, media, models, vision. No Qt, no watchdog,
no import of indexer/ or gui/ (import-linter contracts in pyproject.toml keep it so)."""
