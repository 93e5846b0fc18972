"""Turn config dataclasses into argparse options: each field's ``help`` becomes its ``--help``.

Options default to ``None`` so that only what the user typed overrides presets and stored settings.
Values are converted and checked by the config's own typing (``config_from_dict``).
"""

from __future__ import annotations

import argparse
import typing
from dataclasses import MISSING, fields
from typing import Any


def _metavar(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is tuple:
        return "A,B,.."
    if annotation is bool:
        return "BOOL"
    name = getattr(annotation, "__name__", "VALUE")
    return {"int": "N", "float": "X", "str": "TEXT"}.get(name, "VALUE")


def add_dataclass_options(group: argparse._ArgumentGroup, cls: type, *, skip: tuple[str, ...] = (),
                          defaults: dict[str, Any] | None = None) -> list[str]:
    """Add ``--field-name`` options for every CLI field of ``cls``; returns the field names added."""
    hints = typing.get_type_hints(cls)
    added = []
    for f in fields(cls):
        if f.name in skip or not f.metadata.get("cli", True):
            continue
        default = (defaults or {}).get(f.name, f.default if f.default is not MISSING else None)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        if isinstance(default, tuple) and not default:
            shown = "derived"
        help_text = f.metadata.get("help", "")
        choices = f.metadata.get("choices")
        group.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            default=None,
            metavar=_metavar(hints[f.name]) if not choices else "{" + ",".join(map(str, choices)) + "}",
            help=f"{help_text} [default: {shown}]".replace("%", "%%"),
        )
        added.append(f.name)
    return added


def collect(namespace: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    """The options among ``names`` that the user gave (raw strings; the config converts them)."""
    return {n: getattr(namespace, n) for n in names if getattr(namespace, n, None) is not None}
