"""The indexer service run once over a folder, start to idle: shared by the service benchmarks."""

from __future__ import annotations

import time
from pathlib import Path

from clifs.engine.library import Library
from indexer.service import IndexerService, IndexerStatus


def index_with_service(library: Library, folder: Path) -> tuple[float, IndexerStatus]:
    """(seconds from start to idle, the final status); ``library`` is left open for the caller to close."""
    start = time.perf_counter()
    service = IndexerService(library, watch=False)
    service.add_folder(str(folder))
    service.start()
    assert service.wait_idle(timeout=1800)
    elapsed = time.perf_counter() - start
    service.stop()
    return elapsed, service.status()
