"""The plain open_clip text tower: its forward pass with the padding cut off, and its export as arrays
for the numpy tower (clifs.engine.models.clip_text_numpy) that text searches run without torch."""

from __future__ import annotations

from pathlib import Path

import torch

from clifs.engine.models.base import TextTowerExport
from clifs.engine.models.clip_text_numpy import ClipTextConfig


def is_plain_clip(model: torch.nn.Module) -> bool:
    """True for open_clip's own CLIP text tower (token embedding + projection), not a Hugging Face one."""
    return hasattr(model, "token_embedding") and hasattr(model, "text_projection")


def encode_text_trimmed(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """CLIP's text tower with the padding cut off.

    The text transformer is causal and pools at the end-of-text token (the
    highest id, hence argmax), so every position after the last end token in
    the batch changes nothing: cutting them is exact and 2-3x cheaper for a
    short query than running all 77 positions.
    """
    length = int(tokens.argmax(dim=-1).max().item()) + 1
    tokens = tokens[:, :length]
    if not is_plain_clip(model) or getattr(model, "text_pool_type", "argmax") != "argmax":
        return model.encode_text(tokens)
    from open_clip.transformer import text_global_pool

    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast) + model.positional_embedding[:length].to(cast)
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = text_global_pool(x, tokens, "argmax")
    return (
        x @ model.text_projection
        if not isinstance(model.text_projection, torch.nn.Linear)
        else model.text_projection(x)
    )


def text_export(model: torch.nn.Module, tokenizer, weights: Path | None) -> TextTowerExport | None:
    """The plain open_clip text tower with the default tokenizer as arrays; None for any other design
    or for random weights (``weights`` None: nothing on disk a saved tower could be checked against)."""
    from open_clip.tokenizer import SimpleTokenizer, _clean_lower
    from open_clip.transformer import QuickGELU

    if (
        weights is None
        or not is_plain_clip(model)
        or getattr(model, "text_pool_type", "argmax") != "argmax"
        or model.attn_mask is None
        or type(tokenizer) is not SimpleTokenizer
        or tokenizer.clean_fn is not _clean_lower
        or tokenizer.reduction_fn is not None
        or tokenizer.vocab_size != model.token_embedding.num_embeddings
    ):
        return None
    blocks = model.transformer.resblocks
    activations = {torch.nn.GELU: "gelu", QuickGELU: "quick_gelu"}
    if not all(
        type(b.mlp.gelu) in activations
        and getattr(b.mlp.gelu, "approximate", "none") == "none"
        and isinstance(b.attn, torch.nn.MultiheadAttention)
        for b in blocks
    ):
        return None
    tensors = {
        name: value.detach().float().cpu().numpy()
        for name, value in model.state_dict().items()
        if name.startswith(("transformer.", "token_embedding.", "ln_final.")) or name == "positional_embedding"
    }
    if isinstance(model.text_projection, torch.nn.Linear):
        tensors["text_projection"] = model.text_projection.weight.detach().float().T.cpu().numpy()
        if model.text_projection.bias is not None:
            tensors["text_projection_bias"] = model.text_projection.bias.detach().float().cpu().numpy()
    else:
        tensors["text_projection"] = model.text_projection.detach().float().cpu().numpy()
    config = ClipTextConfig(
        layers=len(blocks),
        heads=blocks[0].attn.num_heads,
        context_length=tokenizer.context_length,
        activation=activations[type(blocks[0].mlp.gelu)],
        eps=model.ln_final.eps,
    )
    return TextTowerExport("clip", tensors, config.to_json(), [weights])
