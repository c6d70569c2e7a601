"""How well the offline starter model finds the demo media: top-1 and R@5 per query.

Embeds every photo in assets/demo and video frames every second (OpenCV, by time),
ranks files for each query in assets/demo/queries.json the way search shows them
(a video counts once, at its best moment), and reports per query:

- top-1: the best-ranked file is correct (for a video: its best moment is inside a
  ground-truth time range);
- R@5: the share of the query's correct files found among the first five
  (out of min(5, number correct)).

The headline is the top-1 rate over the queries whose concept ImageNet covers
(goal: at least 70%). ``--tune`` sweeps the ConSE settings (the crop, how class names read,
a prompt around the query, top-k) and calibrates logit_scale, to choose the
defaults in clifs/engine/models/starter.py; every setting applies to all queries alike.

    python bench/starter_quality.py [--tune] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clifs.engine.models import starter
from clifs.engine.models.numpy_ops import l2_normalise
from devkit.starter_quality import Item, Query, demo_items, evaluate, load_queries, summary


def print_table(rows: list[dict]) -> None:
    print(f"{'query':40} {'ImageNet':8} {'top-1':5} {'R@5':5}  best file")
    for r in rows:
        mark = "yes" if r["top1"] else "no"
        print(f"{r['query'][:40]:40} {'yes' if r['imagenet'] else 'no':8} {mark:5} {r['r5']:.2f}   {r['best']}")
    s = summary(rows)
    n_cov = sum(r["imagenet"] for r in rows)
    print(
        f"\nImageNet-covered queries ({n_cov}): top-1 {s['covered_top1']:.0%}, R@5 {s['covered_r5']:.2f}"
        f"   all queries ({len(rows)}): top-1 {s['all_top1']:.0%}, R@5 {s['all_r5']:.2f}"
    )


def calibrate_scale(item_emb: np.ndarray, query_emb: np.ndarray, items: list[Item], queries: list[Query]) -> None:
    """logit_scale for zero-shot labels: the s minimising the NLL of the right labels among all queries' texts,
    over every photo that some query names."""
    photos = [i for i, it in enumerate(items) if it.time is None and any(q.hit(it) for q in queries)]
    target = np.array([[q.hit(items[i]) for q in queries] for i in photos], dtype=bool)
    sims = item_emb[photos] @ query_emb.T
    for s in (3, 5, 7, 10, 15, 20, 30, 50, 100):
        p = np.exp(s * (sims - sims.max(1, keepdims=True)))
        nll = -np.log((p * target).sum(1) / p.sum(1)).mean()
        print(f"  logit_scale {s:4}: NLL of the right labels {nll:.3f}")


def central_crop(image: Image.Image, fraction: float) -> Image.Image:
    """The central square of side fraction * shorter side (ImageNet's usual 224/256 = 0.875 crop)."""
    w, h = image.size
    side = round(min(w, h) * fraction)
    left, top = (w - side) // 2, (h - side) // 2
    return image.crop((left, top, left + side, top + side))


def tune(enc: starter.StarterEncoder, images: list[Image.Image], items: list[Item], queries: list[Query]) -> None:
    """Change one setting at a time away from the defaults, then top-k against the rest weight."""
    classes = starter.read_classes()
    one_sentence = {
        "one sentence: names": [f"a photo of a {', '.join(c.names[:3])}." for c in classes],
        "one sentence: names, parent, categories": [
            f"a photo of a {', '.join(c.names[:3])}, a kind of {', '.join(dict.fromkeys([c.parent, *c.categories]))}."
            for c in classes
        ],
    }
    class_embs = {"mean of names / parent / category": enc.class_emb}
    class_embs |= {name: torch.from_numpy(l2_normalise(enc.text.encode(t))) for name, t in one_sentence.items()}
    queries_as_typed = enc.encode_texts([q.text for q in queries])
    rest_text = torch.from_numpy(enc.text.encode([starter.REST_TEXT])[0])
    probs = {}
    for fraction in (1.0, 0.875):
        batch = torch.stack([enc.preprocess(im if fraction == 1.0 else central_crop(im, fraction)) for im in images])
        probs[fraction] = torch.cat([enc.class_probabilities(batch[i : i + 16]) for i in range(0, len(batch), 16)])

    def row(label: str, crop=1.0, class_emb=None, query_emb=None, k=starter.TOP_K, w=starter.REST_WEIGHT) -> None:
        class_emb = enc.class_emb if class_emb is None else class_emb
        query_emb = queries_as_typed if query_emb is None else query_emb
        emb = starter.conse(probs[crop], class_emb, w * rest_text, k).numpy()
        s = summary(evaluate(emb, query_emb, items, queries))
        print(f"{label:52} {s['covered_top1']:12.0%} {s['covered_r5']:11.2f} {s['all_top1']:10.0%} {s['all_r5']:8.2f}")

    print(
        f"{'setting (defaults elsewhere)':52} {'covered top-1':>12} {'covered R@5':>11} {'all top-1':>10} {'all R@5':>8}"
    )
    row(f"defaults: crop 1.0, mean of 3 texts, k={starter.TOP_K}, rest {starter.REST_WEIGHT}")
    row("crop: central 87.5% (ImageNet's 224/256)", crop=0.875)
    for name, emb in list(class_embs.items())[1:]:
        row(f"class text: {name}", class_emb=emb)
    row("query: 'a photo of {query}'", query_emb=enc.encode_texts([f"a photo of {q.text}" for q in queries]))
    for k in (1, 3, 5, 10, 20, 50):
        for w in (0.0, 0.25, 0.5, 1.0, 2.0):
            row(f"k={k}, rest weight {w}", k=k, w=w)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tune", action="store_true", help="sweep top-k, class texts and query prompts")
    parser.add_argument("--json", type=Path, help="also write the per-query rows here")
    args = parser.parse_args()
    torch.set_num_threads(1)

    t = time.perf_counter()
    enc = starter.load("cpu")
    print(f"{enc.display_name}\nmodel id {enc.model_id}\nload {time.perf_counter() - t:.2f} s")
    items, images = demo_items()
    queries = load_queries()
    t = time.perf_counter()
    batch = torch.stack([enc.preprocess(im) for im in images])
    t_pre = time.perf_counter() - t
    t = time.perf_counter()
    probs = torch.cat([enc.class_probabilities(batch[i : i + 16]) for i in range(0, len(batch), 16)])
    item_emb = starter.conse(probs, enc.class_emb, enc.rest_emb).numpy()
    t_net = time.perf_counter() - t
    t = time.perf_counter()
    enc.encode_texts(["a dog on a beach"])
    t_text = time.perf_counter() - t
    n = len(images)
    print(f"{sum(it.time is None for it in items)} photos + {sum(it.time is not None for it in items)} video frames")
    print(f"per image: preprocess {t_pre / n * 1000:.0f} ms + classifier and ConSE {t_net / n * 1000:.0f} ms "
          f"(batches of 16, {torch.get_num_threads()} thread); one text query {t_text * 1000:.0f} ms\n")  # fmt: skip

    query_emb = enc.encode_texts([q.text for q in queries])
    rows = evaluate(item_emb, query_emb, items, queries)
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps({"summary": summary(rows), "queries": rows}, indent=1))
    if args.tune:
        print("\nlogit_scale calibration (current settings):")
        calibrate_scale(item_emb, query_emb, items, queries)
        print()
        tune(enc, images, items, queries)


if __name__ == "__main__":
    main()
