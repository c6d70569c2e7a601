"""The `clifs` command: one module per group of subcommands, each with ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from clifs.engine.errors import CatalogError, ModelUnavailable, UsageError

__all__ = ["COMMAND_MODULES", "UsageError", "build_parser", "main"]

#: Which module registers each command (each module defines ``register(subparsers)``; its parsers set
#: ``func(args) -> int``), so a run imports and builds only its own command's parser (all eight took
#: ~35 ms of a cold search's start). tests/test_cli.py checks it against the modules.
COMMANDS = {
    "index": "clifs.cli.index",
    "search": "clifs.cli.search",
    "list": "clifs.cli.listing",
    "duplicates": "clifs.cli.duplicates",
    "watch": "clifs.cli.watch",
    "folders": "clifs.cli.watch",
    "status": "clifs.cli.watch",
    "gui": "clifs.cli.gui",
    "label": "clifs.cli.vision",
    "segment": "clifs.cli.vision",
    "detect": "clifs.cli.vision",
    "text": "clifs.cli.text",
}
COMMAND_MODULES = list(dict.fromkeys(COMMANDS.values()))


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser, or, when ``argv`` names a command, one with only that command's module: its
    usage, options and errors are the same; only ``clifs --help`` needs the whole list."""
    parser = argparse.ArgumentParser(prog="clifs", description="Find your photos, video moments and sounds by meaning.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    command = next((a for a in argv or [] if not a.startswith("-")), None)
    modules = [COMMANDS[command]] if command in COMMANDS else COMMAND_MODULES
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from clifs.engine.config import ConfigError

    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
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
