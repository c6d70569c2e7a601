"""Pixel-adaptive mask refinement (PAMR; Araslanov & Roth, CVPR 2020).

Patch-level masks are blocky and bleed over edges. PAMR lets each pixel take the
average of its neighbours' mask values, weighted by how alike their colours are
(relative to the local colour spread), repeated a few times: labels flow along
regions of one colour and stop at edges. No training, nothing learned.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def _shifted(x: torch.Tensor, dilations: tuple[int, ...]):
    """Yield the 8 neighbours of every pixel of (B, C, H, W) at each dilation, borders replicated."""
    h, w = x.shape[-2:]
    for d in dilations:
        padded = F.pad(x, (d, d, d, d), mode="replicate")
        for dy, dx in _OFFSETS:
            yield padded[..., d + dy * d : d + dy * d + h, d + dx * d : d + dx * d + w]


def pamr(
    image: torch.Tensor, masks: torch.Tensor, iterations: int = 10, dilations: tuple[int, ...] = (8, 16)
) -> torch.Tensor:
    """Refine soft ``masks`` (B, K, H, W) along the edges of ``image`` (B, 3, H, W); same shape out.

    Affinity to a neighbour j: softmax over neighbours of -|I - I_j| / (0.1 · local std), averaged
    over colour channels, as in the paper's reference implementation. Masks that sum to 1 per
    pixel still do afterwards (each step is a convex combination).
    """
    image = image.float()
    neigh = torch.stack(list(_shifted(image, dilations)), dim=2)  # (B, 3, P, H, W)
    spread = torch.cat([image.unsqueeze(2), neigh], dim=2).std(dim=2, keepdim=True)
    affinity = (-(neigh - image.unsqueeze(2)).abs() / (1e-8 + 0.1 * spread)).mean(dim=1).softmax(dim=1)
    del neigh, spread
    masks = masks.float()
    for _ in range(iterations):
        out = torch.zeros_like(masks)
        for j, shifted in enumerate(_shifted(masks, dilations)):
            out += affinity[:, j : j + 1] * shifted
        masks = out
    return masks
