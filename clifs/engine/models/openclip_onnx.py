"""An open_clip model's towers as modules to export to ONNX, its preprocessing as data, its tokenizer as a
``tokenizers`` JSON (clifs.engine.models.onnx_export writes and checks them).

The image tower is any open_clip image tower (``encode_image``). The text tower is open_clip's own CLIP
transformer, run with the padding cut off when that is exact (causal attention, pooled at the end
token), else the model's ``encode_text`` over the full context, which covers Hugging Face towers
(e.g. xlm-roberta-base-ViT-B-32) too. open_clip's BPE tokenizer is rebuilt as a ``tokenizers`` BPE
from its own vocabulary and merges; a Hugging Face tokenizer is saved as it is.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from clifs.engine.models.base import OnnxParts
from clifs.engine.models.openclip_text import is_plain_clip


class ImageTower(torch.nn.Module):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.encode_image(pixels), dim=-1)


class TrimmedClipText(torch.nn.Module):
    """open_clip's CLIP text tower over tokens of any length (padding cut off: exact for a causal tower
    pooled at the end token, the highest id)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        m = self.model
        length = tokens.shape[1]
        cast = m.transformer.get_cast_dtype()
        x = m.token_embedding(tokens).to(cast) + m.positional_embedding[:length].to(cast)
        x = m.transformer(x, attn_mask=m.attn_mask[:length, :length])
        x = m.ln_final(x)
        x = x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)]
        x = m.text_projection(x) if isinstance(m.text_projection, torch.nn.Linear) else x @ m.text_projection
        return F.normalize(x, dim=-1)


class FullContextText(torch.nn.Module):
    """Any open_clip text tower over tokens padded to the context length."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.encode_text(tokens), dim=-1)


def _prep(model: torch.nn.Module) -> dict | None:
    """open_clip's eval transform as onnx_runtime.ImagePrep JSON; None for one it does not reproduce."""
    from open_clip import get_model_preprocess_cfg

    cfg = get_model_preprocess_cfg(model)
    size = cfg["size"]
    size = size if isinstance(size, int) else (size[0] if size[0] == size[1] else None)
    mode = cfg.get("resize_mode", "shortest")
    interpolation = cfg.get("interpolation", "bicubic")
    if size is None or mode not in ("shortest", "squash") or interpolation not in ("bicubic", "bilinear"):
        return None
    return {"size": int(size), "mean": [float(v) for v in cfg["mean"]], "std": [float(v) for v in cfg["std"]],
            "mode": mode, "interpolation": interpolation}  # fmt: skip


def _clean_mode(tokenizer) -> str | None:
    from open_clip.tokenizer import _clean_lower, _clean_whitespace

    return {_clean_lower: "lower", _clean_whitespace: "whitespace"}.get(getattr(tokenizer, "clean_fn", None))


def clip_bpe_json(tokenizer) -> str:
    """open_clip's SimpleTokenizer as a ``tokenizers`` JSON: the same pieces, byte symbols, merges and specials.

    Cleaning (ftfy, HTML, whitespace, lower case) stays outside, in onnx_runtime.Tokenizer, as open_clip does it.
    """
    from tokenizers import AddedToken, Regex, decoders, models, pre_tokenizers, processors
    from tokenizers import Tokenizer as HFTokenizer

    merges = sorted(tokenizer.bpe_ranks, key=tokenizer.bpe_ranks.get)
    specials = [tokenizer.decoder[i] for i in tokenizer.all_special_ids]
    bpe = models.BPE(vocab=dict(tokenizer.encoder), merges=list(merges), end_of_word_suffix="</w>", fuse_unk=False)
    tok = HFTokenizer(bpe)
    pattern = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(pattern), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    sot, eot = tokenizer.decoder[tokenizer.sot_token_id], tokenizer.decoder[tokenizer.eot_token_id]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{sot} $A {eot}",
        special_tokens=[(sot, tokenizer.sot_token_id), (eot, tokenizer.eot_token_id)],
    )
    return tok.to_str()


def _tokenizer(model: torch.nn.Module, tokenizer, trimmed: bool) -> tuple[str, dict] | None:
    from open_clip.tokenizer import HFTokenizer, SimpleTokenizer

    clean = _clean_mode(tokenizer)
    if clean is None:
        return None
    if type(tokenizer) is SimpleTokenizer and tokenizer.reduction_fn is None:
        spec = {"clean": clean, "context_length": tokenizer.context_length, "pad_id": 0, "pad_token": "<pad>",
                "pad": "longest" if trimmed else "max"}  # fmt: skip
        return clip_bpe_json(tokenizer), spec
    if isinstance(tokenizer, HFTokenizer) and not tokenizer.tokenizer_mode and not tokenizer.strip_sep_token:
        hf = tokenizer.tokenizer
        backend = getattr(hf, "backend_tokenizer", None)
        if backend is None or hf.pad_token_id is None:
            return None
        spec = {"clean": clean, "context_length": tokenizer.context_length, "pad_id": int(hf.pad_token_id),
                "pad_token": hf.pad_token, "pad": "max"}  # fmt: skip
        saved = json.loads(backend.to_str())
        saved["truncation"] = saved["padding"] = None  # set by onnx_runtime.Tokenizer
        return json.dumps(saved), spec
    return None


def onnx_parts(model: torch.nn.Module, tokenizer, weights: Path | None) -> OnnxParts | None:
    """The exportable towers of an open_clip model loaded from ``weights`` (None: random weights, nothing
    on disk a record could be checked against, so nothing to export)."""
    if weights is None:
        return None
    from clifs.engine.models.openclip_dense import vit_patch_features

    trimmed = (
        is_plain_clip(model)
        and getattr(model, "text_pool_type", "argmax") == "argmax"
        and getattr(model, "attn_mask", None) is not None
    )
    text = _tokenizer(model, tokenizer, trimmed)
    if text is not None and not trimmed and int(getattr(tokenizer, "context_length", 0) or 0) <= 0:
        text = None
    prep = _prep(model)
    return OnnxParts(
        image=ImageTower(model) if prep is not None else None,
        prep=prep,
        text=(TrimmedClipText(model) if trimmed else FullContextText(model)) if text is not None else None,
        tokenizer_json=text[0] if text else None,
        tokenizer=text[1] if text else None,
        sources=[weights],
        dense="patch" if vit_patch_features(model) is not None else None,
    )
