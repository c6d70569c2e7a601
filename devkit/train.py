"""Train the shapes-world test model with the CLIP contrastive loss.

    python -m devkit.train --steps 2500 --out assets/models/shapes-vit-tiny.safetensors

Deterministic for a given seed and thread count. Scenes are drawn from seeds
below ``HELD_OUT_SEED_BASE`` only, so evaluations on higher seeds are held out.
Every other step is a "hard" batch of single-object scenes restricted to two
colours, so colour alone cannot separate the captions and the model must learn
shape; the loss is the plain CLIP one either way.
"""

from __future__ import annotations

import argparse
import json
import math
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from clifs.engine.models.openclip_spec import CONFIG_DIR, register_shipped_configs
from devkit.shapes import COLOURS, render_scene

MODEL_NAME = "shapes-vit-tiny"
CONFIG_PATH = CONFIG_DIR / f"{MODEL_NAME}.json"


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric cross-entropy over the batch (CLIP paper, Fig. 3)."""
    image_emb = F.normalize(image_emb, dim=-1)
    text_emb = F.normalize(text_emb, dim=-1)
    logits = logit_scale * image_emb @ text_emb.T
    labels = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def _batch(rng: np.random.Generator, size: int, batch: int, hard: bool) -> tuple[np.ndarray, list[str]]:
    images, captions = [], []
    colours = tuple(rng.choice(list(COLOURS), size=2, replace=False)) if hard else None
    for _ in range(batch):
        scene = render_scene(rng, size, n_objects=1 if hard else None, colours=colours)
        images.append(np.asarray(scene.image))
        captions.append(scene.caption)
    return np.stack(images), captions


def _prefetched(rng: np.random.Generator, size: int, batch: int, steps: int) -> Iterator[tuple[np.ndarray, list[str]]]:
    """Batches drawn in a background thread (the generator is the only user of ``rng``, so
    the stream is the same as drawing them inline), overlapping scene drawing with training."""
    ready: queue.Queue = queue.Queue(maxsize=3)

    def produce() -> None:
        for step in range(steps):
            ready.put(_batch(rng, size, batch, hard=step % 2 == 1))

    threading.Thread(target=produce, daemon=True).start()
    for _ in range(steps):
        yield ready.get()


def _to_tensor(images: np.ndarray, mean: tuple, std: tuple) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255)
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def train(steps: int, batch: int, lr: float, seed: int, out: Path, log_every: int = 50) -> None:
    import open_clip

    torch.manual_seed(seed)
    register_shipped_configs()
    cfg = json.loads(CONFIG_PATH.read_text())
    size = cfg["vision_cfg"]["image_size"]
    model = open_clip.create_model(MODEL_NAME, pretrained=None)
    tokenizer = open_clip.get_tokenizer(MODEL_NAME)
    mean, std = model.visual.image_mean, model.visual.image_std
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "embedding" in name or "logit_scale" in name else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (
            (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, steps - warmup)))
        ),
    )
    model.train()
    started = time.time()
    batches = _prefetched(np.random.default_rng(seed), size, batch, steps)
    for step in range(steps):
        images, captions = next(batches)
        x = _to_tensor(images, mean, std)
        tokens = tokenizer(captions)
        out_dict = model(x, tokens)
        image_emb, text_emb, scale = out_dict[0], out_dict[1], out_dict[2]
        loss = clip_loss(image_emb, text_emb, scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if step % log_every == 0 or step == steps - 1:
            rate = (step + 1) / (time.time() - started)
            print(
                f"step {step:5d} loss {loss.item():.3f} scale {scale.item():.1f} "
                f"lr {sched.get_last_lr()[0]:.2e} {rate:.2f} steps/s",
                flush=True,
            )
        if (step + 1) % 500 == 0 or step == steps - 1:
            save(model, out)


def save(model: torch.nn.Module, out: Path) -> None:
    """fp16 safetensors, written to a temp file and renamed so a reader never sees half a file."""
    from safetensors.torch import save_file

    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    tmp = out.with_suffix(".tmp")
    save_file(state, str(tmp))
    tmp.replace(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("assets/models") / f"{MODEL_NAME}.safetensors")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train(args.steps, args.batch, args.lr, args.seed, args.out)


if __name__ == "__main__":
    main()
