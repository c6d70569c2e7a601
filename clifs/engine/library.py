"""The Library ties the catalog, the vector index and the model together.

It is what scripts import (``from clifs import Library``) and what the
indexer writes through, so the catalog and the FAISS cache change together:
the catalog commits first (the truth), then the in-memory index follows, and
``flush`` saves the index with the generation it reflects.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from clifs.engine.catalog_reads import CatalogReader, CatalogReads
from clifs.engine.config import Settings
from clifs.engine.models.audio_base import AudioEncoder
from clifs.engine.models.base import Encoder, TextEncoder
from clifs.engine.paths import canonical_file, canonical_folder
from clifs.engine.search import Hit, Query, Searcher
from clifs.engine.vectors import VectorIndex

if TYPE_CHECKING:
    from clifs.engine.catalog import Catalog, IndexedFile

log = logging.getLogger(__name__)


class Library:
    def __init__(
        self,
        settings: Settings | Path | str | None = None,
        *,
        encoder: Encoder | None = None,
        load_model: bool = True,
    ):
        if not isinstance(settings, Settings):
            settings = Settings.load(settings)
        self.settings = settings
        self._catalog: Catalog | None = None
        #: What searching reads through: the catalog on a plain sqlite3 connection, without importing
        #: SQLAlchemy (a third of a cold search), where the catalog needs no creating or upgrading;
        #: else the whole Catalog, which does that (or says in one line why it cannot).
        self.reads: CatalogReads = CatalogReader.open(settings.catalog_path) or self.catalog
        self.fallback_reason: str | None = None
        #: Things a person should be told about this library (e.g. the catalog lost commits), one line each.
        self.warnings: list[str] = []
        self._encoder = encoder
        self._text_only: TextEncoder | None = None
        self._torch: Encoder | None = None  # the model on torch, when something needed it
        self._runtime_recorded: set[tuple[str, str]] = set()
        self._vectors: VectorIndex | None = None
        self._searcher: Searcher | None = None
        self._last_save = time.monotonic()
        self._ocr = None
        self._audio: AudioEncoder | None = None
        self._audio_looked_up = False
        #: Why the audio tower bound to the model cannot be used (its weights are missing), or None.
        self.audio_unavailable: str | None = None
        if load_model and encoder is None:
            _ = self.model

    @property
    def catalog(self) -> Catalog:
        """The whole catalog (SQLAlchemy Core: every write, every query), opened on first use."""
        if self._catalog is None:
            from clifs.engine.catalog import Catalog

            self._catalog = Catalog(self.settings.catalog_path)
        return self._catalog

    # -- the model and its vectors ------------------------------------------------------------------
    @property
    def encoder(self) -> Encoder:
        """The whole model (image and text towers), loaded on first use: on a CPU its exported towers on
        ONNX Runtime (no torch), exported first if there are none; on a GPU, or when the model has no
        export, the model on torch."""
        if self._encoder is None:
            from clifs.engine.models import model_cache
            from clifs.engine.models.onnx_runtime import use_onnx

            s = self.settings
            onnx = use_onnx(s.runtime, s.device)
            exported = (
                model_cache.load(s.model_cache_dir, s.model, s.precision, s.threads, self._torch_encoder)
                if onnx
                else None
            )
            if exported is None:
                whole = self._torch_encoder()
                if onnx:  # just exported: from now on the same towers as every later run
                    exported = model_cache.load(s.model_cache_dir, s.model, s.precision, s.threads, self._torch_encoder)
            else:
                self.fallback_reason = exported.fallback_reason
            if exported is not None:
                exported.warm_up()  # the image tower's session builds while the first files decode
            self._encoder = exported or whole
            if self._vectors is not None and self._vectors.model_id != self._encoder.model_id:
                self._vectors = self._searcher = None  # the saved text tower was of another model
            self._text_only = None  # the whole model encodes texts from now on
        return self._encoder

    def _torch_encoder(self) -> Encoder:
        """The model on torch (export, GPU, dense features), loaded once; saves its exported towers."""
        if self._torch is None:
            import torch

            from clifs.engine.models import model_cache
            from clifs.engine.models.registry import load_model

            if self.settings.torch_threads or self.settings.threads:
                torch.set_num_threads(self.settings.torch_threads or self.settings.threads)
            loaded = load_model(self.settings.model, self.settings.device)
            self._torch, self.fallback_reason = loaded.encoder, loaded.fallback_reason
            if not self.reads.read_only:
                model_cache.store(self.settings.model_cache_dir, self.settings.model, self._torch, self.fallback_reason)
        return self._torch

    @property
    def loaded_encoder(self) -> Encoder | None:
        """The whole model if something has loaded it, else None (never loads it)."""
        return self._encoder

    @property
    def model(self) -> TextEncoder:
        """The active model's identity and text side: the whole model once loaded, else its saved text
        tower (no torch), else the whole model is loaded."""
        if self._encoder is not None:
            return self._encoder
        if self._text_only is None:
            from clifs.engine.models import model_cache

            s = self.settings
            self._text_only = model_cache.load_text(s.model_cache_dir, s.model, s.precision, s.threads)
            if self._text_only is None:
                return self.encoder
            self.fallback_reason = self._text_only.fallback_reason
        return self._text_only

    @property
    def audio_encoder(self) -> AudioEncoder | None:
        """The audio tower bound to the active model's space, loaded on first use; None when no tower
        is bound to it (the starter model) or its weights are missing (then ``audio_unavailable`` says
        why: pictures still index, sounds wait until the weights are there)."""
        if not self._audio_looked_up:
            from clifs.engine.errors import ModelUnavailable
            from clifs.engine.models.audio_registry import load_audio_encoder

            try:
                self._audio = load_audio_encoder(self.model, self.settings.device, self.settings.model_cache_dir)
            except ModelUnavailable as exc:
                self.audio_unavailable = str(exc)
            self._audio_looked_up = True
        return self._audio

    @property
    def vectors(self) -> VectorIndex:
        if self._vectors is None:
            vectors = VectorIndex(self.settings.vectors_dir, self.model.model_id, self.model.dim)
            outcome = vectors.sync(self.reads)
            log.info("vector index %s (%d vectors)", outcome, len(vectors))
            if vectors.ahead_of_catalog:
                self.warnings.append(vectors.ahead_of_catalog)
            self._vectors = vectors
            if outcome != "loaded":
                self._save_vectors()
        return self._vectors

    @property
    def searcher(self) -> Searcher:
        if self._searcher is None:
            self._searcher = Searcher(
                self.reads,
                self.vectors,
                lambda: self.model,
                lambda: self.encoder,
                self.settings.max_image_pixels,
                audio_encoder=self._audio_for_query,
            )
        return self._searcher

    @property
    def ocr(self):
        """The OCR engine (``clifs.engine.ocr.OcrEngine``; its models load on first use)."""
        if self._ocr is None:
            from clifs.engine.ocr import OcrEngine

            self._ocr = OcrEngine(self.settings.ocr_max_side, self.settings.ocr_threads)
        return self._ocr

    def _audio_for_query(self) -> AudioEncoder:
        """The audio tower for a sound query; ModelUnavailable (exit 2 in the CLI) when there is none."""
        from clifs.engine.errors import ModelUnavailable

        tower = self.audio_encoder
        if tower is None:
            raise ModelUnavailable(
                self.audio_unavailable
                or f"{self.model.display_name} has no audio tower, so it cannot search by or label a sound: choose "
                "a model with one (shapes-vit-tiny; ViT-B-32:openai with Wav2CLIP's weights)"
            )
        return tower

    # -- reading --------------------------------------------------------------------------------------
    def search(
        self,
        text: str | None = None,
        image: str | Path | None = None,
        top: int = 20,
        audio: str | Path | None = None,
        **filters,
    ) -> list[Hit]:
        """Text, image, a sound (``audio``: a file's path) or any mix; ``filters`` are the other fields
        of ``clifs.engine.search.Query``."""
        self.vectors.catch_up(self.reads)  # another process may be indexing
        return self.searcher.search(Query(text=text, image=image, audio=audio, top=top, **filters))

    def text_of(self, path: str | Path) -> list[tuple[float | None, list[tuple[str, float, list[list[int]]]]]]:
        """What was read in an indexed file: (video timestamp or None, [(text, confidence, box)]) per
        item with text, in order."""
        _, items = self.catalog.ocr_state(canonical_file(path))
        lines = self.reads.ocr_lines_of(i for i, _ in items)
        return [(ts, lines[i]) for i, ts in items if i in lines]

    def embedding_for(self, path: str | Path) -> np.ndarray | None:
        """The stored embedding of an indexed file (its first item), or None."""
        ids = self.reads.item_ids_of_path(canonical_file(path))
        return self.reads.embedding_of(ids[0], self.model.model_id) if ids else None

    # -- writing (the indexer's side) -----------------------------------------------------------------
    def add_files(self, files: list[IndexedFile], runtime: str | None = None) -> None:
        """Commit embedded files in one transaction, then bring the vector index up to date (and new
        photos into the near-duplicate groups of their copies).

        ``runtime``: what made the vectors when it was not this library's model (a cluster's workers,
        in the active model's space); this process then needs only the model's identity, not the model.
        """
        if files:
            new_ids = self.catalog.commit_indexed(files, self.model.model_id)
            self.vectors.catch_up(self.catalog)
            self._record_runtime(runtime)
            self._link_duplicates(files, new_ids)

    def _link_duplicates(self, files: list[IndexedFile], new_ids: list[list[int]]) -> None:
        from clifs.engine.duplicates import link_new_files

        model_id = self.model.model_id
        if self.catalog.get_meta("duplicates_model") != model_id:
            return  # no groups for this model yet: the next scan groups the whole library
        firsts = {ids[0]: f for f, ids in zip(files, new_ids) if ids and f.kind == "image"}
        owners = self.catalog.file_ids_of_items(firsts)
        new = {
            owners[i]: (f.items[0].vector, f.meta.phash if f.meta is not None else None)
            for i, f in firsts.items()
            if i in owners
        }
        link_new_files(self.catalog, self.vectors, model_id, new, max_pixels=self.settings.max_image_pixels)

    def describe_under(self, folder: str) -> int:
        """Read the metadata of files under ``folder`` indexed before clifs read it (an upgraded catalog),
        and group near-duplicates when this model has no groups yet. Returns the files described."""
        from clifs.engine.photo_metadata import read_metadata

        if self.catalog.read_only:
            return 0
        described = 0
        todo = self.catalog.undescribed_under(folder)
        for start in range(0, len(todo), 500):
            chunk = todo[start : start + 500]
            self.catalog.describe([(path, read_metadata(path, kind, mtime)) for path, kind, mtime in chunk])
            described += len(chunk)
        if self.catalog.get_meta("duplicates_model") != self.model.model_id:
            self.duplicates()
        return described

    def duplicates(self, folder: str | None = None) -> list[list[str]]:
        """Groups of near-duplicate photos (under ``folder``), each an array of paths, best copy first
        (the most pixels, then the oldest). Grouping the whole library also stores it for search."""
        from clifs.engine.duplicates import find_duplicates

        self.vectors.catch_up(self.catalog)
        groups = find_duplicates(
            self.catalog,
            self.model.model_id,
            self.model.dim,
            canonical_folder(folder) if folder else None,
            store=folder is None,
            max_pixels=self.settings.max_image_pixels,
        )
        return [[f.path for f in group] for group in groups]

    def _record_runtime(self, runtime: str | None = None) -> None:
        """The catalog keeps which runtime and precision made a model's vectors (one space whatever they are)."""
        if runtime is None:
            runtime = getattr(self.encoder, "runtime", type(self.encoder).__name__)
        key = (self.model.model_id, runtime)
        if key not in self._runtime_recorded:
            self.catalog.record_embedder(*key)
            self._runtime_recorded.add(key)

    def remove_files(self, paths: list[str]) -> int:
        removed = self.catalog.delete_files(paths)
        self.vectors.catch_up(self.catalog)
        return removed

    def move_file(self, old_path: str, new_path: str, mtime: float) -> None:
        self.catalog.move_file(old_path, new_path, mtime)
        self.vectors.catch_up(self.catalog)  # drops a file the move replaced

    def record_failure(self, path: str, kind: str, size: int, mtime: float, error: str) -> None:
        self.catalog.record_failure(path, kind, size, mtime, error)
        self.vectors.catch_up(self.catalog)

    def flush(self, every_seconds: float = 0.0) -> None:
        """Save the vector index (at most once per ``every_seconds``)."""
        if self._vectors is not None and time.monotonic() - self._last_save >= every_seconds:
            self._save_vectors()
            self._last_save = time.monotonic()
            self.reads.checkpoint()

    def _save_vectors(self) -> None:
        """The vector file is a cache: when it cannot be written (a full or read-only disk) the next
        start patches or rebuilds it from the catalog, so this costs speed, never a result."""
        if self.reads.read_only:
            return
        try:
            self.vectors.save()
        except OSError as exc:
            log.warning("could not save the vector index %s: %s", self.vectors.path, exc.strerror or exc)

    def close(self) -> None:
        self.flush()
        if self._catalog is not None:
            self._catalog.close()
        if self.reads is not self._catalog:
            self.reads.close()
