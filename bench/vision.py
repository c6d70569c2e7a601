"""How fast are labels, masks and boxes on this CPU? Medians over repeats.

    .venv/bin/python bench/vision.py [--threads 1] [--repeats 5] [--models ViT-B-16,ViT-B-32,test]

ViT-B-16 and ViT-B-32 have random weights (no download here): the work per image is
the same as with trained weights, so the timings are real. Images are 448 px
shapes-world scenes (the content does not change the work); the test model also runs
on 64 and 128 px scenes.

- labels per hit: ``label_embedding`` on a stored embedding with the label embeddings
  cached (a matmul and a softmax), for the 120-label default vocabulary;
- text cost: embedding labels cold, per label, for each template set (paid once per
  model and vocabulary, then cached in memory and on disk);
- masks per image: ``segment`` with 2 labels plus the background vocabulary, for
  several window layouts, ±PAMR;
- boxes per image: ``detect``'s parts: the dense pass, plus scoring 4 proposals (8 crops).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial

import torch

from clifs.engine.models.base import Encoder
from clifs.engine.vision.boxes import BoxOptions, score_boxes
from clifs.engine.vision.dense import DenseOptions, segment
from clifs.engine.vision.labels import embed_labels, label_embedding
from clifs.engine.vision.vocabulary import background_labels, load_vocabulary
from devkit.shapes import HELD_OUT_SEED_BASE, iter_scenes


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def random_clip(arch: str) -> Encoder:
    import open_clip

    from clifs.engine.models.openclip import OpenClipEncoder

    torch.manual_seed(0)
    model = open_clip.create_model(arch, pretrained=None)
    return OpenClipEncoder(model, open_clip.get_tokenizer(arch), f"random:{arch}", f"random {arch}", "cpu")


def bench_model(name: str, encoder: Encoder, sizes: list[int], layouts: dict[str, dict], repeats: int) -> list[dict]:
    rows = []
    native = encoder.model.visual.image_size[0]
    # Labels per hit, with the label embeddings cached ("single" fills the cache fast; the
    # per-hit cost is a matmul of the same shape whatever the template set).
    vocab = load_vocabulary("everyday") + load_vocabulary("scenes")
    embed_labels(encoder, vocab, "single")
    hit = encoder.encode_pil([next(iter_scenes(HELD_OUT_SEED_BASE, 1, size=native)).image])[0]
    ms = median_ms(partial(label_embedding, encoder, hit, vocab, top=5, template_set="single"), 200)
    rows.append({"model": name, "task": f"labels per hit ({len(vocab)} labels, cached)", "ms": ms})
    for template_set, n_labels in (("single", 8), ("compact", 4), ("ensemble", 1)):
        fresh = [f"thing number {i} {template_set}" for i in range(n_labels)]  # never cached before
        start = time.perf_counter()
        embed_labels(encoder, fresh, template_set)
        per_label = 1000 * (time.perf_counter() - start) / n_labels
        rows.append({"model": name, "task": f"text cost per new label, {template_set} templates", "ms": per_label})
    queries = ["dog", "person"]
    embed_labels(encoder, queries + background_labels(encoder), "compact")
    for size in sizes:
        image = next(iter_scenes(HELD_OUT_SEED_BASE + 7, 1, size=size)).image
        for layout, kw in layouts.items():
            for pamr in (False, True):
                opts = DenseOptions(template_set="compact", pamr=pamr, **kw)
                ms = median_ms(partial(segment, encoder, image, queries, options=opts), repeats)
                rows.append(
                    {"model": name, "task": f"masks {size} px, {layout}" + (" + PAMR" if pamr else ""), "ms": ms}
                )
        boxes = [(size // 8, size // 8, size // 4, size // 4), (size // 2, size // 3, size // 3, size // 5),
                 (size // 5, size // 2, size // 6, size // 3), (0, 0, size // 2, size // 2)]  # fmt: skip
        opts = BoxOptions(dense=DenseOptions(template_set="compact"))
        contrast = load_vocabulary("shapes") if name == "test model" else load_vocabulary("everyday")
        embed_labels(encoder, queries + contrast + background_labels(encoder), "compact")
        background = background_labels(encoder)
        ms = median_ms(partial(score_boxes, encoder, image, boxes, queries, contrast, background, opts), repeats)
        rows.append({"model": name, "task": f"boxes {size} px: scoring 4 proposals (8 crops)", "ms": ms})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", default="ViT-B-16,ViT-B-32,test")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch threads: {args.threads}; medians over {args.repeats} repeats\n", flush=True)
    clip_layouts = {
        "short side 224 (1 window)": dict(short_side=224),
        "short side 336, windows 224/112 (2x2)": dict(short_side=336),
        "short side 448, windows 224/112 (3x3)": dict(short_side=448),
        "short side 336, one pass (pos. interp.)": dict(short_side=336, window=0),
    }
    for name in args.models.split(","):
        if name == "test":
            from clifs.engine.models import testmodel

            layouts = {"short side 64 (1 window)": dict(short_side=64), "default (96, 2x2 windows)": {}}
            rows = bench_model("test model", testmodel.load(device="cpu"), [64, 128], layouts, args.repeats)
        else:
            rows = bench_model(name, random_clip(name), [448], clip_layouts, args.repeats)
        for row in rows:
            print(f"{row['model']:10s} {row['task']:58s} {row['ms']:9.2f} ms", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
