"""Argument checks of the Python API: every bad value is a one-line :class:`~nervkit.errors.ConfigError`.

The API takes the same values as the CLI, as Python objects or as the CLI's text (``"0:4"``,
``"36x64"``). Nothing is coerced silently: a float where an integer is needed (``bits=8.5``,
``size=(36.7, 64)``, frame index ``0.5``) is refused rather than truncated; a string where a number
is needed is refused rather than raising ``TypeError`` deep inside.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch

from .errors import ConfigError
from .io.frame_range import FrameRange
from .io.size import parse_size


def _is_integer(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def integer(name: str, value: object, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int (Python or NumPy integer; not bool, not float) within ``[low, high]``."""
    if not _is_integer(value):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    result = int(value)  # type: ignore[arg-type]
    if (low is not None and result < low) or (high is not None and result > high):
        bounds = f"{low if low is not None else '-inf'}..{high if high is not None else 'inf'}"
        raise ConfigError(f"{name} must be in {bounds}, got {result}")
    return result


def number(name: str, value: object, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite float within the bounds (open at an end when ``*_open``)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(float(value)):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    result = float(value)
    too_low = low is not None and (result <= low if low_open else result < low)
    too_high = high is not None and (result >= high if high_open else result > high)
    if too_low or too_high:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ConfigError(f"{name} must be in {lo}{low}, {high}{hi}, got {value!r}")
    return result


def size(name: str, value: object) -> tuple[int, int] | None:
    """``None``, ``"HxW"`` or a pair of positive integers."""
    if value is None:
        return None
    if isinstance(value, str):
        return parse_size(value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ConfigError(f"{name} must be 'HxW' or (height, width), got {value!r}")
    h = integer(f"{name} height", value[0], low=1)
    w = integer(f"{name} width", value[1], low=1)
    return h, w


def frame_range(name: str, value: object) -> FrameRange | None:
    """``None``, a :class:`FrameRange`, or its text form ``"A:B[:S]"`` / ``"N"``."""
    if value is None or isinstance(value, FrameRange):
        return value
    if isinstance(value, str):
        return FrameRange.parse(value)
    raise ConfigError(f"{name} must be a frame range such as '0:10' (or a FrameRange), got {value!r}")


def frame_indices(value: Any, num_frames: int) -> torch.Tensor:
    """Frame indices (an int, a sequence of ints or an integer tensor/array) in ``[0, num_frames)``.

    Fractional positions are refused with a pointer to ``decode_at`` instead of being truncated.
    """
    if _is_integer(value):
        value = [int(value)]
    if isinstance(value, (str, bytes)) or value is None:
        raise ConfigError(f"frame indices must be integers, got {value!r}")
    if isinstance(value, torch.Tensor):
        tensor = value
    else:
        try:
            items = list(value)
        except TypeError:
            raise ConfigError(f"frame indices must be an int or a sequence of ints, got {value!r}") from None
        for item in items:
            if not _is_integer(item) and not (isinstance(item, torch.Tensor) and item.numel() == 1
                                              and not item.is_floating_point() and item.dtype != torch.bool):
                hint = " (fractional positions: use decode_at)" if isinstance(item, numbers.Real) else ""
                raise ConfigError(f"frame indices must be integers, got {item!r}{hint}")
        tensor = torch.as_tensor([int(i) for i in items], dtype=torch.long)
    if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
        raise ConfigError(f"frame indices must be integers, got a {tensor.dtype} tensor (fractional positions: "
                          "use decode_at)")
    tensor = tensor.to(torch.long).flatten()
    if tensor.numel() and (int(tensor.min()) < 0 or int(tensor.max()) >= num_frames):
        raise ConfigError(f"frame index out of range: the run has {num_frames} frames (0..{num_frames - 1})")
    return tensor


def choice(name: str, value: object, options: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in options:
        raise ConfigError(f"{name} must be one of {', '.join(options)}, got {value!r}")
    return value


def flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be True or False, got {value!r}")
    return value


def text(name: str, value: object) -> str:
    """A string option (a method name, a split spec)."""
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {value!r}")
    return value


def path(name: str, value: object) -> str:
    """A path argument: ``str`` or ``os.PathLike`` (not bytes, not a number)."""
    import os

    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} must be a path, got {value!r}")
    return value
