"""Options and helpers shared by the subcommands.

Everything here is light (no model, no catalog import), so that every command can use it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import stat
import sys
import time
from collections.abc import Callable
from typing import Any

from clifs.engine.errors import UsageError


def add_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        metavar="NAME|PATH",
        help="model to use (default: $CLIFS_MODEL, config.toml, else CLIP ViT-B-32 with the offline fallback)",
    )


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON array")


# -- numbers on the command line ------------------------------------------------------------------
def number(
    low: float | None = None,
    high: float | None = None,
    *,
    integer: bool = False,
    meaning: str = "",
) -> Callable[[str], float | int]:
    """An argparse ``type=`` that takes a finite number in [low, high] and says why when it does not.

    nan and inf are refused everywhere: a comparison with nan is always false, so it would
    silently disable whatever check the option feeds. ``meaning`` ends the message ("cosine
    scores lie in [-1, 1]").
    """

    def parse(text: str) -> float | int:
        kind = "a whole number" if integer else "a number"
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if (low is not None and value < low) or (high is not None and value > high):
            if low is not None and high is not None:
                rule = f"must be between {low:g} and {high:g}"
            elif low is not None:
                rule = f"must be at least {low:g}"
            else:
                rule = f"must be at most {high:g}"
            raise argparse.ArgumentTypeError(f"{text} {rule}" + (f" ({meaning})" if meaning else ""))
        return value

    parse.__name__ = "integer" if integer else "number"  # argparse names the type in some messages
    return parse


# -- paths given on the command line --------------------------------------------------------------
def require_file(path: str, what: str = "image", noun: str | None = None) -> str:
    """Fail (UsageError, exit 2) unless ``path`` is a regular file, saying what it is instead.

    Only ``stat`` is used: a FIFO is never opened (opening one blocks until a writer comes).
    ``what`` names the argument in the message ("query image"), ``noun`` what a folder is not.
    """
    noun = noun or what.split()[-1]
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.lexists(path):
            raise UsageError(f"{what} not found: {path} is a link to nothing") from None
        raise UsageError(f"{what} not found: {path}") from None
    except NotADirectoryError:
        raise UsageError(f"{what} not found: {path} (a part of the path is a file, not a folder)") from None
    except PermissionError:
        raise UsageError(f"{what} cannot be read: {path} (permission denied)") from None
    except (OSError, ValueError) as exc:  # name too long, an embedded NUL, ...
        raise UsageError(f"{what} cannot be read: {path} ({exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{what} {path} is a folder, not {_article(noun)} {noun}")
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{what} {path} is not a regular file (a FIFO, device or socket)")
    return path


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


# -- printing -------------------------------------------------------------------------------------
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}
# C0 and C1 controls and DEL; bidi overrides and isolates (they reorder what follows); line and
# paragraph separators; lone surrogates (os.fsdecode's stand-ins for bytes that are not UTF-8).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(match: re.Match) -> str:
    ch = match.group()
    code = ord(ch)
    if ch in _NAMED:
        return _NAMED[ch]
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable file-name byte: show the byte
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def printable(text: object) -> str:
    """``text`` safe for a terminal on one line: control characters become backslash escapes.

    "a\\nb" shows as ``a\\nb``, ESC as ``\\x1b``, a file-name byte that is not UTF-8 (which
    os.fsdecode turns into a lone surrogate U+DC80..U+DCFF) as ``\\xNN``. Everything else,
    including every printable non-ASCII letter, is left alone. For text output only: JSON
    output stays exact (see print_json).
    """
    return _UNPRINTABLE.sub(_escape, str(text))


def print_json(value: Any) -> None:
    """One JSON document on stdout, exact: a lone surrogate (a file name that is not UTF-8) is written
    as the JSON escape "\\udcXX", so ``os.fsencode(json.loads(out)[...])`` gives back the original bytes."""
    text = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(value, ensure_ascii=False))
    try:
        sys.stdout.write(text + "\n")
    except UnicodeEncodeError:  # a stdout that is not UTF-8: ASCII JSON is the same document
        sys.stdout.write(json.dumps(value, ensure_ascii=True) + "\n")


def note(message: str) -> None:
    """A message for the person (not for a program reading stdout): on stderr, escaped, one line."""
    print(f"clifs: {printable(message)}", file=sys.stderr)


# -- progress -------------------------------------------------------------------------------------
class Progress:
    """An ``on_progress(done, total)`` callback shown on stderr when the work is long.

    On a terminal: a tqdm bar once ``total`` reaches ``min_total`` (shown after half a second). Elsewhere (a log, a pipe):
    a plain line every ``every`` seconds once the work has taken ``after`` seconds, so a long
    run still says that it is alive. Never writes to stdout.
    """

    def __init__(self, desc: str, unit: str, min_total: int = 1, after: float = 5.0, every: float = 10.0, stream=None):
        self.desc, self.unit, self.min_total = desc, unit, min_total
        self.after, self.every = after, every
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar = None
        self._start = time.monotonic()
        self._last_line = -math.inf

    def __call__(self, done: int, total: int) -> None:
        if self.tty:
            if self._bar is None and total >= self.min_total:
                from tqdm import tqdm

                # A terminal that reports a 0 x 0 size (a pty nobody sized) would hide the bar.
                sized = {"dynamic_ncols": True} if _columns(self.stream) > 0 else {"ncols": 80, "nrows": 24}
                self._bar = tqdm(total=total, desc=self.desc, unit=self.unit, file=self.stream, delay=0.5, **sized)
            if self._bar is not None:
                self._bar.total = total
                self._bar.update(done - self._bar.n)
            return
        now = time.monotonic()
        if now - self._start >= self.after and now - self._last_line >= self.every and done < total:
            self._last_line = now
            print(f"clifs: {self.desc}: {done}/{total} {self.unit}s", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _columns(stream) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


# -- the library ----------------------------------------------------------------------------------
def load_settings(args: argparse.Namespace):
    """Settings from CLIFS_HOME/config, the model from --model."""
    from clifs.engine.config import Settings

    settings = Settings.load()
    if getattr(args, "model", None):
        settings.model = args.model
    return settings


def open_library(args: argparse.Namespace, need_model: bool = True):
    """The Library for this run."""
    from clifs.engine.library import Library

    return Library(load_settings(args), load_model=need_model)


def prewarm_text_tower(args: argparse.Namespace) -> None:
    """Before the library is opened: start reading the saved text tower on the other core (model_cache.prewarm_text)."""
    from clifs.engine.models import model_cache

    s = load_settings(args)
    model_cache.prewarm_text(s.model_cache_dir, s.model, s.precision, s.threads)


def hold_indexer_lock():
    """Take the one-indexer-per-catalog lock before anything slow, or fail at once (exit 2) naming its holder."""
    from clifs.engine.config import Settings
    from indexer.lock import IndexerLock, LockHeld

    home = Settings.load().home
    lock = IndexerLock(home)
    try:
        lock.acquire()
    except LockHeld as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:  # a read-only or full disk: indexing needs to write there
        raise UsageError(
            f"cannot write to the clifs home {home}: {exc.strerror or exc}; indexing needs to write there"
        ) from None
    return lock
