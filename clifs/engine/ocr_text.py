"""Recognised text as search sees it: one normal form, quoted phrases in a query, tolerant matching.

No OCR engine here (that is ``clifs.engine.ocr``) and no SQL (that is the catalog): only strings.

- ``normalise`` folds case and accents ("Café" -> "cafe", "STRASSE" and "Straße" -> "strasse"),
  and turns every run of punctuation and spaces into one space. CJK stays as it is. The catalog's
  FTS5 table (trigram tokenizer) holds this form of each item's text, so a search is case- and
  accent-insensitive and finds CJK words inside runs that have no spaces.
- ``split_query`` takes the quoted phrases out of a query: ``a truck "odwalla"`` is the meaning
  "a truck" and the phrase "odwalla".
- ``find_phrase`` says whether (and how well) an item's text holds a phrase: its words in order,
  spaces, punctuation and line breaks between them ignored, starting at the start of a word (a
  word of fewer than 4 letters must also end at the end of one), with one OCR error (a letter
  wrong, missing or extra) allowed in each word of 6 or more letters. CJK matches anywhere.
- ``fts_query`` is the FTS5 pre-filter that finds the candidates for ``find_phrase`` to confirm.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

#: Words this long or longer may carry one OCR error.
LONG_WORD = 6
#: Shorter words must match whole (so "cat" does not find "catalog").
WHOLE_WORD_BELOW = 4

#: Letters that NFKD does not split into a base and a mark.
_FOLD = str.maketrans({"ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "æ": "ae", "œ": "oe", "ı": "i", "ħ": "h"})
_SEPARATORS = re.compile(r"[\W_]+")
_QUOTED = re.compile(r"[\"“”„«»](.*?)(?:[\"“”„«»]|$)", re.S)


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (
        0x3040 <= o <= 0x30FF  # kana
        or 0x3400 <= o <= 0x4DBF
        or 0x4E00 <= o <= 0x9FFF
        or 0xAC00 <= o <= 0xD7AF  # hangul
        or 0xF900 <= o <= 0xFAFF
        or 0x20000 <= o <= 0x2FFFF
    )


def has_cjk(text: str) -> bool:
    return any(_is_cjk(c) for c in text)


def normalise(text: str) -> str:
    """Lower case, no accents, words separated by single spaces."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c)).translate(_FOLD)
    return " ".join(_SEPARATORS.sub(" ", folded).split())


@dataclass
class SplitQuery:
    meaning: str  # the unquoted rest of the query ("" when there is none)
    phrases: list[str]  # the quoted phrases, as typed (non-blank)


def split_query(text: str | None) -> SplitQuery:
    """The quoted phrases of a query and what is left. Straight and curly quotes both count; an
    unclosed quote runs to the end of the query."""
    if not text:
        return SplitQuery("", [])
    phrases = [p.strip() for p in _QUOTED.findall(text) if normalise(p)]
    meaning = " ".join(_QUOTED.sub(" ", text).split())
    return SplitQuery(meaning, phrases)


#: Words of a query that say nothing about the text in a picture.
STOP_WORDS = frozenset(
    "with that this from into onto over under about there their them they have what when where which while "
    "your some text says saying written reads reading word words letters photo picture image showing".split()
)


def query_words(text: str) -> list[str]:
    """The words of an unquoted query worth looking for in pictures (for the text boost): 4 letters
    or more and not in ``STOP_WORDS``, or any CJK run."""
    words = dict.fromkeys(normalise(text).split())
    return [w for w in words if (len(w) >= WHOLE_WORD_BELOW and w not in STOP_WORDS) or has_cjk(w)]


# -- the FTS5 pre-filter ----------------------------------------------------------------------------
def _quoted(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def fts_query(phrase: str) -> str | None:
    """An FTS5 MATCH expression (trigram tokenizer) every text that ``find_phrase`` accepts also
    matches; None when no word is long enough for trigrams (then the catalog scans instead).

    A long word may have one error, which touches one of its halves: either half must appear.
    """
    parts = []
    for word in normalise(phrase).split():
        if len(word) >= LONG_WORD and not has_cjk(word):
            half = len(word) // 2
            parts.append(f"({_quoted(word[:half])} OR {_quoted(word[half:])})")
        elif len(word) >= 3:
            parts.append(_quoted(word))
    return " AND ".join(parts) if parts else None


def exact_fts_query(phrase: str) -> str | None:
    """The FTS5 expression for the phrase's words exactly (no OCR error): each of 3 letters or more."""
    parts = [_quoted(w) for w in normalise(phrase).split() if len(w) >= 3]
    return " AND ".join(parts) if parts else None


def scan_needles(phrase: str) -> list[str]:
    """Substrings a text must hold when ``fts_query`` is None (every word shorter than 3)."""
    return normalise(phrase).split()


# -- confirming a match -----------------------------------------------------------------------------
@dataclass
class PhraseMatch:
    edits: int  # 0: exact
    start: int  # where it starts and ends in the compact text (no spaces)
    end: int


def _compact(normal: str) -> tuple[str, set[int], set[int]]:
    """The text without spaces, with the positions where its words start and end."""
    starts, ends, out, pos = set(), set(), [], 0
    for word in normal.split():
        starts.add(pos)
        out.append(word)
        pos += len(word)
        ends.add(pos)
    return "".join(out), starts, ends


def find_phrase(phrase: str, text_normal: str) -> PhraseMatch | None:
    """The best place ``phrase`` occurs in ``text_normal`` (a ``normalise``d text), or None."""
    words = normalise(phrase).split()
    if not words:
        return None
    pattern = "".join(words)
    cjk = has_cjk(pattern)
    budget = 0 if cjk else sum(1 for w in words if len(w) >= LONG_WORD)
    text, starts, ends = _compact(text_normal)
    if cjk:
        at = text.find(pattern)
        return PhraseMatch(0, at, at + len(pattern)) if at >= 0 else None
    at = text.find(pattern)
    while at >= 0:
        if at in starts and (len(pattern) >= WHOLE_WORD_BELOW or at + len(pattern) in ends):
            return PhraseMatch(0, at, at + len(pattern))
        at = text.find(pattern, at + 1)
    if not budget:
        return None
    if budget == 1:  # the usual case: look only around where a half of the phrase stands intact
        return _near_halves(pattern, text, starts)
    return _approximate(pattern, text, starts, budget)


def _near_halves(pattern: str, text: str, starts: set[int]) -> PhraseMatch | None:
    """One edit leaves one half of ``pattern`` intact: run the DP only on windows around each place a
    half occurs (a few dozen letters), not on the whole text."""
    m, half = len(pattern), len(pattern) // 2
    best: PhraseMatch | None = None
    for piece, offset in ((pattern[:half], 0), (pattern[half:], half)):
        at = text.find(piece)
        while at >= 0:
            lo = max(0, at - offset - 2)
            hi = min(len(text), at - offset + m + 2)
            window_starts = {p - lo for p in starts if lo <= p < hi}
            if window_starts:
                found = _approximate(pattern, text[lo:hi], window_starts, 1)
                if found is not None and (best is None or found.edits < best.edits):
                    best = PhraseMatch(found.edits, found.start + lo, found.end + lo)
            at = text.find(piece, at + 1)
    return best


def _approximate(pattern: str, text: str, starts: set[int], budget: int) -> PhraseMatch | None:
    """Sellers' algorithm: the fewest edits turning ``pattern`` into a substring of ``text`` that
    begins at a word start; at most ``budget``."""
    m = len(pattern)
    inf = m + budget + 1
    best: PhraseMatch | None = None
    # column j of the DP: cost[i] = edits for pattern[:i] ending at text[:j]; origin[i] = where it starts
    cost = list(range(m + 1)) if 0 in starts else [inf] * (m + 1)
    origin = [0] * (m + 1)
    for j in range(1, len(text) + 1):
        ch = text[j - 1]
        new = [0 if j in starts else inf] + [0] * m
        new_origin = [j] + [0] * m
        for i in range(1, m + 1):
            sub = cost[i - 1] + (pattern[i - 1] != ch)
            dele = new[i - 1] + 1  # a pattern letter the text lacks
            ins = cost[i] + 1  # a text letter the pattern lacks
            if sub <= dele and sub <= ins:
                new[i], new_origin[i] = sub, origin[i - 1]
            elif dele <= ins:
                new[i], new_origin[i] = dele, new_origin[i - 1]
            else:
                new[i], new_origin[i] = ins, origin[i]
        if new[m] <= budget and new_origin[m] in starts and (best is None or new[m] < best.edits):
            best = PhraseMatch(new[m], new_origin[m], j)
            if best.edits == 0:
                return best
        cost, origin = new, new_origin
    return best


def line_matches(phrase: str, line_text: str) -> bool:
    """Whether one recognised line holds the phrase or a word of it (which boxes to highlight)."""
    normal = normalise(line_text)
    if find_phrase(phrase, normal) is not None:
        return True
    return any(find_phrase(w, normal) is not None for w in normalise(phrase).split() if len(w) >= 3 or has_cjk(w))
