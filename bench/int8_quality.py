"""Does dynamic int8 keep quality? The measurement behind model_cache.INT8_DEFAULT.

    python bench/int8_quality.py [--archs ViT-B-32 ViT-B-16] [--skip-random]

1. The trained test model (shapes-vit-tiny) on its held-out scenes (devkit/evaluate.py): zero-shot
   accuracy (80 templates and 1) and text->image R@1, for torch, ONNX fp32, and ONNX with the image
   tower, the text tower or both in int8. The rule: within 1 point of fp32.
2. Random-weight ViT-B-32 and ViT-B-16 (same FLOPs as the real ones; weights saved to a file so the
   export has something to be stamped with): cosine of every probe embedding int8 vs fp32, on the
   demo photos, the probe cards and 200 texts. The rule: >= 0.99 for every one.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clifs.engine.assets import demo_folder  # noqa: E402
from clifs.engine.media import open_image  # noqa: E402
from clifs.engine.models import model_cache  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


def _as_evaluable(encoder, size: int):
    """devkit.evaluate renders scenes at the model's input size, read from ``encoder.model.visual``."""
    encoder.model = SimpleNamespace(visual=SimpleNamespace(image_size=size))
    return encoder


def test_model(cache: Path) -> dict:
    from clifs.engine.models.testmodel import NAME, load
    from devkit.evaluate import text_to_image_recall_at_1, zero_shot_accuracy

    torch_enc = load(device="cpu")
    assert model_cache.store(cache, NAME, torch_enc)
    size = int(torch_enc.model.visual.image_size[0])
    rows = {"torch fp32": torch_enc}
    for label, precision in (("onnx fp32", "fp32"), ("onnx int8", "int8")):
        rows[label] = _as_evaluable(model_cache.load(cache, NAME, precision), size)
    # one tower at a time in int8
    mixed = {"onnx int8 image only": ("int8", "fp32"), "onnx int8 text only": ("fp32", "int8")}
    for label, (image, text) in mixed.items():
        enc = _as_evaluable(model_cache.load(cache, NAME, "fp32"), size)
        enc.image = model_cache.load(cache, NAME, image).image
        enc.text = model_cache.load(cache, NAME, text).text
        rows[label] = enc
    out = {}
    for label, enc in rows.items():
        out[label] = {
            "zero_shot_80": zero_shot_accuracy(enc, template_set="ensemble"),
            "zero_shot_1": zero_shot_accuracy(enc, template_set="single"),
            "r_at_1": text_to_image_recall_at_1(enc),
        }
        print(f"  {label:22s} " + "  ".join(f"{k} {v:.3f}" for k, v in out[label].items()), flush=True)
    return out


def probe_texts(n: int = 200) -> list[str]:
    queries = json.loads((demo_folder() / "queries.json").read_text())
    texts = [
        q["query"] if isinstance(q, dict) else str(q)
        for q in (queries if isinstance(queries, list) else queries.get("queries", []))
    ]
    rng = random.Random(0)
    words = "a photo of the dog cat beach sunset red blue car street night people child old house tree mountain".split()
    while len(texts) < n:
        texts.append(" ".join(rng.choice(words) for _ in range(rng.randint(1, 20))))
    return texts[:n]


def random_arch(arch: str, cache: Path, work: Path) -> dict:
    import open_clip
    import torch
    from safetensors.torch import save_file

    from clifs.engine.models.openclip import load

    torch.manual_seed(0)
    weights = work / f"{arch}.safetensors"
    model = open_clip.create_model(arch, pretrained=None)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    spec = f"{arch}:{weights}"
    torch_enc = load(spec, device="cpu")
    started = time.perf_counter()
    assert model_cache.store(cache, spec, torch_enc)
    export_s = time.perf_counter() - started
    fp32, int8 = model_cache.load(cache, spec, "fp32"), model_cache.load(cache, spec, "int8")
    images = [open_image(p) for p in sorted(demo_folder().glob("*.jpg"))] + model_cache.probe_images()
    texts = probe_texts()

    def cos(a, b):
        return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)

    image_cos = cos(np.concatenate([int8.encode_pil(images[i : i + 8]) for i in range(0, len(images), 8)]),
                    np.concatenate([fp32.encode_pil(images[i : i + 8]) for i in range(0, len(images), 8)]))  # fmt: skip
    text_cos = cos(int8.encode_texts(texts), fp32.encode_texts(texts))
    vs_torch = float(np.abs(fp32.encode_texts(texts[:20]) - torch_enc.encode_texts(texts[:20])).max())
    out = {
        "export_seconds": round(export_s, 1),
        "images": len(images),
        "texts": len(texts),
        "image_min_cosine": float(image_cos.min()),
        "image_median_cosine": float(np.median(image_cos)),
        "text_min_cosine": float(text_cos.min()),
        "text_median_cosine": float(np.median(text_cos)),
        "onnx_fp32_text_vs_torch_max_diff": vs_torch,
    }
    print(f"  {arch}: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in out.items()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--archs", nargs="*", default=["ViT-B-32", "ViT-B-16"])
    parser.add_argument("--skip-random", action="store_true")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print("test model on held-out scenes:")
        results["shapes-vit-tiny"] = test_model(tmp / "cache")
        if not args.skip_random:
            print("random-weight architectures, int8 vs fp32:")
            for arch in args.archs:
                results[arch] = random_arch(arch, tmp / "cache", tmp)
    OUT.mkdir(exist_ok=True)
    (OUT / "int8_quality.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
