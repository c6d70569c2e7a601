"""clifs: find your own photos and video moments by meaning.

from clifs import Library
lib = Library()                       # $CLIFS_HOME or the platform data dir
for hit in lib.search(text="a dog on a beach", top=5):
    print(hit.score, hit.path, hit.timestamp)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clifs.engine.library import Library
    from clifs.engine.search import Hit, Moment, Query

__all__ = ["Library", "Hit", "Moment", "Query"]
_EXPORTS = {
    "Library": "clifs.engine.library",
    "Hit": "clifs.engine.search",
    "Moment": "clifs.engine.search",
    "Query": "clifs.engine.search",
}


def __getattr__(name: str):
    # Lazy, so `clifs list` and `clifs --help` do not pay for torch and FAISS.
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'clifs' has no attribute {name!r}")
