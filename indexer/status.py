"""What the indexer is doing, in memory (for listeners) and in ``<home>/status.json`` (for other processes).

Kept free of torch and the pipeline, so `clifs status` answers in a blink while an indexer runs.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATUS_NAME = "status.json"


@dataclass
class IndexerStatus:
    state: str  # "idle" | "scanning" | "indexing" | "watching" | "paused" | "stopped"
    queued: int = 0
    done: int = 0
    failed: int = 0
    rate: float = 0.0  # files per second over the recent window
    current: str | None = None  # file being processed
    paused: bool = False
    recent_errors: list[tuple[str, str]] = field(default_factory=list)  # (path, reason), newest last


def write_status_file(home: Path, status: IndexerStatus, **extra: Any) -> None:
    """Replace status.json atomically (a reader sees the old or the new file, never half of one)."""
    path = Path(home) / STATUS_NAME
    data = asdict(status) | {"pid": os.getpid(), "updated": time.time()} | extra
    tmp = path.with_name(f"{STATUS_NAME}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def read_status_file(home: Path) -> dict[str, Any] | None:
    try:
        return json.loads((Path(home) / STATUS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
