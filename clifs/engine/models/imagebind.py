"""ImageBind (Girdhar et al. 2023; code MIT-style, weights CC-BY-NC 4.0) as a model of its own: its image,
text and audio towers, one space (model id ``imagebind:huge:<checksum>``).

Why not bind its audio tower to open_clip's ViT-H-14 (LAION-2B)? ImageBind's paper initialises and
freezes OpenCLIP ViT-H for images and text, and its code builds the same shapes (a 32-block,
1280-wide ViT with 14-pixel patches and a 1024-d projection; a 24-block, 1024-wide causal text
transformer over open_clip's BPE, EOT pooling), with the same image preprocessing (bicubic resize to
224, centre crop, OpenAI mean/std). But the checkpoint ships its own copy of those weights, the patch
stem is a Conv3d over the image repeated twice (kernel 2x14x14), and every LayerNorm uses eps 1e-6
where open_clip's ViT-H-14 uses 1e-5. So the two models' vectors are at best close, not equal, and
whether the copied weights are LAION-2B's exactly cannot be checked without both checkpoints. Vectors
of different models are never mixed, so ImageBind gets its own space and its own index.

The modules reproduce ``imagebind_huge()``'s state-dict names and shapes for these three modalities
(``modality_preprocessors|trunks|heads|postprocessors.{vision,text,audio}``); depth, thermal and IMU in
the checkpoint are ignored. ``imagebind-unofficial`` is not a dependency: its package imports
torchaudio, pytorchvideo and iopath at import time. Weights: ``CLIFS_IMAGEBIND`` (a path to
imagebind_huge.pth) or torch hub's cache; read with ``torch.load(weights_only=True, mmap=True)``.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from clifs.engine.models.audio_base import AudioEncoder
from clifs.engine.models.base import Encoder, ModelUnavailable, pick_device
from clifs.engine.models.imagebind_fbank import N_MELS, SAMPLE_RATE, TARGET_FRAMES, fbank

CHECKPOINT = "imagebind_huge.pth"
RELEASE = "https://dl.fbaipublicfiles.com/imagebind/imagebind_huge.pth"
ENV = "CLIFS_IMAGEBIND"
MODALITIES = ("vision", "text", "audio")
_LN_EPS = 1e-6
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class Widths:
    """Width, blocks and heads of each tower, and the shared output width."""

    vision: tuple[int, int, int] = (1280, 32, 16)
    text: tuple[int, int, int] = (1024, 24, 16)
    audio: tuple[int, int, int] = (768, 12, 12)
    out: int = 1024


HUGE = Widths()


class Mlp(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """ImageBind's BlockWithMasking (pre-norm, no layer scale), on (L, B, D) tokens."""

    def __init__(self, width: int, heads: int, bias_kv: bool):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, bias=True, add_bias_kv=bias_kv)
        self.norm_1 = nn.LayerNorm(width, eps=_LN_EPS)
        self.mlp = Mlp(width)
        self.norm_2 = nn.LayerNorm(width, eps=_LN_EPS)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        h = self.norm_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.norm_2(x))


class Trunk(nn.Module):
    def __init__(self, width: int, blocks: int, heads: int, pre_norm: bool, bias_kv: bool):
        super().__init__()
        self.pre_transformer_layer = nn.Sequential(nn.LayerNorm(width, eps=_LN_EPS)) if pre_norm else nn.Sequential()
        self.blocks = nn.ModuleList(Block(width, heads, bias_kv) for _ in range(blocks))

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.pre_transformer_layer(tokens).transpose(0, 1)
        for block in self.blocks:
            x = block(x, mask)
        return x.transpose(0, 1)


class _Holder(nn.Module):
    """A named slot in the state dict (``pos_embedding_helper``, ``rgbt_stem``)."""


class PatchPreprocessor(nn.Module):
    """RGBDTPreprocessor/AudioPreprocessor: a patch stem, a class token, learnt positions."""

    def __init__(self, stem: nn.Module, width: int, tokens: int, norm: bool):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.rgbt_stem = _Holder()
        self.rgbt_stem.proj = stem
        if norm:
            self.rgbt_stem.norm_layer = nn.LayerNorm(width)
        self.pos_embedding_helper = _Holder()
        self.pos_embedding_helper.pos_embed = nn.Parameter(torch.zeros(1, tokens, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.rgbt_stem.proj(x).flatten(2).transpose(1, 2)
        if hasattr(self.rgbt_stem, "norm_layer"):
            x = self.rgbt_stem.norm_layer(x)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1)
        return x + self.pos_embedding_helper.pos_embed


class RepeatFrames(nn.Module):
    """PadIm2Video(repeat, 2): an image as a two-frame clip (B, C, 2, H, W)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(2).expand(-1, -1, 2, -1, -1)


class TextPreprocessor(nn.Module):
    def __init__(self, width: int, vocab: int = 49408, context: int = 77):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, width)
        self.pos_embed = nn.Parameter(torch.zeros(1, context, width))
        self.register_buffer("mask", torch.full((context, context), float("-inf")).triu_(1))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.token_embedding(tokens) + self.pos_embed


class Scale(nn.Module):
    """LearnableLogitScaling: only its ``log_logit_scale`` is kept (a parameter for text, a buffer for audio)."""

    def __init__(self, init: float, learnable: bool):
        super().__init__()
        value = torch.tensor(float(np.log(init)))
        if learnable:
            self.log_logit_scale = nn.Parameter(value)
        else:
            self.register_buffer("log_logit_scale", value)


class SelectFirst(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0]


class ImageBindNet(nn.Module):
    """ImageBind's vision, text and audio towers with its module names."""

    def __init__(self, widths: Widths = HUGE):
        super().__init__()
        (vw, vb, vh), (tw, tb, th), (aw, ab, ah) = widths.vision, widths.text, widths.audio
        vision_stem = nn.Sequential(RepeatFrames(), nn.Conv3d(3, vw, (2, 14, 14), stride=(2, 14, 14), bias=False))
        audio_stem = nn.Conv2d(1, aw, kernel_size=16, stride=10, bias=False)
        audio_tokens = 1 + ((N_MELS - 16) // 10 + 1) * ((TARGET_FRAMES - 16) // 10 + 1)
        self.modality_preprocessors = nn.ModuleDict({
            "vision": PatchPreprocessor(vision_stem, vw, 1 + 16 * 16, norm=False),
            "text": TextPreprocessor(tw),
            "audio": PatchPreprocessor(audio_stem, aw, audio_tokens, norm=True),
        })  # fmt: skip
        self.modality_trunks = nn.ModuleDict({
            "vision": Trunk(vw, vb, vh, pre_norm=True, bias_kv=False),
            "text": Trunk(tw, tb, th, pre_norm=False, bias_kv=False),
            "audio": Trunk(aw, ab, ah, pre_norm=False, bias_kv=True),
        })  # fmt: skip
        text_head = _Holder()
        text_head.proj = nn.Sequential(nn.LayerNorm(tw, eps=_LN_EPS), nn.Linear(tw, widths.out, bias=False))
        self.modality_heads = nn.ModuleDict({
            "vision": nn.Sequential(nn.LayerNorm(vw, eps=_LN_EPS), SelectFirst(), nn.Linear(vw, widths.out, bias=False)),
            "text": text_head,
            "audio": nn.Sequential(nn.LayerNorm(aw, eps=_LN_EPS), SelectFirst(), nn.Linear(aw, widths.out, bias=False)),
        })  # fmt: skip
        self.modality_postprocessors = nn.ModuleDict({
            "text": nn.Sequential(nn.Identity(), Scale(1 / 0.07, learnable=True)),
            "audio": nn.Sequential(nn.Identity(), Scale(20.0, learnable=False)),
        })  # fmt: skip

    def _tower(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        tokens = self.modality_trunks[modality](self.modality_preprocessors[modality](x))
        return F.normalize(self.modality_heads[modality](tokens), dim=-1)

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self._tower("vision", pixels)

    def encode_audio(self, mel: torch.Tensor) -> torch.Tensor:
        return self._tower("audio", mel)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        pre = self.modality_preprocessors["text"]
        x = self.modality_trunks["text"](pre(tokens), pre.mask)
        eot = x[torch.arange(len(x)), tokens.argmax(dim=-1)]
        return F.normalize(self.modality_heads["text"].proj(eot), dim=-1)

    @property
    def logit_scale(self) -> float:
        return float(self.modality_postprocessors["text"][1].log_logit_scale.detach().exp().clamp(max=100))


def weights_path() -> Path:
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(home).expanduser() / "hub" / "checkpoints" / CHECKPOINT


def _checksum(path: Path) -> str:
    import hashlib

    with path.open("rb") as f:
        return hashlib.sha1(str(path.stat().st_size).encode() + f.read(1 << 20)).hexdigest()[:12]


class ImageBindEncoder(Encoder):
    """ImageBind's image and text towers as an Encoder; ``audio()`` gives its audio tower, same space."""

    def __init__(self, net: ImageBindNet, model_id: str, device: str, weights: Path | None = None):
        from open_clip import get_tokenizer
        from torchvision import transforms

        self.net = net.eval().to(device)
        self.device = device
        self.model_id = model_id
        self.display_name = "ImageBind (huge)"
        self.dim = net.modality_heads["vision"][2].out_features
        self.logit_scale = net.logit_scale
        self.tokenizer = get_tokenizer("ViT-H-14")  # open_clip's SimpleTokenizer: ImageBind's BPE, 77 tokens
        self.weights = weights
        self.runtime = f"torch fp32 {device}"
        self.images_encoded = 0
        self._transform = transforms.Compose([
            transforms.Resize(224, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize(OPENAI_MEAN, OPENAI_STD),
        ])  # fmt: skip

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return self._transform(image.convert("RGB"))

    @torch.inference_mode()
    def _encode_images(self, batch: torch.Tensor) -> np.ndarray:
        return self.net.encode_image(batch.to(self.device)).float().cpu().numpy()

    @torch.inference_mode()
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        return self.net.encode_text(self.tokenizer(texts).to(self.device)).float().cpu().numpy()

    def audio(self) -> ImageBindAudio:
        return ImageBindAudio(self.net, self.model_id, self.device)


class ImageBindAudio(AudioEncoder):
    """ImageBind's audio tower: two-second 16 kHz windows, Kaldi filter banks (imagebind_fbank)."""

    sample_rate = SAMPLE_RATE
    window_seconds = 2.0

    def __init__(self, net: ImageBindNet, image_model_id: str, device: str):
        self.net = net
        self.device = device
        self.image_model_id = image_model_id
        self.model_id = f"{image_model_id}:audio"
        self.display_name = "ImageBind audio (its own space: ImageBind huge)"
        self.dim = net.modality_heads["audio"][2].out_features

    @torch.inference_mode()
    def encode_audio(self, windows: np.ndarray) -> np.ndarray:
        windows = self.check_windows(windows)
        if len(windows) == 0:
            return np.zeros((0, self.dim), np.float32)
        mel = torch.from_numpy(fbank(windows)).to(self.device)
        return self.net.encode_audio(mel).float().cpu().numpy()


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's vision, text and audio tensors (the other modalities left on disk, thanks to mmap)."""
    state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    return {k: v for k, v in state.items() if k.split(".")[1:2] and k.split(".")[1] in MODALITIES}


def load(device: str = "auto", path: Path | None = None, widths: Widths = HUGE) -> ImageBindEncoder:
    """ImageBind from ``path`` (default weights_path()); ModelUnavailable with one sentence when it cannot be read."""
    path = path or weights_path()
    if not path.is_file():
        raise ModelUnavailable(
            f"ImageBind's weights are not at {path}: download {RELEASE} (CC-BY-NC 4.0, non-commercial use) "
            f"there, or set {ENV} to the path of imagebind_huge.pth."
        )
    try:
        state = read_state(path)
        with torch.device("meta"):
            net = ImageBindNet(widths)
        net.load_state_dict(state, strict=True, assign=True)
    except (OSError, RuntimeError, ValueError, KeyError, AttributeError, pickle.UnpicklingError) as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ModelUnavailable(f"ImageBind's weights at {path} cannot be read: {first_line}.") from None
    return ImageBindEncoder(net, f"imagebind:huge:{_checksum(path)}", pick_device(device), path)


def load_audio(image: Encoder, device: str = "auto", cache_dir: Path | None = None) -> AudioEncoder:
    """The audio tower of the ImageBind model ``image`` (the audio binding's loader)."""
    if not isinstance(image, ImageBindEncoder):
        raise ModelUnavailable(f"ImageBind's audio tower needs ImageBind's own image model, not {image.display_name}.")
    return image.audio()
