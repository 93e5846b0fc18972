"""The CLI catalog: ``catalog.json`` beside this module, shipped in the package, holds what the light
commands print so that they answer without importing torch (:mod:`.fast`):

- ``commands``: every subcommand's name and one-line help, in ``nervkit --help``'s order;
- ``methods``: each built-in method's name, description, presets, default preset and paper (``nervkit
  models``);
- ``completion``: the words each subcommand completes (``fit``: the options of every method) and the
  method names (``nervkit completion bash|zsh``);
- ``nervkit`` (the version that wrote it), ``format`` and ``plugin_group`` (the entry-point group of
  method plugins, :data:`nervkit.models.registry.ENTRY_POINT_GROUP`), which :func:`read` checks.

It is generated from the live parser and registry. :func:`load` returns it only when it can be trusted,
else None and the CLI takes the live (slow, always correct) path: the file is missing, unreadable or
of another format; it was written by another nervkit version; a method plugin is installed (an entry
point in the ``nervkit.methods`` group: the catalog knows only the built-in methods); or the models are
already imported in this process (a method may have been registered by importing its module, and the
live answer costs nothing more then).

Regenerate it after changing a subcommand, an option or a method (``tests/test_fast_cli.py`` fails
until then, naming this command)::

    python -m nervkit.cli.catalog --write

``python -m nervkit.cli.catalog`` alone prints the fresh catalog without writing it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..version import version

PATH = Path(__file__).with_name("catalog.json")
FORMAT = "nervkit-cli-catalog/1"
REGENERATE = "python -m nervkit.cli.catalog --write"
_KEYS = {"format": str, "nervkit": str, "plugin_group": str, "commands": list, "methods": list,
         "completion": dict}


def plugins_installed(group: str) -> bool:
    """Whether an installed package declares an entry point in ``group`` (none is imported)."""
    from importlib.metadata import entry_points

    return any(True for _ in entry_points(group=group))


def load() -> dict[str, Any] | None:
    """The shipped catalog when it describes this nervkit exactly, else None (see the module docstring)."""
    if "nervkit.models.registry" in sys.modules:  # methods may have been registered in this process
        return None
    return read(PATH)


def read(path: Path) -> dict[str, Any] | None:
    """The catalog in ``path`` when it is one, of this nervkit's version, and no method plugin is
    installed; else None."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or any(not isinstance(data.get(k), t) for k, t in _KEYS.items()):
        return None
    if data["format"] != FORMAT or data["nervkit"] != version() or plugins_installed(data["plugin_group"]):
        return None
    return data


def generate() -> dict[str, Any]:
    """The catalog of this nervkit, from the live parser and registry (imports torch and the models)."""
    from ..models import get_method, list_methods
    from ..models.registry import ENTRY_POINT_GROUP
    from .completion import live_table
    from .main import build_parser

    parser = build_parser()
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    words, methods = live_table()
    return {
        "format": FORMAT,
        "nervkit": version(),
        "regenerate": REGENERATE,
        "plugin_group": ENTRY_POINT_GROUP,  # the models' registry.ENTRY_POINT_GROUP, which load() checks
        "commands": [{"name": choice.dest, "help": choice.help} for choice in commands._choices_actions],
        "methods": [_method(get_method(name)) for name in list_methods()],
        "completion": {"methods": methods, "words": words},
    }


def _method(spec: Any) -> dict[str, Any]:
    """What ``nervkit models`` shows of a registered method."""
    return {"name": spec.name, "description": spec.description, "presets": list(spec.presets),
            "default_preset": spec.default_preset, "paper": spec.paper}


def text(data: dict[str, Any]) -> str:
    """The catalog as written to :data:`PATH`."""
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nervkit.cli.catalog",
                                     description="Print (or --write) the CLI catalog of this nervkit.")
    parser.add_argument("--write", action="store_true", help=f"write it to {PATH}")
    args = parser.parse_args(argv)
    from ..models.registry import ENTRY_POINT_GROUP

    if plugins_installed(ENTRY_POINT_GROUP):
        print(f"nervkit.cli.catalog: error: a method plugin is installed (entry-point group "
              f"{ENTRY_POINT_GROUP}); the catalog lists the built-in methods only: generate it where none is",
              file=sys.stderr)
        return 2
    fresh = text(generate())
    if not args.write:
        print(fresh, end="")
        return 0
    PATH.write_text(fresh, encoding="utf-8")
    print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
