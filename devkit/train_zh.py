"""Teach the test model Chinese: a bilingual text tower trained LiT-style against the locked image tower.

    python -m devkit.train_zh --steps 3000 --out assets/models/shapes-vit-tiny-zh.safetensors

The text tower starts as a copy of the shipped model's; the image tower is locked (Zhai et al.
2022, "LiT"), so its embeddings of a pool of training scenes (seeds below HELD_OUT_SEED_BASE) are
computed once and are the targets of the CLIP loss. Each batch captions its scenes in Chinese
(devkit/shapes_zh.py) or English (half each), so the tower reads both; a distillation term pulls
each caption's embedding towards the shipped English tower's embedding of the scene's English
caption, which keeps the new tower in the space the stored vectors live in. Every other batch is a
"hard" one, as in devkit/train.py: single objects of two colours, so shape words matter. The
shipped checkpoint is not touched; the file written holds the new text tower only (the token rows
it changed, the transformer, the projection).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from clifs.engine.models import testmodel
from clifs.engine.models.shapes_bilingual import TextTowerParts
from devkit.shapes import COLOURS, _caption, render_scene
from devkit.shapes_zh import COLOURS_ZH, SHAPES_ZH, caption_zh
from devkit.train import clip_loss

OUT = Path("assets/models") / "shapes-vit-tiny-zh.safetensors"


def scene_pool(encoder, n: int, seed: int, single: bool) -> tuple[list, torch.Tensor]:
    """``n`` training scenes (objects and background kept, images dropped) and their locked image embeddings."""
    rng = np.random.default_rng(seed)
    size = encoder.model.visual.image_size
    size = size[0] if isinstance(size, tuple | list) else size
    scenes, vectors = [], []
    for start in range(0, n, 512):
        batch = [render_scene(rng, size, n_objects=1 if single else None) for _ in range(min(512, n - start))]
        vectors.append(torch.from_numpy(encoder.encode_pil([s.image for s in batch])))
        scenes += [(s.objects, s.background) for s in batch]
    return scenes, torch.cat(vectors)


def train(steps: int, batch: int, lr: float, seed: int, out: Path, pool: int, distill: float) -> None:
    torch.manual_seed(seed)
    encoder = testmodel.load(device="cpu", bilingual=False)
    model, tokenizer = encoder.model, encoder.tokenizer
    started = time.time()
    mixed, mixed_vec = scene_pool(encoder, pool, seed, single=False)
    singles, singles_vec = scene_pool(encoder, pool // 2, seed + 1, single=True)
    by_colour = {c: [i for i, (objs, _) in enumerate(singles) if objs[0].colour == c] for c in COLOURS}
    print(f"scene pools: {len(mixed)} + {len(singles)} in {time.time() - started:.0f} s", flush=True)

    tower = TextTowerParts(model).train()
    teacher = TextTowerParts(model).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    decay = [p for n, p in tower.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in tower.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    # No weight decay on the token rows: Adam leaves rows no caption uses exactly as they were.
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / (steps - warmup))),
    )
    scale = model.logit_scale.exp().detach()
    context = tokenizer.context_length

    def fits(text: str) -> bool:
        return int((tokenizer([text])[0] != 0).sum()) <= context

    rng = np.random.default_rng(seed + 2)
    started = time.time()
    for step in range(steps):
        if step % 2:
            pair = rng.choice(list(COLOURS), size=2, replace=False)
            idx = rng.choice(by_colour[pair[0]] + by_colour[pair[1]], size=batch, replace=False)
            scenes, images = [singles[i] for i in idx], singles_vec[idx]
        else:
            idx = rng.choice(len(mixed), size=batch, replace=False)
            scenes, images = [mixed[i] for i in idx], mixed_vec[idx]
        zh = rng.random(batch) < 0.5
        english = [_caption(rng, objs, bg) for objs, bg in scenes]
        captions = [caption_zh(rng, objs, bg, fits) if z else e for (objs, bg), e, z in zip(scenes, english, zh)]
        tokens = tokenizer(captions)
        from clifs.engine.models.openclip_text import encode_text_trimmed

        text = encode_text_trimmed(tower, tokens)
        with torch.no_grad():
            target = F.normalize(encode_text_trimmed(teacher, tokenizer(english)), dim=-1)
        loss = clip_loss(images, text, scale) + distill * (1 - (F.normalize(text, dim=-1) * target).sum(-1)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps - 1:
            rate = (step + 1) / (time.time() - started)
            print(
                f"step {step:5d} loss {loss.item():.3f} lr {sched.get_last_lr()[0]:.2e} {rate:.1f} steps/s", flush=True
            )
    save(tower, model, out)


def save(tower: TextTowerParts, model: torch.nn.Module, out: Path) -> None:
    from safetensors.torch import save_file

    out.parent.mkdir(parents=True, exist_ok=True)
    tensors = tower.tensors(model)
    state = {k: (v.detach().to(torch.float16) if v.is_floating_point() else v).contiguous() for k, v in tensors.items()}
    tmp = out.with_suffix(".tmp")
    save_file(state, str(tmp))
    tmp.replace(out)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB, {len(tensors['token_ids'])} token rows changed)")


#: Other ways to ask for one object, for the report: (name, query builder).
PHRASINGS = {
    "一个{colour}的{shape} (the issue's form)": lambda c, s: f"一个{COLOURS_ZH[c]}的{SHAPES_ZH[s][0]}",
    "{colour}的{shape}": lambda c, s: f"{COLOURS_ZH[c]}的{SHAPES_ZH[s][0]}",
    "一个{colour}{other name}": lambda c, s: f"一个{COLOURS_ZH[c]}{SHAPES_ZH[s][-1]}",
    "{colour}{shape}": lambda c, s: f"{COLOURS_ZH[c]}{SHAPES_ZH[s][0]}",
    "一张{colour}的{shape}的照片": lambda c, s: f"一张{COLOURS_ZH[c]}的{SHAPES_ZH[s][0]}的照片",
}


def report(gallery_size: int = 500) -> dict:
    """R@1 over devkit.evaluate's held-out gallery: English, the issue's Chinese form, other phrasings."""
    from devkit.evaluate import OBJECT_NAMES, text_to_image_recall_at_1
    from devkit.shapes import HELD_OUT_SEED_BASE, iter_scenes

    encoder = testmodel.load(device="cpu")
    english_only = testmodel.load(device="cpu", bilingual=False)
    out = {
        "English 'a {colour} {shape}'": text_to_image_recall_at_1(encoder, gallery_size),
        "Chinese, the English-only tower": text_to_image_recall_at_1(english_only, gallery_size, language="zh"),
    }
    scenes = list(iter_scenes(HELD_OUT_SEED_BASE + 2, gallery_size, 64))
    images = encoder.encode_pil([s.image for s in scenes])
    present = [n for n in OBJECT_NAMES if any(o.name == n for s in scenes for o in s.objects)]
    for name, build in PHRASINGS.items():
        texts = encoder.encode_texts([build(*n.split()) for n in present])
        top = (texts @ images.T).argmax(axis=1)
        out[f"Chinese {name}"] = float(
            np.mean([any(o.name == n for o in scenes[i].objects) for n, i in zip(present, top)])
        )
    for k, v in out.items():
        print(f"R@1 {v:.3f}  {k}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pool", type=int, default=20000, help="mixed training scenes (and half as many singles)")
    parser.add_argument("--distill", type=float, default=1.0, help="weight of the pull towards the English tower")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--report", action="store_true", help="only measure the shipped bilingual tower")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.report:
        report()
        return
    train(args.steps, args.batch, args.lr, args.seed, args.out, args.pool, args.distill)


if __name__ == "__main__":
    main()
