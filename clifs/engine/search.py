"""What happens when you type a query.

1. The query becomes one vector: the text embedding (cached), the image
   embedding (from the catalog when the file is indexed, else encoded), the
   sound's (the mean of its windows through the audio tower bound to the
   model: stored when indexed, else encoded), or a weighted sum; a negative
   text is subtracted. Renormalised. Pictures and sounds share one space, so
   every query kind reaches images, video moments and sounds.
2. Filters (folder, kind, dates) become a set of allowed item ids, and FAISS
   searches among those only, so a narrow filter still fills the page.
3. Video frames and windows of sound collapse to one hit per video or audio
   file at its best moment; the next best moments of the same file ride along. A RAW and a JPEG of one shot
   (same folder, same name) are one hit; near-duplicate copies of a photo
   (clifs.engine.duplicates) are one hit listing the others, unless
   ``all_copies``.
4. Cut-offs: an absolute floor on the cosine and a margin below the best hit;
   then, with ``sort="taken"``, the hits that remain in date order.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from clifs.engine.catalog_reads import CatalogReads, ImageFacts, ItemInfo
from clifs.engine.duplicates import best_first
from clifs.engine.errors import MediaError
from clifs.engine.models.audio_base import AudioEncoder
from clifs.engine.models.base import Encoder, TextEncoder
from clifs.engine.models.numpy_ops import l2_normalise
from clifs.engine.paths import canonical_file, canonical_folder
from clifs.engine.photo_metadata import date_bound
from clifs.engine.text_search import search_with_text
from clifs.engine.vectors import VectorIndex

if TYPE_CHECKING:  # a text search imports neither Pillow (nor libheif) nor PyAV
    from PIL import Image

SORTS = ("score", "taken")


class SoundQueryError(MediaError):
    """The sound given as a query cannot be used (undecodable, or silent); the message says why."""


@dataclass
class Moment:
    timestamp: float
    score: float
    item_id: int
    matched: str = "picture"  # or "sound": a window of sound starting at ``timestamp``


@dataclass
class Hit:
    path: str
    score: float
    kind: str  # "image" | "video" | "audio"
    item_id: int
    timestamp: float | None = None  # seconds, for a video or audio moment (where a window of sound starts)
    matched: str = "picture"  # what the best moment matched: "picture" (an image, a frame) or "sound"
    moments: list[Moment] = field(default_factory=list)  # other good moments of the same video, best first
    size: int = 0
    mtime: float = 0.0
    width: int | None = None
    height: int | None = None
    taken: str | None = None  # ISO 8601 wall clock where it was taken ("+hh:mm" when known), or None
    taken_from: str | None = None  # "exif" | "raw" | "video" | "mtime" (the file's date, a fallback)
    camera: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    duplicates: list[str] = field(default_factory=list)  # the other copies of this photo, best copy first
    same_shot: list[str] = field(default_factory=list)  # the other files of this shot (its RAW or its JPEG)
    taken_at: float | None = None  # ``taken`` as wall-clock seconds, for sorting
    dup_group: int | None = None
    # -- the words in the picture (clifs.engine.text_search) --
    text: str | None = None  # the recognised lines that hold the query's quoted phrase (or its words)
    text_boxes: list[dict] = field(default_factory=list)  # {"text", "box": 4 corners in file pixels, "confidence"}
    recognised: str | None = None  # everything read in this hit's picture (one line per line)

    def to_json(self) -> dict:
        out = asdict(self)
        out.pop("recognised")
        if self.text is None:
            out.pop("text")
            out.pop("text_boxes")
        out.pop("taken_at")
        out.pop("dup_group")
        out["score"] = round(float(self.score), 6)
        out["moments"] = [
            {"timestamp": m.timestamp, "score": round(float(m.score), 6), "matched": m.matched} for m in self.moments
        ]
        if self.timestamp is None:
            out.pop("timestamp")
            out.pop("moments")
        return out


@dataclass
class Query:
    text: str | None = None
    image: str | Path | Image.Image | None = None
    audio: str | Path | None = None  # a sound file (or a video, its soundtrack) to search by
    audio_weight: float = 0.5  # share of the sound when it is combined with text or an image
    negative: str | None = None  # "beach -people": push away from this text
    image_weight: float = 0.5  # share of the image when text and image are combined
    top: int = 20
    folder: str | None = None
    kind: str | None = None  # "image" | "video" | "audio" (every window of sound: audio files and soundtracks)
    modified_after: float | None = None
    modified_before: float | None = None
    #: When it was taken: "2019", "2019-07", "2019-07-14", a date, or wall-clock seconds. As in a mail search,
    #: after is "on or after the start of", before is "before the start of": after 2019-07, before 2019-08 is July.
    taken_after: str | float | dt.date | None = None
    taken_before: str | float | dt.date | None = None
    camera: str | None = None  # a piece of the camera's name, any case ("iphone", "EOS 5D")
    min_score: float | None = None  # absolute floor on the cosine
    max_below_best: float | None = None  # drop hits more than this below the best score
    moments_per_video: int = 5
    text_boost: bool = True  # raise pictures whose recognised text holds the query's words (text_search)
    only_items: np.ndarray | None = None  # search among these item ids only (quoted phrases)
    sort: str = "score"  # or "taken": the hits that pass the cut-offs, oldest first, undated last
    all_copies: bool = False  # list every near-duplicate copy as its own hit

    def has_filters(self) -> bool:
        return bool(
            self.folder
            or self.kind
            or self.camera
            or any(
                v is not None for v in (self.modified_after, self.modified_before, self.taken_after, self.taken_before)
            )
        )

    def is_empty(self) -> bool:
        return not (self.text and self.text.strip()) and self.image is None and self.audio is None


class Searcher:
    """Turns a Query into Hits over one model's vectors.

    The models come from callables, so a text search never loads the image tower (and
    torch) and an image search loads it only for a file that is not indexed.
    """

    def __init__(
        self,
        catalog: CatalogReads,
        vectors: VectorIndex,
        text_encoder: Callable[[], TextEncoder],
        image_encoder: Callable[[], Encoder],
        max_image_pixels: int = 120_000_000,
        audio_encoder: Callable[[], AudioEncoder] | None = None,
    ):
        self.catalog = catalog
        self.vectors = vectors
        self._text_encoder = text_encoder
        self._image_encoder = image_encoder
        self._audio_encoder = audio_encoder
        self.max_image_pixels = max_image_pixels
        self._text_cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def text_vector(self, text: str) -> np.ndarray:
        key = text.strip()
        if key in self._text_cache:
            self._text_cache.move_to_end(key)
            return self._text_cache[key]
        vec = self._text_encoder().encode_texts([key])[0]
        self._text_cache[key] = vec
        if len(self._text_cache) > 256:
            self._text_cache.popitem(last=False)
        return vec

    def image_vector(self, image: str | Path | Image.Image) -> np.ndarray:
        from PIL import Image

        from clifs.engine.media import open_image

        if isinstance(image, Image.Image):
            return self._image_encoder().encode_pil([image.convert("RGB")])[0]
        path = canonical_file(image)
        ids = self.catalog.item_ids_of_path(path)
        if ids:
            stored = self.catalog.embedding_of(ids[0], self.vectors.model_id)
            if stored is not None:
                return l2_normalise(stored)
        return self._image_encoder().encode_pil([open_image(path, self.max_image_pixels)])[0]

    def audio_vector(self, audio: str | Path) -> np.ndarray:
        """The mean of a sound's windows: stored when the file is indexed, else encoded by the audio tower.

        Raises ``SoundQueryError`` when the file cannot be decoded or is silent, and ``ModelUnavailable``
        when the model has no audio tower."""
        path = canonical_file(audio)
        ids = np.array(self.catalog.item_ids_of_path(path, modality="sound"), np.int64)
        if len(ids):
            stored = self._stored_vectors(ids)
            if np.all(np.abs(stored).sum(axis=1) > 0):
                return l2_normalise(l2_normalise(stored).mean(axis=0))
        if self._audio_encoder is None:
            raise SoundQueryError("this searcher was made without an audio tower")
        from clifs.engine.audio import read_sound

        tower = self._audio_encoder()
        try:
            sound = read_sound(path, tower.sample_rate, tower.window_seconds)
        except MediaError as exc:
            raise SoundQueryError(str(exc)) from None
        if sound.silent:
            raise SoundQueryError("it is silent: there is no sound in it to search by")
        return l2_normalise(tower.encode_audio(sound.windows).mean(axis=0))

    def query_vector(self, query: Query) -> np.ndarray:
        parts = []
        if query.text and query.text.strip():
            parts.append((1.0 - query.image_weight if query.image is not None else 1.0, self.text_vector(query.text)))
        if query.image is not None:
            parts.append((query.image_weight if parts else 1.0, self.image_vector(query.image)))
        if query.audio is not None:
            sound = self.audio_vector(query.audio)
            parts = [((1.0 - query.audio_weight) * w, v) for w, v in parts] + [
                (query.audio_weight if parts else 1.0, sound)
            ]
        vec = sum(w * v for w, v in parts)
        if query.negative and query.negative.strip():
            vec = l2_normalise(vec) - 0.5 * self.text_vector(query.negative)
        return l2_normalise(vec)

    def search(self, query: Query) -> list[Hit]:
        """Quoted phrases and the text boost (``clifs.engine.text_search``) around the search by meaning."""
        return search_with_text(self, query)

    def search_by_meaning(self, query: Query) -> list[Hit]:
        if query.is_empty():
            return []
        if query.sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {query.sort!r}")
        taken_after = date_bound(query.taken_after)
        taken_before = date_bound(query.taken_before)
        vec = self.query_vector(query)
        allowed = None
        if query.has_filters():
            folder = canonical_folder(query.folder) if query.folder else None
            allowed = self.catalog.item_ids_matching(
                folder,
                query.kind,
                query.modified_after,
                query.modified_before,
                taken_after=taken_after,
                taken_before=taken_before,
                camera=query.camera,
            )
        hits = _apply_cutoffs(self._collapsed(vec, query, allowed), query)
        if query.sort == "taken":
            hits.sort(key=lambda h: (h.taken_at is None, h.taken_at or 0.0))
        return hits

    def _stored_vectors(self, ids: np.ndarray) -> np.ndarray:
        return self.catalog.vectors_of(ids, self.vectors.model_id, self.vectors.dim)

    def _collapsed(self, vec: np.ndarray, query: Query, allowed: np.ndarray | None) -> list[Hit]:
        """Search deep enough that, after folding frames into videos, ``top`` files remain."""
        if query.only_items is not None:
            allowed = query.only_items if allowed is None else np.intersect1d(allowed, query.only_items)
        k = query.top * 4 + 16
        while True:
            scores, ids = self.vectors.search(vec, k, allowed, stored=self._stored_vectors)
            hits = _group_by_file(scores, ids, self.catalog.item_infos(ids.tolist()), query.moments_per_video)
            hits = self._fold_copies(hits, query.all_copies)
            exhausted = len(ids) < k
            if len(hits) >= query.top or exhausted:
                return hits[: query.top]
            k *= 4

    def _fold_copies(self, hits: list[Hit], all_copies: bool) -> list[Hit]:
        """One hit per shot (a RAW beside its JPEG) and, unless ``all_copies``, per near-duplicate group.
        The shots of all candidates are one catalog query: a query per hit was 2/3 of a warm text query's
        time at 1M (56 candidates for 10 hits).

        A group's hit takes the place of its best-scoring copy, with that score; it shows the best copy
        (most pixels, then oldest) among the copies the search found (so it passed the filters), and
        lists the group's other files in ``duplicates``, best first."""
        by_group: dict[int, list[Hit]] = {}
        if not all_copies:
            for hit in hits:
                if hit.dup_group is not None:
                    by_group.setdefault(hit.dup_group, []).append(hit)
        members = self.catalog.duplicate_members(by_group) if by_group else {}
        shots = self.catalog.same_shots(h.path for h in hits if h.kind == "image")
        out: list[Hit] = []
        folded: set[str] = set()
        for hit in hits:
            if hit.path in folded:
                continue
            found = by_group.get(hit.dup_group) if hit.dup_group is not None else None
            if found:
                best = _best_copy(found)
                best.score = max(h.score for h in found)
                copies = [m for m in members.get(hit.dup_group, []) if m.path != best.path]
                best.duplicates = [m.path for m in best_first(copies)]
                folded.update(h.path for h in found)
                hit = best
            if hit.kind == "image":
                hit.same_shot = shots.get(hit.path, [])
                hit.duplicates = [p for p in hit.duplicates if p not in hit.same_shot]
                folded.update(hit.same_shot)
            folded.update(hit.duplicates)
            folded.add(hit.path)
            out.append(hit)
        return out


def _best_copy(hits: list[Hit]) -> Hit:
    facts = {h.path: ImageFacts(0, h.path, h.size, h.mtime, h.width, h.height, h.taken_at, None) for h in hits}
    first = best_first(facts.values())[0].path
    return next(h for h in hits if h.path == first)


def _group_by_file(scores: np.ndarray, ids: np.ndarray, infos: dict[int, ItemInfo], moments: int) -> list[Hit]:
    by_path: dict[str, Hit] = {}
    for score, item_id in zip(scores.tolist(), ids.tolist()):
        info = infos.get(item_id)
        if info is None:  # removed between the vector search and the lookup
            continue
        hit = by_path.get(info.path)
        if hit is None:
            by_path[info.path] = Hit(
                path=info.path,
                score=score,
                kind=info.kind,
                item_id=item_id,
                timestamp=info.timestamp,
                matched=info.modality,
                size=info.size,
                mtime=info.mtime,
                width=info.width,
                height=info.height,
                taken=info.taken,
                taken_from=info.taken_from,
                camera=info.camera,
                latitude=info.latitude,
                longitude=info.longitude,
                taken_at=info.taken_at,
                dup_group=info.dup_group,
            )
        elif info.timestamp is not None and len(hit.moments) < moments:
            hit.moments.append(Moment(info.timestamp, score, item_id, info.modality))
    return list(by_path.values())  # insertion order is best-first


def _apply_cutoffs(hits: list[Hit], query: Query) -> list[Hit]:
    if not hits:
        return hits
    best = hits[0].score
    return [
        h
        for h in hits
        if (query.min_score is None or h.score >= query.min_score)
        and (query.max_below_best is None or h.score >= best - query.max_below_best)
    ]
