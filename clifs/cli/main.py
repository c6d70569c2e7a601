"""The `clifs` command: one module per group of subcommands, each with ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from clifs.engine.errors import CatalogError, ModelUnavailable, UsageError

__all__ = ["COMMAND_MODULES", "UsageError", "build_parser", "main"]

# Each module defines register(subparsers); its parsers set ``func(args) -> int``.
COMMAND_MODULES = [
    "clifs.cli.index",
    "clifs.cli.search",
    "clifs.cli.listing",
    "clifs.cli.duplicates",
    "clifs.cli.watch",
    "clifs.cli.gui",
    "clifs.cli.vision",
    "clifs.cli.text",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clifs", description="Find your photos, video moments and sounds by meaning.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from clifs.engine.config import ConfigError

    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="clifs: %(message)s",
    )
    # open_clip warns on the root logger about random init we replace with loaded weights.
    logging.getLogger().handlers[0].addFilter(lambda r: "initialized randomly" not in r.getMessage())
    try:
        return int(args.func(args) or 0)
    except (ModelUnavailable, ConfigError, CatalogError, UsageError) as exc:
        from clifs.cli.common import printable

        print(f"clifs: error: {printable(exc)}", file=sys.stderr)  # one line, whatever a path in it holds
        return 2
    except KeyboardInterrupt:
        print("clifs: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `clifs list | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
