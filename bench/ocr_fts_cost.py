"""What the words in pictures cost the catalog per 100k pictures: disk, commit time, quoted-search latency.

    python bench/ocr_fts_cost.py [--pictures 100000] [--with-text 0.3] [--lines 3]

A real catalog (clifs.engine.catalog, SQLite, FTS5 trigram) holding ``--pictures`` indexed images,
``--with-text`` of them with text: 1 to 2 x ``--lines`` recognised lines of 1 to 5 words each (made-up
words of 3 to 10 letters from a 20k vocabulary, a few with accents, some numbers). The OCR pass's
own method (Catalog.commit_ocr, one transaction per 1000 files here) writes them; the sizes come
from SQLite's dbstat (after VACUUM). Then quoted searches (clifs.engine.text_search.matching_items:
the FTS5 pre-filter and the confirmation) for words that are there, with and without an OCR error.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clifs.engine.catalog import Catalog, IndexedFile, NewItem, OcrRead  # noqa: E402
from clifs.engine.text_search import matching_items  # noqa: E402

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def vocabulary(rng: np.random.Generator, n: int) -> list[str]:
    words = set()
    while len(words) < n:
        w = "".join(rng.choice(list(LETTERS), int(rng.integers(3, 11))))
        if rng.random() < 0.03:
            w = w[:-1] + "é"
        words.add(w.capitalize() if rng.random() < 0.3 else w)
    return sorted(words)


def sizes(path: Path) -> dict[str, int]:
    db = sqlite3.connect(path)
    db.execute("VACUUM")
    rows = db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
    db.close()
    return dict(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pictures", type=int, default=100_000)
    parser.add_argument("--with-text", type=float, default=0.3)
    parser.add_argument("--lines", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    vocab = vocabulary(rng, 20_000)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.sqlite3"
        catalog = Catalog(path)
        vec = np.ones(4, np.float32)
        item_of = {}
        for start in range(0, args.pictures, 2000):
            files = [
                IndexedFile(f"/photos/{i // 1000:03d}/IMG_{i:06d}.jpg", "image", 1, 1.0, f"h{i}", [NewItem(None, vec)])
                for i in range(start, min(args.pictures, start + 2000))
            ]
            for f, ids in zip(files, catalog.commit_indexed(files, "m")):
                item_of[f.path] = ids[0]
        states = catalog.file_states(list(item_of))
        before = sizes(path)
        catalog = Catalog(path)
        texted = [p for p in item_of if rng.random() < args.with_text]
        reads, sample_words, t0, lines_total, chars = [], [], time.perf_counter(), 0, 0
        box = [[10, 10], [200, 10], [200, 40], [10, 40]]
        for n, p in enumerate(texted):
            lines = []
            for _ in range(int(rng.integers(1, 2 * args.lines + 1))):
                words = [vocab[int(rng.integers(len(vocab)))] for _ in range(int(rng.integers(1, 6)))]
                if rng.random() < 0.2:
                    words.append(str(int(rng.integers(0, 10_000))))
                text = " ".join(words)
                lines.append((text, float(rng.uniform(0.6, 1.0)), box))
                chars += len(text)
            if n % 97 == 0:
                sample_words.append(max(lines[0][0].split(), key=len))
            lines_total += len(lines)
            reads.append(OcrRead(states[p].id, "rapidocr 3.10.0 PP-OCRv6 small", {item_of[p]: lines}))
            if len(reads) == 1000:
                catalog.commit_ocr(reads)
                reads = []
        catalog.commit_ocr(reads)
        # the pictures without text get their "read, nothing found" record too
        done = set(texted)
        rest = [
            OcrRead(states[p].id, "rapidocr 3.10.0 PP-OCRv6 small", {item_of[p]: []}) for p in item_of if p not in done
        ]
        for i in range(0, len(rest), 5000):
            catalog.commit_ocr(rest[i : i + 5000])
        commit_s = time.perf_counter() - t0
        catalog.close()
        after = sizes(path)
        catalog = Catalog(path)
        timings = {"exact": [], "one error": []}
        for word in sample_words[:40]:
            for kind, query in (("exact", word), ("one error", word[:2] + word[3:] if len(word) >= 6 else word)):
                t = time.perf_counter()
                found = matching_items(catalog, [query])
                timings[kind].append((time.perf_counter() - t) * 1000)
                assert found or kind == "one error", word
        catalog.close()
    mb = 1 << 20
    grown = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    fts = sum(v for k, v in grown.items() if k.startswith("ocr_fts"))
    lines_tables = sum(v for k, v in grown.items() if k.startswith(("ocr_lines", "ix_ocr_lines")))
    files_table = sum(v for k, v in grown.items() if "ocr_files" in k)
    scale = 100_000 / args.pictures
    print(
        f"{args.pictures} pictures, {len(texted)} with text ({lines_total} lines, {chars / max(lines_total, 1):.0f} "
        f"characters a line); {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}"
    )
    print(f"catalog before OCR {sum(before.values()) / mb:.1f} MB, after {sum(after.values()) / mb:.1f} MB")
    print(
        f"per 100k pictures: FTS5 index {fts * scale / mb:.1f} MB, lines with boxes {lines_tables * scale / mb:.1f} MB, "
        f"OCR records {files_table * scale / mb:.1f} MB; commits {commit_s * scale:.0f} s"
    )
    for kind, ms in timings.items():
        ms.sort()
        print(
            f"quoted search ({kind}, {len(ms)} words): p50 {statistics.median(ms):.1f} ms, p95 {ms[int(0.95 * (len(ms) - 1))]:.1f} ms"
        )


if __name__ == "__main__":
    main()
