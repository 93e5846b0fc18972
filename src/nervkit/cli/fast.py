"""The CLI's fast path: the command lines that only describe nervkit, answered from the shipped catalog
(:mod:`.catalog`) without importing torch or the models.

Exactly these command lines: ``nervkit`` (the one-line "COMMAND is required" error), ``nervkit -h`` /
``--help`` (the top-level help: every subcommand with its one-line help), ``--version``, ``models`` and
``completion bash|zsh``. Their output is the full CLI's, byte for byte (``tests/test_fast_cli.py``): the
top-level parser is the same (:func:`~.parser.top_level_parser`, its subcommands' names and help from the
catalog), ``models`` prints through :func:`~.format.model_lines` and the completion script through
:func:`~.completion.render_script`. Any other command line, or a catalog :func:`~.catalog.load` does not
trust, goes to the full parser.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from ..version import version
from . import catalog
from .completion import render_script
from .format import model_lines
from .parser import top_level_parser

#: the command lines this module answers
FAST_COMMAND_LINES = ([], ["-h"], ["--help"], ["--version"], ["models"], ["completion", "bash"],
                      ["completion", "zsh"])


def answer(argv: Sequence[str]) -> int | None:
    """Answer ``nervkit ARGV`` from the catalog: the exit status (help, ``--version`` and the missing
    COMMAND exit through argparse, as in the full CLI), or None when the full CLI must answer."""
    argv = list(argv)
    if argv not in FAST_COMMAND_LINES:
        return None
    data = catalog.load()
    return None if data is None else respond(argv, data)


def respond(argv: list[str], data: dict[str, Any]) -> int | None:
    """Answer one of :data:`FAST_COMMAND_LINES` from the catalog ``data``; None when ``data`` is damaged."""
    try:
        if argv == ["models"]:
            out = models_text(data) + "\n"
        elif argv[:1] == ["completion"]:
            out = completion_text(data, argv[1])
        else:
            out, top = None, parser(data)
    except Exception:  # noqa: BLE001 - a damaged catalog (missing keys, wrong types): the full CLI answers
        return None
    if out is None:
        top.parse_args(argv)  # prints the help, the version or the one-line error, and exits
        return None  # pragma: no cover - argparse exits for every one of these command lines
    print(out, end="", flush=True)
    return 0


def parser(data: dict[str, Any]) -> argparse.ArgumentParser:
    """The top-level parser with the catalog's subcommands (names and help only: enough for ``--help``)."""
    top, sub = top_level_parser(version())
    for command in data["commands"]:
        sub.add_parser(command["name"], help=command["help"])
    return top


def models_text(data: dict[str, Any]) -> str:
    """What ``nervkit models`` prints (without the final newline)."""
    return "\n".join(model_lines([SimpleNamespace(**method) for method in data["methods"]]))


def completion_text(data: dict[str, Any], shell: str) -> str:
    """What ``nervkit completion SHELL`` prints."""
    return render_script(shell, data["completion"]["words"], data["completion"]["methods"])
