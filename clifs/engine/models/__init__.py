"""Model backends: the registry maps names to encoders (open_clip, the starter model, the test model)."""
