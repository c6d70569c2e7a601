"""CLIP's byte-level BPE tokenizer without torch, so a text search need not import torch.

It reads the vocabulary open_clip ships (found on disk, open_clip itself is not imported)
and gives the ids open_clip's ``SimpleTokenizer`` gives with its default 'lower' cleaning;
tests/test_text_tower.py checks that on a corpus of awkward strings.
"""

from __future__ import annotations

import gzip
import html
import importlib.util
from functools import lru_cache
from pathlib import Path

import ftfy
import numpy as np
import regex

#: CLIP's vocabulary: 256 byte symbols, the same with an end-of-word mark, 48894 merges, 2 specials.
_N_MERGES = 49152 - 256 - 2
_START, _END = "<start_of_text>", "<end_of_text>"
#: Contractions, letter runs, single digits, and runs of anything else that is not a space.
_PIECES = regex.compile(
    _START + "|" + _END + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", regex.IGNORECASE
)


def vocabulary_file() -> Path:
    spec = importlib.util.find_spec("open_clip")
    for folder in spec.submodule_search_locations or [] if spec else []:
        path = Path(folder) / "bpe_simple_vocab_16e6.txt.gz"
        if path.is_file():
            return path
    raise FileNotFoundError("open_clip's BPE vocabulary (bpe_simple_vocab_16e6.txt.gz) is not installed")


def _byte_symbols() -> dict[int, str]:
    """One printable character per byte value, so BPE never sees whitespace or control bytes.

    Printable Latin-1 bytes stand for themselves; the other bytes, in order, take the
    characters from U+0100 on. The dict's order (printable bytes first) is the vocabulary's.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    symbols: dict[int, str] = {b: chr(b) for b in printable}
    for b in range(256):
        if b not in symbols:
            symbols[b] = chr(256 + len(symbols) - len(printable))
    return symbols


def clean(text: str) -> str:
    """Repair mojibake, unescape HTML (twice, as CLIP does), collapse whitespace, lower-case."""
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return " ".join(text.split()).lower()


class ClipTokenizer:
    """Texts -> (n, context_length) int64 token ids: start, BPE pieces, end, zero padding."""

    def __init__(self, context_length: int = 77):
        self.context_length = context_length
        symbols = _byte_symbols()
        self._byte_symbols = [symbols[b] for b in range(256)]
        merges = [tuple(line.split()) for line in _read_merges()]
        vocab = [*symbols.values(), *(s + "</w>" for s in symbols.values()), *("".join(m) for m in merges)]
        vocab += [_START, _END]
        self._ids = {symbol: i for i, symbol in enumerate(vocab)}
        self._rank = {pair: i for i, pair in enumerate(merges)}
        self.start_id, self.end_id = self._ids[_START], self._ids[_END]
        self._pieces_cache: dict[str, list[int]] = {}

    def _merge(self, piece: str) -> list[str]:
        """Apply the merges to one piece, always the lowest-ranked adjacent pair first."""
        symbols = [*piece[:-1], piece[-1] + "</w>"]
        while len(symbols) > 1:
            ranks = [self._rank.get(pair) for pair in zip(symbols, symbols[1:])]
            known = [(rank, i) for i, rank in enumerate(ranks) if rank is not None]
            if not known:
                break
            first = min(known)[1]
            best = symbols[first], symbols[first + 1]
            merged, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        return symbols

    def _piece_ids(self, piece: str) -> list[int]:
        if piece in (_START, _END):
            return [self._ids[piece]]
        ids = self._pieces_cache.get(piece)
        if ids is None:
            as_symbols = "".join(self._byte_symbols[b] for b in piece.encode("utf-8"))
            ids = [self._ids[s] for s in self._merge(as_symbols)]
            self._pieces_cache[piece] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        """BPE ids of one text, without the start and end tokens."""
        return [i for piece in _PIECES.findall(clean(text)) for i in self._piece_ids(piece)]

    def __call__(self, texts: list[str] | str) -> np.ndarray:
        texts = [texts] if isinstance(texts, str) else texts
        out = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.start_id, *self.encode(text)][: self.context_length - 1] + [self.end_id]
            out[row, : len(ids)] = ids
        return out


@lru_cache(maxsize=1)
def _read_merges() -> list[str]:
    lines = gzip.decompress(vocabulary_file().read_bytes()).decode("utf-8").split("\n")
    return lines[1 : _N_MERGES + 1]
