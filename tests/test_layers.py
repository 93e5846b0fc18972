"""The import graph of the package follows the layers drawn in docs/design.md: every import of a
``nervkit`` module points to a lower layer. The layers are read from that document, so the drawing and
the code cannot drift apart."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nervkit

PACKAGE = Path(nervkit.__file__).parent
DESIGN = Path(__file__).resolve().parents[1] / "docs" / "design.md"
TOP = {"__main__", "__init__"}  # the entry points sit above everything


def layers() -> dict[str, int]:
    """unit -> layer number (0 = lowest) from the code block under '## Layers' in docs/design.md."""
    text = DESIGN.read_text()
    block = text.split("## Layers", 1)[1].split("```", 2)[1]
    names: list[list[str]] = []
    for line in block.splitlines():
        if not line.strip() or line.startswith(" "):
            continue
        head = re.split(r"\s{2,}", line.strip())[0]
        names.append([n.strip() for n in head.split(",")])
    return {unit: len(names) - 1 - i for i, units in enumerate(names) for unit in units}


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports() -> list[tuple[str, str, str]]:
    """(importing file, its unit, the imported unit) for every import of a nervkit module."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        package = package.removesuffix(".__init__")
        source = unit_of(module) if path.name != "__init__.py" or module != "nervkit.__init__" else "__init__"
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                targets = [f"{target}.{a.name}" for a in node.names] if target == "nervkit" else [target]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                if target.startswith("nervkit.") or target == "nervkit":
                    found.append((str(rel), source, unit_of(target)))
    return found


def test_design_md_names_every_unit_of_the_package() -> None:
    units = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))} - TOP
    assert units == set(layers()), "docs/design.md's layer block and the package's modules differ"


def test_every_import_points_down() -> None:
    level = layers()
    upward = [(f, s, t) for f, s, t in imports()
              if s not in TOP and t != s and level[t] >= level[s]]
    assert not upward, f"imports that do not point to a lower layer: {upward}"
