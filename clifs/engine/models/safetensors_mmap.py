"""Read a safetensors file as memory maps, with numpy alone: no torch, no copy of the weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def memmap_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file as a read-only memory map (the format: u64 header length, JSON, data)."""
    with path.open("rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(header_len))
    start = 8 + header_len
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        out[name] = np.memmap(path, dtype=_DTYPES[info["dtype"]], mode="r", offset=start + begin, shape=shape)
        assert out[name].nbytes == end - begin, f"{name}: size does not match its offsets"
    return out
