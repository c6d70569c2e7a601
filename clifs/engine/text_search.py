"""The words in pictures, in a search (one small step beside ``clifs.engine.search``).

- A quoted phrase is text that must appear in the picture: ``"odwalla"`` finds the pictures whose
  recognised text holds it (``clifs.engine.ocr_text.find_phrase``: case and accents ignored, one
  OCR error allowed in a word of 6 letters or more); a picture without that text is never returned.
  With an unquoted part (``a truck "odwalla"``) or a query image, those pictures are ranked by its
  meaning; a phrase alone ranks exact matches first, then by how well the model itself sees the
  phrase. Several phrases must all appear.
- An unquoted text query gains from words: a picture whose text holds words of the query exactly (4
  letters or more, not a stop word like "with" or "says") has its score raised by ``TEXT_BOOST`` times the
  share it holds of the query words that some picture shows (a word no picture shows does not
  count), so the boost is bounded (at most ``TEXT_BOOST``) and pictures without text are never lowered.
- Hits carry the matched words (``text``), their boxes (``text_boxes``: text, box in the file's
  pixels, confidence) and everything read in the hit's picture (``recognised``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from clifs.engine.ocr_text import (
    exact_fts_query,
    find_phrase,
    fts_query,
    line_matches,
    query_words,
    scan_needles,
    split_query,
)

if TYPE_CHECKING:
    from clifs.engine.catalog_reads import CatalogReads
    from clifs.engine.search import Hit, Query, Searcher

#: The most an unquoted query's score can rise when a picture shows its words (cosine units).
TEXT_BOOST = 0.1
#: Candidates a phrase may have before the rarest ones are kept (a word in every picture is no filter).
MAX_CANDIDATES = 20_000


def matching_items(catalog: CatalogReads, phrases: list[str], tolerant: bool = True) -> dict[int, int]:
    """Items whose text holds every phrase: item id -> OCR errors tolerated in the match (0: exact).
    ``tolerant`` False: exact matches only (one FTS5 lookup per phrase, no candidates to confirm)."""
    result: dict[int, int] | None = None
    for phrase in phrases:
        expression = fts_query(phrase) if tolerant else exact_fts_query(phrase)
        rows = catalog.text_candidates(expression, [] if expression else scan_needles(phrase), MAX_CANDIDATES)
        found = {}
        for item_id, normal in rows:
            if result is not None and item_id not in result:
                continue
            match = find_phrase(phrase, normal)
            if match is not None and (tolerant or match.edits == 0):
                found[item_id] = match.edits + (result[item_id] if result is not None else 0)
        result = found
        if not result:
            return {}
    return result or {}


def search_with_text(searcher: Searcher, query: Query) -> list[Hit]:
    """The hits of ``query``: quoted phrases first, else the text boost, else the search by meaning
    alone (``Searcher.search_by_meaning``); every hit with the text read in its picture."""
    split = split_query(query.text)
    if split.phrases:
        hits = _phrase_search(searcher, query, split.meaning, split.phrases)
        attach_text(searcher.catalog, hits, split.phrases)
        return hits
    words = query_words(query.text) if query.text_boost and query.text else []
    if words:
        hits = _boosted(searcher, query, words)
        attach_text(searcher.catalog, hits, words)
        return hits
    hits = searcher.search_by_meaning(query)
    attach_text(searcher.catalog, hits, [])
    return hits


def _phrase_search(searcher: Searcher, query: Query, meaning: str, phrases: list[str]) -> list[Hit]:
    matches = matching_items(searcher.catalog, phrases)
    if not matches:
        return []
    base = replace(query, text=meaning or " ".join(phrases), text_boost=False)
    if meaning or query.image is not None:
        return searcher.search_by_meaning(replace(base, only_items=np.fromiter(matches, np.int64)))
    hits: list[Hit] = []
    seen: set[str] = set()
    for edits in sorted(set(matches.values())):  # exact matches first
        ids = np.fromiter((i for i, e in matches.items() if e == edits), np.int64)
        for hit in searcher.search_by_meaning(replace(base, only_items=ids)):
            if hit.path not in seen and len(hits) < query.top:
                seen.add(hit.path)
                hits.append(hit)
        if len(hits) >= query.top:
            break
    if getattr(query, "sort", "score") == "taken":
        hits.sort(key=lambda h: (h.taken_at is None, h.taken_at or 0.0))
    return hits


def _boosted(searcher: Searcher, query: Query, words: list[str]) -> list[Hit]:
    plain = replace(query, text_boost=False)
    hits = searcher.search_by_meaning(plain)
    found = {word: matching_items(searcher.catalog, [word], tolerant=False) for word in words}
    shown_words = [w for w in words if found[w]]  # words no picture shows do not dilute the share
    share: dict[int, float] = {}
    for word in shown_words:
        for item_id in found[word]:
            share[item_id] = share.get(item_id, 0.0) + 1.0 / len(shown_words)
    if not share:
        return hits
    shown = searcher.search_by_meaning(replace(plain, only_items=np.fromiter(share, np.int64)))
    by_path = {h.path: h for h in hits}
    for hit in shown:
        items = [hit.item_id] + [m.item_id for m in hit.moments]
        hit.score = min(1.0, hit.score + TEXT_BOOST * max(share.get(i, 0.0) for i in items))
        if hit.path not in by_path or by_path[hit.path].score < hit.score:
            by_path[hit.path] = hit
    merged = sorted(by_path.values(), key=lambda h: -h.score)[: query.top]
    if getattr(query, "sort", "score") == "taken":
        merged.sort(key=lambda h: (h.taken_at is None, h.taken_at or 0.0))
    return merged


def attach_text(catalog: CatalogReads, hits: list[Hit], phrases: list[str]) -> None:
    """Fill ``recognised`` from the catalog, and ``text``/``text_boxes`` with the lines that hold one
    of ``phrases`` (or a word of one)."""
    if not hits:
        return
    lines = catalog.ocr_lines_of(h.item_id for h in hits)
    for hit in hits:
        own = lines.get(hit.item_id, [])
        hit.recognised = "\n".join(t for t, _, _ in own) or None
        matched = [(t, c, b) for t, c, b in own if any(line_matches(p, t) for p in phrases)]
        if matched:
            hit.text = " ".join(t for t, _, _ in matched)
            hit.text_boxes = [{"text": t, "box": b, "confidence": round(c, 4)} for t, c, b in matched]
