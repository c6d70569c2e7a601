"""decode pool -> batched encode -> commit.

Decoding (PIL with JPEG draft, OpenCV for video, PyAV for sound) runs in a thread pool a few
batches ahead of the model, so the model never waits; each batch of files is
committed with its embeddings in one SQLite transaction. A file whose content
hash matches a file that vanished in the same scan is a move: its row follows
it and its vectors are reused, nothing is encoded.

Sound needs the audio tower bound to the active model: audio files become windows of sound, and a
video gets sound items from its soundtrack beside its frames (a soundtrack that cannot be read
costs only the sound: the frames index). With no tower (the starter model) audio files are passed
over and counted, not failed, and videos index their frames alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image

from clifs.engine.catalog import IndexedFile, NewItem
from clifs.engine.library import Library
from clifs.engine.media import MediaError, content_hash, open_image
from clifs.engine.models.audio_base import AudioEncoder
from clifs.engine.models.base import Encoder
from clifs.engine.paths import canonical_folder
from clifs.engine.photo_metadata import PhotoMeta, video_metadata
from indexer.scan import DiskFile, ScanResult, diff, walk

log = logging.getLogger(__name__)

#: The start of a video's sound note when its soundtrack could not be read (its frames are indexed).
SOUNDTRACK_UNREAD = "soundtrack not indexed"


@dataclass
class IndexReport:
    added: int = 0
    moved: int = 0
    removed: int = 0
    unchanged: int = 0
    items: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    stopped: bool = False
    #: Audio files passed over because the active model has no audio tower (not failures).
    audio_unindexed: int = 0
    #: Videos indexed by their frames alone because their soundtrack could not be read: (path, why).
    soundtracks_unread: list[tuple[str, str]] = field(default_factory=list)

    @property
    def indexed(self) -> int:
        return self.added


def audio_not_indexed(files: int, why: str | None) -> str:
    """The one line for audio files a model without a usable audio tower passes over."""
    line = f"no audio model for the active model: {files} audio file{'s' if files != 1 else ''} not indexed"
    return line + (f" ({why})" if why else "")


@dataclass
class ReadMedia:
    """A file read and decoded, before the model's preprocessing: what a decode worker hands the model."""

    file: DiskFile
    content_hash: str
    images: list[Image.Image]  # upright RGB: the picture, or a video's sampled frames
    timestamps: list[float | None]
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    meta: PhotoMeta | None = None
    sounds: np.ndarray | None = None  # (n, window samples) for the audio tower
    sound_times: list[float] = field(default_factory=list)
    sound_note: str | None = None


@dataclass
class _Decoded:
    read: ReadMedia
    tensors: list[Any]  # what the encoder's preprocess gives (a numpy array on the CPU runtime)

    @property
    def items(self) -> int:
        return len(self.tensors) + len(self.read.sound_times)


@dataclass
class Embedded:
    """A file with its vectors (one per image of its ``ReadMedia``, then one per sound window), ready to commit."""

    read: ReadMedia
    vectors: list[np.ndarray]
    sound_vectors: list[np.ndarray] = field(default_factory=list)

    @property
    def file(self) -> DiskFile:
        return self.read.file


@dataclass
class Failed:
    file: DiskFile
    reason: str


ProgressFn = Callable[[DiskFile, str | None], None]  # (file, error or None) after each file


class Pipeline:
    def __init__(
        self,
        library: Library,
        *,
        batch_size: int | None = None,
        workers: int | None = None,
        on_file: ProgressFn | None = None,
        should_stop: Callable[[], bool] | None = None,
    ):
        self.library = library
        self.batch_size = batch_size or library.settings.batch_size
        self.workers = workers or library.settings.decode_workers
        self.on_file = on_file or (lambda f, err: None)
        self.should_stop = should_stop or (lambda: False)
        self.writer = CatalogWriter(library, self.on_file)

    @property
    def encoder(self) -> Encoder:
        """The whole model, loaded when the first file needs decoding: a run with nothing to encode loads none."""
        return self.library.encoder

    @property
    def audio_encoder(self) -> AudioEncoder | None:
        """The audio tower bound to the active model, or None (the starter model has none)."""
        return self.library.audio_encoder

    # -- scanning ---------------------------------------------------------------------------------
    def scan(self, roots: Iterable[str]) -> ScanResult:
        """New, changed and deleted files; an unchanged file with no vector for this model (indexed
        under another model) counts as changed, so switching models re-embeds and never mixes spaces."""
        total = ScanResult()
        other_model = set(self.library.catalog.missing_embeddings(self.library.model.model_id))
        for root in roots:
            known = self.library.catalog.file_states_under(root)
            for path in other_model & known.keys():
                del known[path]
            part = diff(walk(root, self.library.settings.excludes, total.skipped_in(root)), known)
            total.described += self.library.describe_under(root)  # files indexed before clifs read metadata
            total.to_index += part.to_index
            total.unchanged += part.unchanged
            total.deleted += part.deleted
        return total

    def index_folders(self, roots: Iterable[str], scan: ScanResult | None = None) -> IndexReport:
        """Bring the catalog in line with the folders: index new/changed, move, delete.

        ``scan`` is a fresh ``self.scan(roots)`` when the caller already made one (to size a progress bar).
        """
        started = time.monotonic()
        scan = scan or self.scan(canonical_folder(r) for r in roots)
        report = IndexReport(unchanged=scan.unchanged)
        to_encode = self.apply_moves(scan, report)
        report.removed += self.library.remove_files(scan.deleted)
        self.index_files(to_encode, report)
        self.library.flush()
        report.seconds = time.monotonic() - started
        return report

    def apply_moves(self, scan: ScanResult, report: IndexReport) -> list[DiskFile]:
        """Files whose content matches a vanished file are moves; the rest need encoding."""
        vanished = set(scan.deleted)
        if not vanished:
            return scan.to_index
        remaining = []
        for f in scan.to_index:
            old = self._moved_from(f, vanished)
            if old is None:
                remaining.append(f)
                continue
            self.library.move_file(old, f.path, f.mtime)
            vanished.discard(old)
            report.moved += 1
            self.on_file(f, None)
        scan.deleted = [p for p in scan.deleted if p in vanished]
        return remaining

    def _moved_from(self, f: DiskFile, vanished: set[str]) -> str | None:
        if f.problem:
            return None
        try:
            h = content_hash(f.path, f.size)
        except OSError:
            return None
        return next((p for p in self.library.catalog.files_with_hash(h) if p in vanished), None)

    # -- decode -> encode -> commit ---------------------------------------------------------------
    def index_files(self, files: list[DiskFile], report: IndexReport | None = None) -> IndexReport:
        report = report or IndexReport()
        files = self._without_unheard_audio(files, report)
        pending: list[_Decoded] = []
        pending_items = 0
        # closing: a commit that fails (a full disk) stops the decode pool now, not when collected.
        with contextlib.closing(self._decoded(files)) as decoded:
            for result in decoded:
                if isinstance(result, Failed):
                    self.writer.failed(result, report)
                    continue
                pending.append(result)
                pending_items += result.items
                if pending_items >= self.batch_size:
                    self._commit(pending, report)
                    pending, pending_items = [], 0
                if self.should_stop():
                    report.stopped = True
                    return report  # the uncommitted batch is dropped: it is re-found next scan
        self._commit(pending, report)
        return report

    def _without_unheard_audio(self, files: list[DiskFile], report: IndexReport) -> list[DiskFile]:
        """Audio files, when no audio tower is bound to the model, are counted and passed over."""
        if not any(f.kind == "audio" for f in files) or self.audio_encoder is not None:
            return files
        kept = []
        for f in files:
            if f.kind != "audio":
                kept.append(f)
                continue
            report.audio_unindexed += 1
            self.on_file(f, None)
        return kept

    def _decoded(self, files: list[DiskFile]) -> Iterator[_Decoded | Failed]:
        """Decode in a thread pool, in order, with a bounded amount of work in flight.

        A video costs a whole batch: its hundreds of frames would otherwise pile up in memory.
        """
        budget = max(2 * self.batch_size, 4 * self.workers)
        if files:
            _ = self.encoder  # loaded here, once, before the decode threads use its preprocessing
        if any(f.kind in ("video", "audio") for f in files):
            _ = self.audio_encoder  # and the audio tower, before the threads cut windows to its length

        def cost(f: DiskFile) -> int:
            return self.batch_size if f.kind in ("video", "audio") else 1

        with ThreadPoolExecutor(self.workers, thread_name_prefix="clifs-decode", initializer=_yield_to_model) as pool:
            queue: deque[tuple[Future, int]] = deque()
            in_flight = 0
            it = iter(files)
            upcoming = next(it, None)
            try:
                while upcoming is not None or queue:
                    while upcoming is not None and (not queue or in_flight + cost(upcoming) <= budget):
                        queue.append((pool.submit(self._decode, upcoming), cost(upcoming)))
                        in_flight += cost(upcoming)
                        upcoming = next(it, None)
                    future, spent = queue.popleft()
                    in_flight -= spent
                    yield future.result()
                    if self.should_stop():
                        return
            finally:  # stopped, or closed by the consumer: what has not started is not decoded
                for pending, _ in queue:
                    pending.cancel()

    def _decode(self, f: DiskFile) -> _Decoded | Failed:
        hears = f.kind in ("video", "audio")  # a picture-only run never loads the audio tower
        read = read_media(f, self.library.settings.max_image_pixels, self.audio_encoder if hears else None)
        if isinstance(read, Failed):
            return read
        tensors = [self.encoder.preprocess(im) for im in read.images]
        read.images = []  # preprocessed: a video's frames are not held twice until the commit
        return _Decoded(read, tensors)

    def _encode_sounds(self, pending: list[_Decoded]) -> list[np.ndarray]:
        windows = [d.read.sounds for d in pending if d.read.sound_times]
        if not windows:
            return []
        stacked = np.concatenate(windows)
        return [
            v
            for start in range(0, len(stacked), self.batch_size)
            for v in self.audio_encoder.encode_audio(stacked[start : start + self.batch_size])
        ]

    def _commit(self, pending: list[_Decoded], report: IndexReport) -> None:
        if not pending:
            return
        tensors = [t for d in pending for t in d.tensors]
        vectors = []
        for start in range(0, len(tensors), self.batch_size):
            vectors.extend(self.encoder.encode_images(self.encoder.stack(tensors[start : start + self.batch_size])))
        heard = self._encode_sounds(pending)
        embedded, cursor, heard_cursor = [], 0, 0
        for d in pending:
            sounds = len(d.read.sound_times)
            embedded.append(
                Embedded(
                    d.read,
                    vectors[cursor : cursor + len(d.tensors)],
                    heard[heard_cursor : heard_cursor + sounds],
                )
            )
            cursor += len(d.tensors)
            heard_cursor += sounds
        self.writer.commit(embedded, report)


class CatalogWriter:
    """The one writer of a run: commits embedded files and records failures through the library
    (catalog first, then the vector index), and reports each file. The in-process pipeline and the
    cluster path (indexer/cluster.py) both commit through it."""

    def __init__(self, library: Library, on_file: ProgressFn):
        self.library = library
        self.on_file = on_file

    def failed(self, failure: Failed, report: IndexReport) -> None:
        f = failure.file
        self.library.record_failure(f.path, f.kind, f.size, f.mtime, failure.reason)
        report.failed.append((f.path, failure.reason))
        self.on_file(f, failure.reason)

    def commit(self, embedded: list[Embedded], report: IndexReport, runtime: str | None = None) -> None:
        """One transaction for the batch, then the vector index follows. ``runtime``: what made the
        vectors, when not the library's own model (``Library.add_files``)."""
        if not embedded:
            return
        files = []
        for e in embedded:
            r = e.read
            items = [NewItem(ts, v) for ts, v in zip(r.timestamps, e.vectors, strict=True)]
            items += [NewItem(ts, v, "sound") for ts, v in zip(r.sound_times, e.sound_vectors, strict=True)]
            files.append(
                IndexedFile(
                    r.file.path,
                    r.file.kind,
                    r.file.size,
                    r.file.mtime,
                    r.content_hash,
                    items,
                    r.width,
                    r.height,
                    r.duration,
                    r.meta,
                    r.sound_note,
                )
            )
        self.library.add_files(files, runtime)
        report.soundtracks_unread += [
            (e.file.path, e.read.sound_note)
            for e in embedded
            if e.read.sound_note and e.read.sound_note.startswith(SOUNDTRACK_UNREAD)
        ]
        report.added += len(files)
        report.items += sum(len(f.items) for f in files)
        for e in embedded:
            self.on_file(e.read.file, None)
        # After on_file: these files are committed even if saving the cache fails (a full disk).
        self.library.flush(every_seconds=30.0)


def read_media(f: DiskFile, max_image_pixels: int, audio: AudioEncoder | None = None) -> ReadMedia | Failed:
    """Hash and decode one file (a picture, a video's sampled frames, a sound's windows) with its
    metadata, or say why not. ``audio``: the tower whose rate and window length sound is cut to;
    None reads no sound (videos give their frames alone).

    Runs in the in-process decode threads and in the cluster's decode tasks alike.
    """
    if f.problem:
        return Failed(f, f.problem)
    try:
        h = content_hash(f.path, f.size)
        if f.kind == "audio":
            if audio is None:
                return Failed(f, "no audio model for the active model")
            return _read_sound(f, h, audio)
        if f.kind == "video":
            from clifs.engine.video import sample_frames

            try:
                video = sample_frames(f.path)
            except MediaError as exc:  # an MP4 holding only sound (a phone's voice memo) is a sound
                if str(exc).startswith("audio only") and audio is not None:
                    return _read_sound(replace(f, kind="audio"), h, audio)
                raise
            read = ReadMedia(
                f,
                h,
                [im for _, im in video.frames],
                [t for t, _ in video.frames],
                video.width,
                video.height,
                video.duration,
                video_metadata(f.path).with_mtime_fallback(f.mtime),
            )
            if audio is not None:
                _add_soundtrack(read, audio)
            return read
        image = open_image(f.path, max_image_pixels, describe=True)
        full = image.info.get("original_size", image.size)
        meta = image.info.get("photo_meta", PhotoMeta()).with_mtime_fallback(f.mtime)
        return ReadMedia(f, h, [image], [None], full[0], full[1], meta=meta)
    except MediaError as exc:
        return Failed(f, str(exc))
    except FileNotFoundError:
        return Failed(f, "file disappeared before it could be read")
    except OSError as exc:
        return Failed(f, f"cannot read file: {exc.strerror or exc}")
    except Exception as exc:  # a decoder bug on one file must not stop the run
        log.exception("unexpected error decoding %s", f.path)
        return Failed(f, f"unexpected error: {type(exc).__name__}: {exc}")


def _read_sound(f: DiskFile, content: str, audio: AudioEncoder) -> ReadMedia:
    from clifs.engine.audio import read_sound

    sound = read_sound(f.path, audio.sample_rate, audio.window_seconds)
    return ReadMedia(
        f,
        content,
        [],
        [],
        duration=sound.duration,
        meta=PhotoMeta().with_mtime_fallback(f.mtime),
        sounds=sound.windows,
        sound_times=sound.starts,
        sound_note="silent" if sound.silent else None,
    )


def _add_soundtrack(video: ReadMedia, audio: AudioEncoder) -> None:
    """The soundtrack's windows beside the frames; one that cannot be read is noted, never fatal."""
    from clifs.engine.audio import read_sound

    try:
        sound = read_sound(video.file.path, audio.sample_rate, audio.window_seconds, soundtrack=True)
    except MediaError as exc:
        video.sound_note = f"{SOUNDTRACK_UNREAD}: {exc}"
        return
    if sound is None:
        return  # no audio stream: a silent film is no news
    video.sounds, video.sound_times = sound.windows, sound.starts
    video.sound_note = "silent soundtrack" if sound.silent else None


def _yield_to_model() -> None:
    """Run decode threads at a lower OS priority than the model's threads.

    On a small CPU torch's intra-op threads wait for each other, so a decode thread that takes
    one of their cores stalls the whole batch; at lower priority decoding fills the gaps instead.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not Linux, or not permitted: decode at normal priority
        pass
