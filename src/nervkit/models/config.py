"""Typed configuration helpers shared by every method.

A method's configuration is a dataclass whose fields are declared with :func:`option`; the ``help``
text of each field becomes the ``--help`` of the matching CLI option, and the whole dataclass is
stored (as JSON) in checkpoints and ``.nerv`` files so that a model can be rebuilt from them alone.
The rules a value must follow (``choices``, ``min``, ``max``, ``positive``, ``odd``, ``length``) are
declared there too and checked by one validator, :func:`validate_options`, which raises
:class:`~nervkit.errors.ConfigError` naming the CLI option (``--kernel-max must be odd, got 4``).
"""

from __future__ import annotations

import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, TypeVar

from ..errors import ConfigError

T = TypeVar("T")


#: the value rules :func:`option` accepts besides ``choices`` (checked by :func:`validate_options`)
RULES = ("min", "max", "positive", "odd", "length")


def option(default: Any = MISSING, help: str = "", *, choices: tuple | None = None, cli: bool = True,
           min: float | str | None = None, max: float | str | None = None, positive: bool = False,
           odd: bool = False, length: int | None = None, derived: bool = False) -> Any:
    """Declare a config field with its CLI help text and the rules its value follows.

    ``choices``: the allowed values. ``min`` / ``max``: inclusive bounds, a number or the name of
    another field of the same config (``min="kernel_min"``). ``positive``: > 0 (NaN fails every
    bound). ``odd``: an odd integer. On a tuple field ``length`` is the number of values it takes and
    the other rules apply to each value. ``derived``: 0 or empty means "derived by ``resolve``" (from
    the frame size or a budget); a module refuses a config whose derived options are still unset.
    ``cli=False`` keeps the field off the command line.
    """
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for sequence defaults")
    meta = {"help": help, "choices": choices, "cli": cli, "min": min, "max": max, "positive": positive,
            "odd": odd, "length": length, "derived": derived}
    return field(default=default, metadata=meta)


def cli_flag(name: str) -> str:
    """The CLI option of config field ``name``: ``kernel_max`` → ``--kernel-max``."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class VideoGeometry:
    """What a representation is fitted to: the frame count and the true (unpadded) frame size.

    A collection of videos (one model over many, all at one frame size) is one frame sequence, the
    videos one after the other; ``segments`` holds each video's frame count in order (empty: a single
    video). Frame ``i`` of the collection is frame ``i - start`` of the video whose span holds it
    (:meth:`spans`). Methods that model frame indices only (NeRV as the "shared NeRV" baseline) ignore
    it; methods that need each video's own time axis (D-NeRV) read it.
    """

    num_frames: int
    height: int
    width: int
    segments: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ConfigError(f"a video needs at least one frame, got {self.num_frames}")
        if self.height < 1 or self.width < 1:
            raise ConfigError(f"invalid frame size {self.height}x{self.width}")
        if self.segments:
            object.__setattr__(self, "segments", tuple(int(n) for n in self.segments))
            if min(self.segments) < 1 or sum(self.segments) != self.num_frames:
                raise ConfigError(f"the videos' frame counts {list(self.segments)} must be positive and add up to "
                                  f"{self.num_frames} frames")

    @property
    def pixels(self) -> int:
        """Pixels in the whole video (frames × H × W): the bpp denominator."""
        return self.num_frames * self.height * self.width

    @property
    def num_videos(self) -> int:
        return len(self.segments) or 1

    def spans(self) -> list[tuple[int, int]]:
        """(first frame, frame count) of each video in the frame sequence; one span for a single video."""
        counts = self.segments or (self.num_frames,)
        starts = [sum(counts[:i]) for i in range(len(counts))]
        return list(zip(starts, counts))

    def video_of(self, frame: int) -> tuple[int, int]:
        """(video index, frame index inside that video) of collection frame ``frame``."""
        for v, (start, count) in enumerate(self.spans()):
            if start <= frame < start + count:
                return v, frame - start
        raise ConfigError(f"frame {frame} is outside the {self.num_frames} frames")

    def to_dict(self) -> dict[str, Any]:
        """As stored (run.json, checkpoints, .nerv headers): ``segments`` only for a collection, so a single
        video is stored exactly as before collections existed."""
        d: dict[str, Any] = {"num_frames": self.num_frames, "height": self.height, "width": self.width}
        if self.segments:
            d["segments"] = list(self.segments)
        return d


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
    kwargs = {k: _coerce(v, hints[k], cli_flag(k)) for k, v in data.items()}
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


def validate_options(config: Any) -> None:
    """Check every field of ``config`` against the rules its :func:`option` declares; the first value
    that breaks one is a ConfigError naming the CLI option, the rule and the value."""
    for f in fields(config):
        meta, value, name = f.metadata, getattr(config, f.name), cli_flag(f.name)
        if value is None:
            continue
        if meta.get("choices"):
            check_choice(name, value, meta["choices"])
        if meta.get("length") is not None and len(value) != meta["length"]:
            raise ConfigError(f"{name} takes {meta['length']} values, got {_shown(value)}")
        for item in value if isinstance(value, tuple) else (value,):
            broken = _broken_rule(config, meta, item)
            if broken:
                each = " (each value)" if isinstance(value, tuple) else ""
                raise ConfigError(f"{name} must be {broken}{each}, got {_shown(value)}")


#: the old name of :func:`validate_options` (it checked ``choices`` only)
validate_choices = validate_options


def _broken_rule(config: Any, meta: Any, value: Any) -> str | None:
    """The rule of ``meta`` that ``value`` breaks, in words (None when it follows them all)."""
    if meta.get("positive") and not value > 0:
        return "positive"
    for key, holds, words in (("min", lambda v, b: v >= b, ">="), ("max", lambda v, b: v <= b, "<=")):
        bound = meta.get(key)
        if bound is None:
            continue
        shown = f"{cli_flag(bound)} ({getattr(config, bound)})" if isinstance(bound, str) else f"{bound}"
        if not holds(value, getattr(config, bound) if isinstance(bound, str) else bound):
            return f"{words} {shown}"
    if meta.get("odd") and value % 2 != 1:
        return "odd"
    return None


def _shown(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def unresolved_options(config: Any) -> list[str]:
    """The options declared ``derived`` that are still 0 or empty (``resolve`` has not filled them)."""
    return [f.name for f in fields(config) if f.metadata.get("derived") and not getattr(config, f.name)]
