"""Label vocabularies: the ones that ship in ``clifs/engine/vision/vocab/``, user files, and per-model defaults.

A vocabulary is a plain text file, one label a line; blank lines and lines starting
with ``#`` are ignored. The test model only knows the shapes world, so it gets that
world's labels and background terms; every other model gets everyday objects,
scenes and the usual "stuff" background.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clifs.engine.models.base import Encoder

VOCAB_DIR = Path(__file__).resolve().parent / "vocab"
#: Names of the vocabularies that ship with clifs (file stems in VOCAB_DIR).
BUILTIN = ("everyday", "scenes", "background", "shapes", "shapes-background")
_TEST_MODEL_PREFIX = "openclip:shapes-vit-tiny:"


class VocabularyError(ValueError):
    """A vocabulary file is missing, unreadable or empty."""


def parse_labels(text: str) -> list[str]:
    """ "dog, person,,cat" -> ["dog", "person", "cat"] (order kept, duplicates dropped)."""
    return _unique(part.strip() for part in text.split(","))


def load_vocabulary(spec: str | Path) -> list[str]:
    """A built-in vocabulary by name ("everyday") or a user's text file by path."""
    path = VOCAB_DIR / f"{spec}.txt" if str(spec) in BUILTIN else Path(spec).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        known = ", ".join(BUILTIN)
        raise VocabularyError(f"Cannot read vocabulary {spec}: {exc}. Built-in vocabularies: {known}.") from None
    labels = _unique(line.strip() for line in text.splitlines() if not line.lstrip().startswith("#"))
    if not labels:
        raise VocabularyError(f"Vocabulary {path} holds no labels (one label a line; # starts a comment).")
    return labels


def _is_test_model(encoder: Encoder) -> bool:
    return encoder.model_id.startswith(_TEST_MODEL_PREFIX)


def default_labels(encoder: Encoder) -> list[str]:
    """What `clifs label` asks about when the user names no labels."""
    if _is_test_model(encoder):
        return load_vocabulary("shapes")
    return load_vocabulary("everyday") + load_vocabulary("scenes")


def background_labels(encoder: Encoder) -> list[str]:
    """Terms that compete with the queries for pixels and boxes, so that unclaimed regions stay background."""
    return load_vocabulary("shapes-background" if _is_test_model(encoder) else "background")


def contrast_labels(encoder: Encoder) -> list[str]:
    """Other things a box could be: an absent query must lose to one of them rather than win by default."""
    return load_vocabulary("shapes" if _is_test_model(encoder) else "everyday")


def _unique(labels) -> list[str]:
    return list(dict.fromkeys(label for label in labels if label))
