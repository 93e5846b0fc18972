"""nervkit — neural video representations (NeRV family): fit, compress, decode, evaluate.

See README.md for the quick start; the Python API mirrors the ``nervkit`` CLI.

The public names are imported on first use (PEP 562 ``__getattr__``), so ``import nervkit`` and the
light CLI commands (``nervkit --version``, ``--help``, ``models``, ``completion``) do not load torch;
``from nervkit import fit`` and ``nervkit.fit`` work as usual.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the names are, for type checkers and IDEs
    from .api import (
        DataOptions,
        FittedRun,
        decode,
        evaluate,
        fit,
        info,
        inpaint,
        interpolate,
        load,
        sample_nerv,
        sample_video,
    )
    from .compress.config import CompressConfig
    from .compression import compress, decompress, inspect
    from .errors import NervkitError
    from .models import VideoGeometry, create_model, get_method, list_methods
    from .train import TrainConfig

#: public name -> the module that defines it
_SOURCES = {
    "CompressConfig": ".compress.config",
    "DataOptions": ".api",
    "FittedRun": ".api",
    "NervkitError": ".errors",
    "TrainConfig": ".train",
    "VideoGeometry": ".models",
    "compress": ".compression",
    "create_model": ".models",
    "decode": ".api",
    "decompress": ".compression",
    "evaluate": ".api",
    "fit": ".api",
    "get_method": ".models",
    "info": ".api",
    "inpaint": ".api",
    "inspect": ".compression",
    "interpolate": ".api",
    "list_methods": ".models",
    "load": ".api",
    "sample_nerv": ".api",
    "sample_video": ".api",
}

__all__ = [
    "CompressConfig",
    "DataOptions",
    "FittedRun",
    "NervkitError",
    "TrainConfig",
    "VideoGeometry",
    "compress",
    "create_model",
    "decode",
    "decompress",
    "evaluate",
    "fit",
    "get_method",
    "info",
    "inpaint",
    "inspect",
    "interpolate",
    "list_methods",
    "load",
    "sample_nerv",
    "sample_video",
]


def __getattr__(name: str) -> Any:
    """Import a public name (or a submodule, e.g. ``nervkit.api``) on first access."""
    if name in _SOURCES:
        value = getattr(importlib.import_module(_SOURCES[name], __name__), name)
        globals()[name] = value  # the next access is a plain attribute
        return value
    if not name.startswith("_"):
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise  # the submodule exists but something it imports is missing
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The package's module type: importing a subpackage never rebinds a public name of the same name.
    ``nervkit.compress`` is the function (:mod:`nervkit.compression`), also once the subpackage
    ``nervkit.compress`` is imported (it stays in ``sys.modules``: ``from nervkit.compress.config import
    ...`` works), as it was when this file imported everything at once."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SOURCES and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
