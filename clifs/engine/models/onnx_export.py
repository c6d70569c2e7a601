"""Export a model's towers to ONNX (with torch), check them against the model, quantize them to int8.

``export`` writes ``visual.onnx`` / ``textual.onnx`` (fp32), their dynamic-int8 versions and the
tokenizer into a folder, and returns what the record says about them (clifs.engine.models.model_cache).
A tower whose ONNX graph does not reproduce the torch model on the probes (PROBE_TOLERANCE, through
the numpy preprocessing and the ``tokenizers`` tokenizer that later runs will use) is not written.

torch.nn.MultiheadAttention cannot be exported with a dynamic batch or sequence length by the
TorchScript exporter (its reshapes bake the sizes seen while tracing), so while exporting every
such module is replaced by ``_ExportableAttention``: the same weights and arithmetic with sizes
read at run time. Checked at several batch sizes and text lengths before anything is saved.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from clifs.engine.models.base import Encoder, OnnxParts
from clifs.engine.models.onnx_runtime import GRAPH_FILES, ImagePrep, ImageTower, TextTower, Tokenizer

log = logging.getLogger(__name__)

OPSET = 18


class _ExportableAttention(torch.nn.Module):
    """nn.MultiheadAttention's forward (no dropout, no returned weights) with sizes read at run time."""

    def __init__(self, mha: torch.nn.MultiheadAttention):
        super().__init__()
        self.mha = mha

    def forward(self, query, key, value, key_padding_mask=None, need_weights=False, attn_mask=None,
                average_attn_weights=True, is_causal=False):  # fmt: skip
        m = self.mha
        if not m.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        heads, width = m.num_heads, m.embed_dim
        head = width // heads
        if m._qkv_same_embed_dim:
            wq, wk, wv = m.in_proj_weight.chunk(3)
        else:
            wq, wk, wv = m.q_proj_weight, m.k_proj_weight, m.v_proj_weight
        bq, bk, bv = m.in_proj_bias.chunk(3) if m.in_proj_bias is not None else (None, None, None)
        batch = query.shape[0]
        q = F.linear(query, wq, bq).reshape(batch, -1, heads, head).transpose(1, 2)
        k = F.linear(key, wk, bk).reshape(batch, -1, heads, head).transpose(1, 2)
        v = F.linear(value, wv, bv).reshape(batch, -1, heads, head).transpose(1, 2)
        scores = (q * head**-0.5) @ k.transpose(-2, -1)
        if attn_mask is not None:
            if attn_mask.dim() == 3:
                attn_mask = attn_mask.reshape(batch, heads, attn_mask.shape[-2], attn_mask.shape[-1])
            if attn_mask.dtype == torch.bool:
                scores = scores.masked_fill(attn_mask, float("-inf"))
            else:
                scores = scores + attn_mask
        if key_padding_mask is not None:
            hide = key_padding_mask[:, None, None, :]
            if hide.dtype == torch.bool:
                scores = scores.masked_fill(hide, float("-inf"))
            else:
                scores = scores + hide
        out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(batch, -1, width)
        out = m.out_proj(out)
        if not m.batch_first:
            out = out.transpose(0, 1)
        return out, None


@contextlib.contextmanager
def exportable_attention(module: torch.nn.Module) -> Iterator[None]:
    """Swap every nn.MultiheadAttention in ``module`` for ``_ExportableAttention`` while exporting."""
    found = [
        (parent, name, child)
        for parent in module.modules()
        for name, child in parent.named_children()
        if isinstance(child, torch.nn.MultiheadAttention)
    ]
    if any(child.bias_k is not None or child.add_zero_attn for _, _, child in found):
        raise ValueError("attention with bias_k or add_zero_attn is not supported")
    swapped = []
    for parent, name, child in found:
        setattr(parent, name, _ExportableAttention(child))
        swapped.append((parent, name, child))
    try:
        yield
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


def _export(module: torch.nn.Module, args: tuple, path: Path, inputs: list[str], axes: dict) -> None:
    with warnings.catch_warnings(), exportable_attention(module), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(), args, str(path), input_names=inputs, output_names=["embedding"],
            dynamic_axes=axes, opset_version=OPSET, dynamo=False, do_constant_folding=True,
        )  # fmt: skip


#: What dynamic int8 leaves fp32 of ONNX Runtime's list. Its ConvInteger ran a ViT's patch embedding on one
#: thread, a quarter of the int8 image tower's time; with that conv left fp32 the ViT-B-32 tower runs at
#: 74 img/s instead of 42 on 2 cores (bench/int8_quality.py checks the quality rule either way).
INT8_SKIPPED_OPS = ("Conv",)


def _quantize(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer's advice on the root logger is not for a person using clifs
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ops = [op for op in IntegerOpsRegistry if op not in INT8_SKIPPED_OPS]
            quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=ops)
    finally:
        root.setLevel(level)


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return float((a * b).sum(-1).min())


def export(
    encoder: Encoder, folder: Path, probe_images: list[Image.Image], probe_texts: list[str], tolerance: float
) -> dict | None:
    """Write the towers of ``encoder`` into ``folder``; returns {"towers", "sources", "dense"} or None (nothing)."""
    parts: OnnxParts | None = encoder.onnx_parts()
    if parts is None:
        return None
    towers: dict[str, dict] = {}
    jobs = {
        "image": (parts.image is not None and parts.prep is not None, _export_image, probe_images),
        "text": (parts.text is not None and parts.tokenizer_json is not None, _export_text, probe_texts),
    }
    for tower, (possible, run, probes) in jobs.items():
        if not possible:
            continue
        try:
            spec = run(encoder, parts, folder, probes, tolerance)
        except Exception as exc:  # an exporter that cannot handle this tower: it stays on torch
            log.warning("could not export the %s tower of %s: %s", tower, encoder.display_name, str(exc)[:300])
            spec = None
        if spec is not None:
            towers[tower] = spec
        else:
            for graph in GRAPH_FILES[tower].values():
                (folder / graph).unlink(missing_ok=True)
    if not towers:
        return None
    return {"towers": towers, "sources": parts.sources, "dense": parts.dense}


def _export_image(encoder: Encoder, parts: OnnxParts, folder: Path, probes: list[Image.Image], tolerance: float):
    prep = ImagePrep.from_json(parts.prep)
    path = folder / GRAPH_FILES["image"]["fp32"]
    _export(parts.image, (torch.zeros(2, 3, prep.size, prep.size),), path, ["pixels"], {"pixels": {0: "batch"}})
    expected = np.concatenate([encoder.encode_pil(probes), encoder.encode_pil(probes[:1])])
    tower = ImageTower(path, prep, threads=0)

    def run(t: ImageTower) -> np.ndarray:
        return np.concatenate([t.encode(np.stack([prep(im) for im in probes])), t.encode(prep(probes[0])[None])])

    got = run(tower)
    diff = float(np.abs(got - expected).max())
    if diff > tolerance:
        log.warning(
            "the exported image tower of %s differs from the model by %.2g; not saved", encoder.display_name, diff
        )
        path.unlink()
        return None
    spec = dict(parts.prep, fp32_max_diff=diff)
    if "image" in parts.quantize:
        spec.update(_int8(path, folder / GRAPH_FILES["image"]["int8"], got, lambda p: run(ImageTower(p, prep, 0))))
    return spec


def compact_tokenizer_json(text: str) -> str:
    """The same tokenizer in the JSON ``tokenizers`` reads fastest: no indentation, and a BPE's merges as
    "a b" strings rather than pairs where no piece holds a space. CLIP's read in 59 ms instead of 104,
    on the path of every cold text search. The export's probes check the result against torch."""
    data = json.loads(text)
    model = data.get("model") or {}
    merges = model.get("merges")
    if model.get("type") == "BPE" and merges and all(isinstance(m, list) and " " not in "".join(m) for m in merges):
        model["merges"] = [" ".join(m) for m in merges]
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _export_text(encoder: Encoder, parts: OnnxParts, folder: Path, probes: list[str], tolerance: float):
    from clifs.engine.models.model_cache import TOKENIZER_FILE

    (folder / TOKENIZER_FILE).write_text(compact_tokenizer_json(parts.tokenizer_json), encoding="utf-8")
    tokenizer = Tokenizer(folder / TOKENIZER_FILE, parts.tokenizer)
    sample = tokenizer(["a photo of a dog", "two words"])
    inputs = list(sample)
    dynamic = {0: "batch", 1: "length"} if parts.tokenizer["pad"] == "longest" else {0: "batch"}
    path = folder / GRAPH_FILES["text"]["fp32"]
    args = tuple(torch.from_numpy(sample[k]) for k in inputs)
    _export(parts.text, args, path, inputs, {k: dynamic for k in inputs})
    tower = TextTower(path, tokenizer, threads=0)
    # One batch of every probe (padded to the longest), then each alone (its own length).
    expected = np.concatenate([encoder.encode_texts(probes), *(encoder.encode_texts([t]) for t in probes)])

    def run(t: TextTower) -> np.ndarray:
        return np.concatenate([t.encode(probes), *(t.encode([p]) for p in probes)])

    got = run(tower)
    diff = float(np.abs(got - expected).max())
    if diff > tolerance:
        log.warning(
            "the exported text tower of %s differs from the model by %.2g; not saved", encoder.display_name, diff
        )
        path.unlink()
        return None
    spec = dict(parts.tokenizer, fp32_max_diff=diff)
    if "text" in parts.quantize:
        spec.update(_int8(path, folder / GRAPH_FILES["text"]["int8"], got, lambda p: run(TextTower(p, tokenizer, 0))))
    return spec


def _int8(src: Path, dst: Path, fp32: np.ndarray, run) -> dict:
    """Quantize a tower and measure it on the probes against fp32; the record keeps the worst cosine."""
    try:
        _quantize(src, dst)
        cosine = _min_cosine(run(dst), fp32)
    except Exception as exc:  # a graph the quantizer cannot handle: the tower stays fp32
        log.warning("could not quantize %s: %s", src.name, exc)
        dst.unlink(missing_ok=True)
        return {}
    return {"int8_min_cosine": cosine}
