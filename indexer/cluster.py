"""`clifs index --cluster`: decode and embed on a Ray cluster, commit on this machine.

The scan, the diff, moves and deletions are the in-process pipeline's (``ClusterPipeline`` is a
``Pipeline``); only ``index_files`` differs. The files to encode become a Ray Data pipeline:

    file list in chunks -> read_chunks (stateless tasks: hash, decode, metadata) -> Embedder (an actor pool that
    holds the model: torch fp16 on a GPU each, else the CPU runtime) -> streamed back to this process

where the one ``CatalogWriter`` commits them through the same transaction path as in-process. The
catalog and the vector index stay single-writer here. Workers read files by the paths this machine
scanned, so they need the folders at the same paths (a local cluster, or a shared mount), and the
model at the same spec; on CPU workers the exported model is read from this clifs home's cache.

A worker that dies is restarted by Ray and its chunk retried; a file seen twice is committed once.
Killing this process loses only the chunks not committed: the next run's scan skips the rest.

Imported only for ``--cluster``: the desktop install has no ray, and ``import indexer`` never imports it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import re
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from clifs.engine.config import Settings
from clifs.engine.errors import UsageError
from clifs.engine.library import Library
from clifs.engine.models.base import Encoder
from indexer.pipeline import Embedded, Failed, IndexReport, Pipeline, ReadMedia, read_media
from indexer.scan import DiskFile

log = logging.getLogger(__name__)

#: Model threads of one CPU actor, at most (more actors rather than wider ones).
CPU_ACTOR_THREADS = 4
#: Preprocessing threads of a GPU actor (resize and normalise, outside the GIL): the in-process
#: pipeline preprocesses in its decode threads; a GPU actor must keep up with fp16 on its own.
GPU_PREPROCESS_THREADS = 8


class ClusterUnavailable(Exception):
    """Ray is not installed, or the cluster cannot be reached: one line for the person."""


def connect(address: str) -> dict[str, float]:
    """Join the Ray cluster at ``address`` ("auto", "local" for a fresh local instance, "host:port" or
    "ray://host:10001"); returns its resources. Raises ClusterUnavailable with the reason."""
    try:
        import ray
    except ImportError:
        raise ClusterUnavailable(
            "--cluster needs Ray, which this install lacks: pip install 'clifs[cluster]'"
        ) from None
    if ray.is_initialized():
        return ray.cluster_resources()
    if address not in ("local", "auto"):
        _check_reachable(address)
    _quiet_ray()
    try:
        ray.init(
            address=None if address == "local" else address,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        raise ClusterUnavailable(f"cannot reach the Ray cluster at {address}: {_first_line(exc)}") from None
    return ray.cluster_resources()


def _quiet_ray() -> None:
    """Ray's notices and Ray Data's progress lines would bury clifs's own output; -v shows them."""
    if logging.getLogger().isEnabledFor(logging.INFO):
        return
    from ray.data import DataContext

    logging.getLogger("ray").setLevel(logging.ERROR)
    for handler in logging.getLogger("ray.data").handlers:  # its own console handler; its log file keeps all
        if not isinstance(handler, logging.FileHandler):
            handler.setLevel(logging.CRITICAL)
    DataContext.get_current().enable_progress_bars = False


def disconnect() -> None:
    import ray

    ray.shutdown()


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, with the address, where Ray would retry for a minute."""
    host_port = address.removeprefix("ray://")
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterUnavailable(f"not a Ray address: {address} (use host:port, ray://host:10001, auto or local)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ClusterUnavailable(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


def _user_error(exc: BaseException) -> str:
    """The exception a worker's code raised, as one line. Ray keeps it only as text in its own error's
    traceback: the first ``SomeError: message`` line there that is not one of Ray's wrappers."""
    for line in str(exc).splitlines():
        found = re.match(r"\s*([A-Za-z_][\w.]*(?:Error|Exception|Unavailable)): (.+)", line)
        if found and not found[1].startswith("ray."):
            return f"{found[1].rsplit('.', 1)[-1]}: {found[2]}"
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


@dataclasses.dataclass(frozen=True)
class ActorPlan:
    """How the model is spread over the cluster."""

    actors: int
    gpus_per_actor: float  # 0: CPU actors, on the CPU runtime
    threads: int  # per actor: the model's threads on a CPU, preprocessing threads on a GPU

    @classmethod
    def for_resources(cls, resources: dict[str, float], actors: int | None = None) -> ActorPlan:
        """One actor per GPU when there are GPUs; else one per ``CPU_ACTOR_THREADS`` CPUs (at least one),
        leaving CPUs to the decode tasks."""
        gpus = int(resources.get("GPU", 0))
        if gpus:
            return cls(actors or gpus, 1.0, GPU_PREPROCESS_THREADS)
        cpus = max(1, int(resources.get("CPU", 1)))
        threads = min(CPU_ACTOR_THREADS, cpus)
        return cls(actors or max(1, cpus // CPU_ACTOR_THREADS), 0.0, threads)


def load_worker_encoder(settings: Settings, model_id: str) -> Encoder:
    """The model as a worker runs it, from the same spec and cache as in-process: on a CPU the exported
    towers on ONNX Runtime, on a GPU the model on torch (fp16). Checked to be the driver's space."""
    from clifs.engine.models import model_cache
    from clifs.engine.models.onnx_runtime import use_onnx
    from clifs.engine.models.registry import load_model

    def whole() -> Encoder:
        return load_model(settings.model, settings.device).encoder

    encoder = None
    if use_onnx(settings.runtime, settings.device):
        encoder = model_cache.load(
            settings.model_cache_dir, settings.model, settings.precision, settings.threads, whole
        )
    encoder = encoder or whole()
    if encoder.model_id != model_id:
        raise RuntimeError(f"the worker loaded {encoder.model_id}, not the driver's {model_id}")
    return encoder


def chunks(files: list[DiskFile], batch_size: int) -> list[list[DiskFile]]:
    """The files in scan order, in chunks of ``batch_size`` (a video alone: its frames are a batch).

    int8 activations are quantised per batch, so a picture's vector depends, very slightly, on its
    batch-mates: for pictures that all decode these are the in-process pipeline's own model batches,
    and the vectors are equal (bench/cluster_overhead.py). A video or a failed file shifts the
    in-process cuts after it; vectors there differ by int8 rounding only (cosine ~0.9997 measured).
    """
    out: list[list[DiskFile]] = [[]]
    for f in files:
        if f.kind == "video" or len(out[-1]) >= batch_size:
            out.append([])
        out[-1].append(f)
        if f.kind == "video":
            out.append([])
    return [c for c in out if c]


def read_chunks(batch: dict[str, np.ndarray], max_image_pixels: int) -> dict[str, np.ndarray]:
    """A decode task: each chunk (pickled DiskFiles) -> its files' ReadMedia or Failed, pickled."""
    results = [pickle.dumps([read_media(f, max_image_pixels) for f in pickle.loads(blob)]) for blob in batch["files"]]
    return {"chunk": batch["chunk"], "result": np.array(results, dtype=object)}


@dataclasses.dataclass(frozen=True)
class EmbedderConfig:
    settings: Settings  # the driver's, with the worker's device and threads
    model_id: str  # the space the driver commits to: a worker that loads another refuses to start
    batch_size: int
    preprocess_threads: int = 1  # more on a GPU, where the model waits for them
    #: Fault injection for the tests: the first actor to take a batch exits its process, once.
    die_once_marker: str | None = None


class Embedder:
    """An actor of the pool: holds the model, turns decoded files into embedded ones."""

    def __init__(self, config: EmbedderConfig):
        self.encoder = load_worker_encoder(config.settings, config.model_id)
        #: What made the vectors, as the catalog records it: "ray onnxruntime int8", "ray torch fp16 cuda".
        self.runtime = "ray " + getattr(self.encoder, "runtime", type(self.encoder).__name__)
        self.batch_size = config.batch_size
        self.die_once_marker = config.die_once_marker
        threads = config.preprocess_threads
        self.preprocessing = ThreadPoolExecutor(threads, "clifs-preprocess") if threads > 1 else None
        #: On a GPU two chunks are in the actor at once (one preprocessing while the other encodes),
        #: the model running one at a time.
        self.model_lock = threading.Lock()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._maybe_die()
        results = [pickle.dumps(self._embed(pickle.loads(blob))) for blob in batch["result"]]
        return {
            "chunk": batch["chunk"],
            "result": np.array(results, dtype=object),
            "runtime": np.array([self.runtime] * len(results), dtype=object),
        }

    def _embed(self, reads: list[ReadMedia | Failed]) -> list[Embedded | Failed]:
        """One chunk's decoded files -> embedded ones, in model batches as in-process."""
        pictures = [r for r in reads if isinstance(r, ReadMedia)]
        mapper = self.preprocessing.map if self.preprocessing is not None else map
        prepared = dict(zip((id(r) for r in pictures), mapper(self._preprocess, pictures)))
        done: list[Embedded | Failed] = []
        todo: list[tuple[int, ReadMedia, list[Any]]] = []
        for i, r in enumerate(reads):
            done.append(r)
            if isinstance(r, ReadMedia):
                tensors = prepared[id(r)]
                if isinstance(tensors, Exception):  # a picture the model's preprocessing refuses: that file only
                    done[i] = Failed(r.file, f"unexpected error: {type(tensors).__name__}: {tensors}")
                else:
                    todo.append((i, r, tensors))
        tensors = [t for _, _, ts in todo for t in ts]
        vectors: list[np.ndarray] = []
        with self.model_lock:
            for start in range(0, len(tensors), self.batch_size):
                batch = self.encoder.stack(tensors[start : start + self.batch_size])
                vectors.extend(self.encoder.encode_images(batch))
        cursor = 0
        for i, r, ts in todo:
            r.images = []  # the pictures do not travel back
            done[i] = Embedded(r, vectors[cursor : cursor + len(ts)])
            cursor += len(ts)
        return done

    def _preprocess(self, read: ReadMedia) -> list[Any] | Exception:
        try:
            return [self.encoder.preprocess(im) for im in read.images]
        except Exception as exc:
            return exc

    def _maybe_die(self) -> None:
        marker = self.die_once_marker
        if marker is None:
            return
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.close(fd)
        os._exit(1)


class ClusterPipeline(Pipeline):
    """The in-process pipeline with ``index_files`` run on a Ray cluster (see the module's docstring)."""

    def __init__(
        self,
        library: Library,
        plan: ActorPlan,
        *,
        die_once_marker: Path | None = None,
        **kwargs: Any,
    ):
        super().__init__(library, **kwargs)
        self.plan = plan
        self.die_once_marker = die_once_marker
        #: Images the cluster's actors encoded for the files committed (the driver's model encodes none).
        self.images_encoded = 0

    def index_files(self, files: list[DiskFile], report: IndexReport | None = None) -> IndexReport:
        """Pictures and video frames on the cluster; sounds here, in-process (the workers cut no sound:
        a video indexed through the cluster has no sound items)."""
        report = report or IndexReport()
        sounds = [f for f in files if f.kind == "audio"]
        if sounds:
            super().index_files(sounds, report)
            files = [f for f in files if f.kind != "audio"]
        if not files:
            return report
        # Only the model's identity is needed here (its saved text side; the first run exports the
        # model, which the CPU workers then read): the workers encode.
        model_id = self.library.model.model_id
        committed: set[str] = set()  # a retried chunk may bring a file back: it is committed once
        pending: list[Embedded] = []
        pending_items = 0
        runtime = None
        for result, runtime in self._results(files, model_id):
            if result.file.path in committed:
                continue
            committed.add(result.file.path)
            if isinstance(result, Failed):
                self.writer.failed(result, report)
                continue
            pending.append(result)
            pending_items += len(result.vectors)
            self.images_encoded += len(result.vectors)
            if pending_items >= self.batch_size:
                self.writer.commit(pending, report, runtime)
                pending, pending_items = [], 0
            if self.should_stop():
                report.stopped = True
                return report  # the uncommitted batch is dropped: it is re-found next scan
        self.writer.commit(pending, report, runtime)
        return report

    def _results(self, files: list[DiskFile], model_id: str) -> Iterator[tuple[Embedded | Failed, str]]:
        import ray.data
        import ray.exceptions

        plan = self.plan
        worker_settings = dataclasses.replace(
            self.library.settings,
            device="cuda" if plan.gpus_per_actor else "cpu",
            threads=self.library.settings.threads if plan.gpus_per_actor else plan.threads,
        )
        rows = [{"chunk": i, "files": pickle.dumps(c)} for i, c in enumerate(chunks(files, self.batch_size))]
        ds = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), 1000)))
        ds = ds.map_batches(
            read_chunks,
            batch_size=1,
            fn_kwargs={"max_image_pixels": self.library.settings.max_image_pixels},
            num_cpus=0.5,
        )
        config = EmbedderConfig(
            worker_settings,
            model_id,
            self.batch_size,
            plan.threads if plan.gpus_per_actor else 1,
            str(self.die_once_marker) if self.die_once_marker else None,
        )
        if plan.gpus_per_actor:  # a chunk preprocesses while the one before it encodes
            compute = ray.data.ActorPoolStrategy(
                size=plan.actors, max_concurrent_calls_per_actor=2, enable_true_multi_threading=True
            )
        else:
            compute = ray.data.ActorPoolStrategy(size=plan.actors)
        ds = ds.map_batches(
            Embedder,
            batch_size=1,
            fn_constructor_kwargs={"config": config},
            compute=compute,
            num_gpus=plan.gpus_per_actor or None,
            num_cpus=1,
        )
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                for blob, runtime in zip(batch["result"], batch["runtime"]):
                    for result in pickle.loads(blob):
                        yield result, str(runtime)
        except ray.exceptions.RayError as exc:  # a worker's own error (no model there), not a crash: Ray retries those
            raise UsageError(
                f"the cluster's workers failed ({_user_error(exc)}); "
                "the files committed so far are kept: fix it and run `clifs index` again for the rest"
            ) from None
