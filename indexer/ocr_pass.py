"""The OCR pass: after the embedding pass, read the words in the indexed pictures.

It works from the catalog, not from a scan: the files still to read are the indexed ones with no
OCR record for the current engine (``Catalog.ocr_todo``), so a killed run loses nothing and the
next one reads only what was not committed, and a newer engine reads everything again. Each file
is committed on its own (one transaction: its lines, its full-text row, its record), a file that
cannot be read is recorded as failed with the reason (once; the embedding is untouched).

The reading itself runs on a thread of its own at a lower OS priority (ONNX Runtime's threads,
created from it, inherit that), so the embedding pass, searches and the window come first.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from clifs.engine.catalog import OcrRead, OcrTodo
from clifs.engine.library import Library
from clifs.engine.media import MediaError
from clifs.engine.ocr import OcrUnavailable

log = logging.getLogger(__name__)

#: Files fetched from the catalog per query.
TODO_CHUNK = 16
#: OS niceness of the reading thread (0: normal; 19: lowest).
NICENESS = 10

FileDone = Callable[[str, str | None, int], None]  # (path, error or None, lines read)


@dataclass
class OcrReport:
    read: int = 0  # files read (with or without text)
    with_text: int = 0  # of those, files in which some text was found
    lines: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    vanished: int = 0  # files gone from disk before they could be read: left to the scan, not failed
    stopped: bool = False  # asked to stop (or out of time) with files left
    unavailable: str | None = None  # the engine could not run at all


class OcrPass:
    def __init__(self, library: Library, *, on_file: FileDone | None = None):
        self.library = library
        self.on_file = on_file or (lambda path, error, lines: None)
        self._pool: ThreadPoolExecutor | None = None

    @property
    def engine(self):
        return self.library.ocr

    def todo_count(self, roots: Iterable[str | None] = (None,)) -> int:
        version = self.engine.version
        return sum(self.library.catalog.ocr_todo_count(version, root) for root in roots)

    def run(
        self,
        roots: Iterable[str | None] = (None,),
        *,
        should_stop: Callable[[], bool] | None = None,
        budget_seconds: float | None = None,
    ) -> OcrReport:
        """Read every file still to read under ``roots`` (None: the whole catalog), committing each.

        Returns early (``stopped``) when ``should_stop()`` says so or after ``budget_seconds``."""
        report = OcrReport()
        started = time.monotonic()
        should_stop = should_stop or (lambda: False)
        version = self.engine.version
        try:
            for root in roots:
                after = 0
                while True:
                    todo = self.library.catalog.ocr_todo(version, root, limit=TODO_CHUNK, after=after)
                    if not todo:
                        break
                    for t in todo:
                        if should_stop() or (
                            budget_seconds is not None and time.monotonic() - started >= budget_seconds
                        ):
                            report.stopped = True
                            return report
                        after = t.file_id
                        self._one(t, version, report)
        except OcrUnavailable as exc:
            report.unavailable = str(exc)
        finally:
            report.seconds = time.monotonic() - started
        return report

    def _one(self, t: OcrTodo, version: str, report: OcrReport) -> None:
        began = time.monotonic()
        error = None
        items: dict[int, list] = {}
        try:
            results = self._reader().submit(self._read, t).result()
            items = {r.item_id: [(line.text, line.confidence, line.box) for line in r.lines] for r in results}
        except OcrUnavailable:
            raise
        except MediaError as exc:
            error = str(exc)
        except FileNotFoundError:
            error = "file disappeared before it could be read"
        except OSError as exc:
            error = f"cannot read file: {exc.strerror or exc}"
        except Exception as exc:  # an engine error on one file must not stop the pass
            log.exception("OCR failed on %s", t.path)
            error = f"text could not be read: {type(exc).__name__}: {exc}"
        seconds = time.monotonic() - began
        if error is not None and not os.path.lexists(t.path):
            report.vanished += 1  # deleted meanwhile: the watcher or the next scan removes its row
            return
        self.library.catalog.commit_ocr([OcrRead(t.file_id, version, items, error, seconds)])
        lines = sum(len(v) for v in items.values())
        if error:
            report.failed.append((t.path, error))
        else:
            report.read += 1
            report.lines += lines
            report.with_text += lines > 0
        self.on_file(t.path, error, lines)

    def _read(self, t: OcrTodo):
        return self.engine.read_file(t.path, t.kind, t.items, self.library.settings.max_image_pixels)

    def _reader(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="clifs-ocr", initializer=_lower_priority)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)
    except (AttributeError, OSError):  # not Linux, or not permitted
        pass
