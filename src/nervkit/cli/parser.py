"""The parsers of the CLI: an ArgumentParser whose errors are one line (no usage dump) and exit with status
2, the help formatter, and the top-level ``nervkit`` parser (without its subcommands)."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Keeps descriptions' line breaks; no automatic (default: None) noise."""

    def _get_help_string(self, action: argparse.Action) -> str:
        return action.help or ""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "".join(indent + line for line in text.splitlines(keepends=True))


def top_level_parser(version: str) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """The ``nervkit`` parser without its subcommands, and the action that takes them: the full parser
    (:func:`nervkit.cli.main.build_parser`) and the catalog's fast one (:mod:`.fast`) start from it, so
    both print the same ``--help`` and ``--version``."""
    parser = OneLineParser(prog="nervkit", description="Neural video representations: fit, decode, evaluate.",
                           formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"nervkit {version}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    return parser, sub
