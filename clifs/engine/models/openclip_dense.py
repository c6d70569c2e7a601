"""Patch features of an open_clip ViT in its text space: the last block changed as ClearCLIP and NACLIP do.

A plain CLIP ViT's last-block patch tokens are poor per-location features ("vanilla", kept as
the baseline): the residual stream and the attention to global tokens wash out locality.
ClearCLIP (Lan et al. 2024) and NACLIP (Hajimiri et al. 2025) fix it without training by
changing only the last block: q, k, v from ``ln_1(x)``; attention softmax(q·qᵀ/√d) (ClearCLIP)
or softmax(k·kᵀ/√d + a Gaussian neighbourhood bias) (NACLIP); ``out_proj``; no residual, no
MLP; then ``ln_post`` and ``proj`` on every patch token. The positional embedding is
interpolated for grid sizes the model was not trained at (open_clip does not).
"""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F

from clifs.engine.models.base import PatchFeatures
from clifs.engine.vision import METHODS


def vit_patch_features(model: torch.nn.Module) -> OpenClipPatchFeatures | None:
    """The patch features of ``model``'s open_clip VisionTransformer if the recipe applies to it, else None."""
    from open_clip.transformer import ResidualAttentionBlock, VisionTransformer

    visual = getattr(model, "visual", None)
    if not isinstance(visual, VisionTransformer) or visual.attn_pool is not None or visual.proj is None:
        return None
    last = visual.transformer.resblocks[-1]
    if not isinstance(last, ResidualAttentionBlock) or hasattr(last, "ln_1_kv"):
        return None  # qk-norm / scaled-cosine blocks and cross-attention use other attention modules
    return OpenClipPatchFeatures.of(visual)


class OpenClipPatchFeatures(PatchFeatures):
    """Patch features of one open_clip VisionTransformer, with its per-size caches."""

    _instances: weakref.WeakKeyDictionary[torch.nn.Module, OpenClipPatchFeatures] = weakref.WeakKeyDictionary()

    def __init__(self, visual) -> None:
        import open_clip

        self.visual = weakref.proxy(visual)  # the cache must not keep a dropped model alive
        self.patch = visual.patch_size[0]
        self.native = visual.image_size[0]
        cfg = open_clip.get_model_preprocess_cfg(visual)
        mean = cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)
        std = cfg.get("std", open_clip.OPENAI_DATASET_STD)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self.device = next(visual.parameters()).device
        self._pos: dict[tuple[int, int], torch.Tensor] = {}
        self._bias: dict[tuple[int, int, float], torch.Tensor] = {}

    @classmethod
    def of(cls, visual) -> OpenClipPatchFeatures:
        if visual not in cls._instances:
            cls._instances[visual] = cls(visual)
        return cls._instances[visual]

    def normalise_pixels(self, unit: torch.Tensor) -> torch.Tensor:
        return (unit - self.mean) / self.std

    def patch_features(self, x: torch.Tensor, method: str, sigma: float = 5.0) -> torch.Tensor:
        v = self.visual
        tokens = v.conv1(x)
        b, _, gh, gw = tokens.shape
        tokens = tokens.flatten(2).transpose(1, 2)
        cls = v.class_embedding.view(1, 1, -1).expand(b, -1, -1).to(tokens.dtype)
        tokens = torch.cat([cls, tokens], dim=1) + self._positional(gh, gw).to(tokens.dtype)
        tokens = v.ln_pre(tokens)
        blocks = v.transformer.resblocks
        batch_first = getattr(v.transformer, "batch_first", True)
        tokens = tokens if batch_first else tokens.transpose(0, 1)
        for block in blocks[:-1]:
            tokens = block(tokens)
        if method == "vanilla":
            tokens = blocks[-1](tokens)
            tokens = tokens if batch_first else tokens.transpose(0, 1)
        else:
            tokens = tokens if batch_first else tokens.transpose(0, 1)
            tokens = self._last_block(tokens, method, gh, gw, sigma)
        out = v.ln_post(tokens[:, 1:]) @ v.proj
        return F.normalize(out.float(), dim=-1).view(b, gh, gw, -1)

    def _last_block(self, x: torch.Tensor, method: str, gh: int, gw: int, sigma: float) -> torch.Tensor:
        """The modified last block on (B, L, D) tokens: self-similarity attention, no residual, no MLP."""
        block = self.visual.transformer.resblocks[-1]
        attn = block.attn
        b, n, d = x.shape
        heads = attn.num_heads
        q, k, v = F.linear(block.ln_1(x), attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.reshape(b, n, heads, d // heads).transpose(1, 2) for t in (q, k, v))
        if method == "clearclip":
            out = F.scaled_dot_product_attention(q, q, v)
        elif method == "naclip":
            out = F.scaled_dot_product_attention(k, k, v, attn_mask=self._gaussian_bias(gh, gw, sigma).to(x.dtype))
        else:
            raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        out = attn.out_proj(out.transpose(1, 2).reshape(b, n, d))
        return block.ls_1(out)

    def _positional(self, gh: int, gw: int) -> torch.Tensor:
        """The positional embedding for a gh × gw grid, bicubically interpolated from the trained grid."""
        if (gh, gw) not in self._pos:
            pos = self.visual.positional_embedding
            n0 = pos.shape[0] - 1
            g0h, g0w = self.visual.grid_size
            if (gh, gw) == (g0h, g0w) or n0 != g0h * g0w:
                self._pos[(gh, gw)] = pos
            else:
                grid = pos[1:].reshape(1, g0h, g0w, -1).permute(0, 3, 1, 2).float()
                grid = F.interpolate(grid, size=(gh, gw), mode="bicubic", align_corners=False)
                grid = grid.permute(0, 2, 3, 1).reshape(gh * gw, -1).to(pos.dtype)
                self._pos[(gh, gw)] = torch.cat([pos[:1], grid])
        return self._pos[(gh, gw)]

    def _gaussian_bias(self, gh: int, gw: int, sigma: float) -> torch.Tensor:
        """NACLIP's additive attention bias exp(-dist²/2σ²) between patches; 0 to and from the class token."""
        key = (gh, gw, sigma)
        if key not in self._bias:
            yy, xx = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
            pts = torch.stack([yy.flatten(), xx.flatten()], dim=1).float()
            gauss = torch.exp(-torch.cdist(pts, pts).pow(2) / (2 * sigma**2))
            bias = torch.zeros(gh * gw + 1, gh * gw + 1)
            bias[1:, 1:] = gauss
            self._bias[key] = bias.to(self.device)
        return self._bias[key]
