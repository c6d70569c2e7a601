"""Which queries a model can read: the offline starter model's MiniLM reads English only.

Torch-free, so a text search can ask before anything heavy is imported.
"""

from __future__ import annotations

import unicodedata

from clifs.engine.models.base import TextEncoder

#: Suggested instead of the starter model for queries in other languages (clifs.engine.models.registry).
MULTILINGUAL = "multilingual"


def non_latin(text: str) -> bool:
    """True when ``text`` has a letter outside the Latin script (Chinese, Cyrillic, Arabic, ...)."""
    for ch in text:
        if unicodedata.category(ch).startswith("L") and not unicodedata.name(ch, "").startswith("LATIN"):
            return True
    return False


def unreadable_query(model: TextEncoder, text: str | None) -> str | None:
    """A sentence for the person when ``model`` cannot read ``text``, else None.

    Only the starter model is known to read English only: its MiniLM sentence encoder was trained on
    English, so a query in another script comes back as noise. Latin-script languages other than
    English are not detected (MiniLM reads some of them a little).
    """
    if not text or not model.model_id.startswith("starter:") or not non_latin(text):
        return None
    return (
        f"the offline starter model reads English only, and '{text.strip()}' is not English: these results are "
        f"noise. A CLIP model reads more; --model {MULTILINGUAL} (open_clip's xlm-roberta-base-ViT-B-32) reads "
        "Chinese and 100 other languages."
    )
