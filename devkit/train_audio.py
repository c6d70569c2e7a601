"""Train the shapes-world audio tower against the frozen shapes-vit-tiny image tower (ImageBind's recipe).

    python -m devkit.train_audio --steps 1500 --out assets/models/shapes-audio-tiny.safetensors

Pairs are (rendered frame, its sound): single-object scenes of every (colour, shape), and empty
scenes with near silence; the frozen image tower embeds the frames once, up front. Sounds
(devkit.sounds) are drawn once into a pool, turned into log-mel frames once, and each step takes
random one-second crops of them. The loss is the symmetric CLIP loss between the audio embeddings
and the frozen image embeddings, with a learnt temperature; the image tower never changes, so the
sounds land in its space and, through it, near its text space. Seeds below HELD_OUT_SEED_BASE only.

Writes the weights (safetensors, fp32, with the image model id in their metadata) and the ONNX
graph indexing runs (same name, .onnx). ``--steps 0`` writes an untrained tower.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from clifs.engine.models import audio_shapes
from clifs.engine.models.audio_features import log_mel
from clifs.engine.models.audio_shapes_net import ShapesAudioNet, export_onnx
from devkit.shapes import COLOURS, SHAPES, render_scene
from devkit.sounds import scene_sound, sound_for
from devkit.train import clip_loss

#: Every class of pair: the 24 objects, and "none" (an empty scene, near silence).
CLASSES: list[str] = [f"{c} {s}" for c in COLOURS for s in SHAPES] + ["none"]
CLIP_SECONDS = 1.5
FRAMES = 1 + (audio_shapes.WINDOW_SAMPLES - audio_shapes.N_FFT) // audio_shapes.HOP


def class_sound(name: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    if name == "none":
        return scene_sound([], seconds, audio_shapes.SAMPLE_RATE, rng)
    colour, shape = name.split(" ")
    return sound_for(colour, shape, seconds, audio_shapes.SAMPLE_RATE, rng)


def image_targets(encoder, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """(classes, per_class, dim): the frozen image tower's embeddings of freshly rendered frames."""
    out = []
    for name in CLASSES:
        if name == "none":
            scenes = [render_scene(rng, 96, n_objects=0) for _ in range(per_class)]
        else:
            colour, shape = name.split(" ")
            scenes = [render_scene(rng, 96, n_objects=1, colours=(colour,), shapes=(shape,)) for _ in range(per_class)]
        out.append(encoder.encode_pil([s.image for s in scenes]))
    return np.stack(out).astype(np.float32)


def sound_pool(per_class: int, rng: np.random.Generator) -> np.ndarray:
    """(classes, per_class, N_MELS, frames) log-mel of CLIP_SECONDS sounds (not yet normalised)."""
    out = []
    for name in CLASSES:
        clips = np.stack([class_sound(name, CLIP_SECONDS, rng) for _ in range(per_class)])
        out.append(np.concatenate([log_mel(clips[i : i + 64], audio_shapes.SAMPLE_RATE, audio_shapes.N_FFT,
                                           audio_shapes.HOP, audio_shapes.N_MELS) for i in range(0, len(clips), 64)]))  # fmt: skip
    return np.stack(out)


def normalise(mel: torch.Tensor) -> torch.Tensor:
    """Per-window mean 0, std 1: the same arithmetic as audio_shapes.features."""
    mean = mel.mean(dim=(1, 2), keepdim=True)
    std = mel.std(dim=(1, 2), keepdim=True, unbiased=False)
    return (mel - mean) / (std + 1e-5)


def train(
    steps: int, batch: int, lr: float, seed: int, out: Path, per_class: int = 120, log_every: int = 100
) -> list[float]:
    """Train and save (see the module doc); returns the loss of every step."""
    from clifs.engine.models.testmodel import load

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    encoder = load(device="cpu", bilingual=False)
    net = ShapesAudioNet(dim=encoder.dim)
    losses: list[float] = []
    if steps:
        started = time.time()
        targets = torch.from_numpy(image_targets(encoder, per_class // 2, rng))
        pool = torch.from_numpy(sound_pool(per_class, rng))
        print(
            f"pairs ready in {time.time() - started:.0f} s: {tuple(targets.shape)} frames, {tuple(pool.shape)} sounds"
        )
        losses = fit(net, targets, pool, steps, batch, lr, rng, log_every)
    save(net, out, encoder.model_id, steps, seed)
    return losses


def fit(net, targets, pool, steps, batch, lr, rng, log_every) -> list[float]:
    """The CLIP loss between the net's audio embeddings and the frozen image embeddings of the same classes."""
    logit_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))
    opt = torch.optim.AdamW([*net.parameters(), logit_scale], lr=lr, weight_decay=0.01)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (
            (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, steps - warmup)))
        ),
    )
    n_classes, n_images = targets.shape[:2]
    n_clips, clip_frames = pool.shape[1], pool.shape[3]
    net.train()
    started = time.time()
    losses = []
    for step in range(steps):
        cls = torch.from_numpy(rng.integers(n_classes, size=batch))
        image = targets[cls, torch.from_numpy(rng.integers(n_images, size=batch))]
        clips = pool[cls, torch.from_numpy(rng.integers(n_clips, size=batch))]
        offsets = rng.integers(clip_frames - FRAMES + 1, size=batch)
        mel = torch.stack([c[:, o : o + FRAMES] for c, o in zip(clips, offsets)])
        loss = clip_loss(net(normalise(mel)), image, logit_scale.exp())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        with torch.no_grad():
            logit_scale.clamp_(0, math.log(100))
        if step % log_every == 0 or step == steps - 1:
            rate = (step + 1) / (time.time() - started)
            print(
                f"step {step:5d} loss {loss.item():.3f} scale {logit_scale.exp().item():.1f} {rate:.1f} steps/s",
                flush=True,
            )
    net.eval()
    return losses


def save(net: ShapesAudioNet, out: Path, image_model_id: str, steps: int, seed: int) -> None:
    """fp32 safetensors (metadata: the image model id) and the ONNX graph exported from them, each renamed into place."""
    from safetensors.torch import save_file

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    state = {k: v.detach().float().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(tmp), metadata={"image_model_id": image_model_id, "steps": str(steps), "seed": str(seed)})
    tmp.replace(out)
    export_onnx(net, out.with_suffix(".onnx"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=audio_shapes.WEIGHTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train(args.steps, args.batch, args.lr, args.seed, args.out)


if __name__ == "__main__":
    main()
