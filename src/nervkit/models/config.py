"""Typed configuration helpers shared by every method.

A method's configuration is a dataclass whose fields are declared with :func:`option`; the ``help``
text of each field becomes the ``--help`` of the matching CLI option, and the whole dataclass is
stored (as JSON) in checkpoints and ``.nerv`` files so that a model can be rebuilt from them alone.
"""

from __future__ import annotations

import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, TypeVar

from ..errors import ConfigError

T = TypeVar("T")


def option(default: Any = MISSING, help: str = "", *, choices: tuple | None = None, cli: bool = True) -> Any:
    """Declare a config field with CLI help text (and optional allowed values)."""
    meta = {"help": help, "choices": choices, "cli": cli}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for sequence defaults")
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class VideoGeometry:
    """What a representation is fitted to: the frame count and the true (unpadded) frame size."""

    num_frames: int
    height: int
    width: int

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ConfigError(f"a video needs at least one frame, got {self.num_frames}")
        if self.height < 1 or self.width < 1:
            raise ConfigError(f"invalid frame size {self.height}x{self.width}")

    @property
    def pixels(self) -> int:
        """Pixels in the whole video (frames × H × W): the bpp denominator."""
        return self.num_frames * self.height * self.width


def _coerce(value: Any, annotation: Any, name: str) -> Any:
    """Convert JSON/CLI values to the field's declared type (tuples, unions with None, literals)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], name)
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.replace(" ", ",").split(",") if v]
        elem = args[0] if args else Any
        try:
            return tuple(_coerce(v, elem, name) for v in value)
        except TypeError as exc:
            raise ConfigError(f"{name}: expected a list, got {value!r}") from exc
    if annotation is bool:
        if isinstance(value, str):
            low = value.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{name}: expected true/false, got {value!r}")
        return bool(value)
    if annotation in (int, float, str):
        try:
            if annotation is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            return annotation(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{name}: expected {annotation.__name__}, got {value!r}") from exc
    return value


def config_from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build config ``cls`` from a plain dict (JSON), checking names and types."""
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"unknown option(s) for {cls.__name__}: {', '.join(unknown)}")
    hints = typing.get_type_hints(cls)
    kwargs = {k: _coerce(v, hints[k], "--" + k.replace("_", "-")) for k, v in data.items()}
    return cls(**kwargs)


def config_to_dict(config: Any) -> dict[str, Any]:
    """JSON-able dict of a config dataclass (tuples become lists)."""
    return {f.name: _jsonable(getattr(config, f.name)) for f in fields(config)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def replace_config(config: T, **changes: Any) -> T:
    """``dataclasses.replace`` with type coercion and a clear error for unknown names."""
    merged = {**config_to_dict(config), **changes}
    return config_from_dict(type(config), merged)


def check_choice(name: str, value: Any, choices: tuple) -> None:
    """Raise ConfigError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")


def validate_choices(config: Any) -> None:
    """Check every field declared with ``choices``."""
    for f in fields(config):
        choices = f.metadata.get("choices")
        if choices:
            check_choice("--" + f.name.replace("_", "-"), getattr(config, f.name), choices)
