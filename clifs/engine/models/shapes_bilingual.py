"""The test model reads Chinese too: a second, bilingual text tower for queries outside the Latin script.

``assets/models/shapes-vit-tiny-zh.safetensors`` holds a copy of the test model's text tower
trained LiT-style (devkit/train_zh.py: the image tower locked, its embeddings of shapes-world
scenes the targets of the CLIP loss) on English and Chinese captions. The shipped checkpoint is
untouched, so the image tower, every stored vector and every English result stay exactly as
they were: a text goes to the bilingual tower only when one of its tokens holds a UTF-8 byte of
0xE0 or more, i.e. a character at U+0800 or above (CJK, kana, hangul, Indic, Thai, and symbols
such as € or emoji). Latin, Greek and Cyrillic letters are below U+0800 and stay with the
original tower. The choice is made on the token ids, the same in torch and in the exported ONNX
graph (both towers and the routing in one graph), so text searches without torch see it too.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from clifs.engine.models.base import OnnxParts
from clifs.engine.models.openclip import OpenClipEncoder
from clifs.engine.models.openclip_text import encode_text_trimmed

#: The text-tower tensors a bilingual file holds besides the changed token rows (open_clip's CLIP names).
_TEXT_PREFIXES = ("transformer.", "ln_final.")
_TEXT_TENSORS = ("positional_embedding", "text_projection")


class TextTowerParts(torch.nn.Module):
    """The text half of an open_clip CLIP model on its own (what encode_text_trimmed reads)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.token_embedding = copy.deepcopy(model.token_embedding)
        self.positional_embedding = copy.deepcopy(model.positional_embedding)
        self.transformer = copy.deepcopy(model.transformer)
        self.ln_final = copy.deepcopy(model.ln_final)
        self.text_projection = copy.deepcopy(model.text_projection)
        self.register_buffer("attn_mask", model.attn_mask.clone(), persistent=False)
        self.text_pool_type = getattr(model, "text_pool_type", "argmax")

    def tensors(self, original: torch.nn.Module) -> dict[str, torch.Tensor]:
        """What a bilingual file stores: the text tower, with only the token rows that differ from ``original``."""
        state = self.state_dict()
        out = {k: v for k, v in state.items() if k.startswith(_TEXT_PREFIXES) or k in _TEXT_TENSORS}
        rows = self.token_embedding.weight.detach()
        changed = (rows != original.token_embedding.weight.detach()).any(dim=1).nonzero().flatten()
        out["token_ids"] = changed.to(torch.int64)
        out["token_rows"] = rows[changed]
        return out

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            ids = tensors["token_ids"].long()
            self.token_embedding.weight[ids] = tensors["token_rows"].to(self.token_embedding.weight.dtype)
            rest = {k: v for k, v in tensors.items() if k not in ("token_ids", "token_rows")}
            missing = self.load_state_dict(rest, strict=False)
            if missing.unexpected_keys:
                raise ValueError(f"unexpected tensors {missing.unexpected_keys[:3]}")


def routing_table(tokenizer, vocab_size: int) -> torch.Tensor:
    """(vocab,) bool: the token's bytes include one of 0xE0 or more (a character at U+0800 or above)."""
    table = torch.zeros(vocab_size, dtype=torch.bool)
    byte_decoder = tokenizer.byte_decoder
    for token, i in tokenizer.encoder.items():
        if i < vocab_size:
            text = token.removesuffix("</w>")
            table[i] = any(byte_decoder.get(c, 0) >= 0xE0 for c in text)
    return table


class RoutedText(torch.nn.Module):
    """Both towers over the same tokens; each row from the bilingual one when a token of it routes there."""

    def __init__(self, english: torch.nn.Module, bilingual: torch.nn.Module, table: torch.Tensor):
        super().__init__()
        self.english = english
        self.bilingual = bilingual
        self.register_buffer("table", table.to(torch.float32), persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        use = self.table[tokens].amax(dim=1, keepdim=True) > 0
        return torch.where(use, self.bilingual(tokens), self.english(tokens))


class BilingualShapesEncoder(OpenClipEncoder):
    """The test model with its bilingual text tower for non-Latin texts (see the module doc)."""

    def attach(self, tower: TextTowerParts, source: Path) -> None:
        self.bilingual = tower.eval().to(self.device)
        self.bilingual_source = source
        self.route = routing_table(self.tokenizer, self.model.token_embedding.num_embeddings).to(self.device)

    def routes(self, texts: list[str]) -> np.ndarray:
        """(n,) bool: which texts the bilingual tower encodes."""
        tokens = self.tokenizer(texts).to(self.device)
        return self.route[tokens].any(dim=1).cpu().numpy()

    @torch.inference_mode()
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        tokens = self.tokenizer(texts).to(self.device)
        use = self.route[tokens].any(dim=1)
        out = torch.empty(len(texts), self.dim, device=self.device)
        with self._autocast():
            if (~use).any():
                out[~use] = encode_text_trimmed(self.model, tokens[~use]).float()
            if use.any():
                out[use] = encode_text_trimmed(self.bilingual, tokens[use]).float()
        return F.normalize(out, dim=-1).cpu().numpy()

    def onnx_parts(self) -> OnnxParts | None:
        from clifs.engine.models.openclip_onnx import TrimmedClipText

        parts = super().onnx_parts()
        if parts is None or parts.text is None or not isinstance(parts.text, TrimmedClipText):
            return None  # the routing needs the trimmed CLIP tower on both sides: no export, torch it is
        parts.text = RoutedText(parts.text, TrimmedClipText(self.bilingual), self.route.cpu())
        parts.sources = [*parts.sources, self.bilingual_source]
        return parts


def load_bilingual(encoder: OpenClipEncoder, path: Path) -> BilingualShapesEncoder:
    """``encoder`` (the test model as loaded) with the bilingual tower in ``path``."""
    from safetensors.torch import load_file

    tower = TextTowerParts(encoder.model)
    tower.load_tensors({k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()})
    out = BilingualShapesEncoder(
        encoder.model, encoder.tokenizer, encoder.model_id, encoder.display_name, encoder.device, encoder.weights
    )
    out.attach(tower, path)
    return out
