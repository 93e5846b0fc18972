"""Frame sizes given as text: :func:`parse_size`."""

from __future__ import annotations

import re

from ..errors import ConfigError

_SIZE = re.compile(r"\s*([0-9]+)\s*[xX,]\s*([0-9]+)\s*")


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``"HxW"`` (also ``"HXW"`` or ``"H,W"``) into ``(H, W)``, e.g. ``"180x320" -> (180, 320)``.

    Height comes first, as in every nervkit size. Raises :class:`ConfigError` for anything else,
    including zero or negative sizes.
    """
    match = _SIZE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(f"invalid frame size {text!r}: expected HxW (height x width), e.g. 180x320")
    height, width = int(match.group(1)), int(match.group(2))
    if height <= 0 or width <= 0:
        raise ConfigError(f"invalid frame size {text!r}: height and width must be positive")
    return (height, width)


def check_size(size: object, what: str = "size") -> tuple[int, int]:
    """Validate a ``(H, W)`` pair of positive ints (as passed to the readers) and return it."""
    ok = (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    )
    if not ok:
        raise ConfigError(f"invalid {what} {size!r}: expected (height, width) with positive integers")
    return (int(size[0]), int(size[1]))  # type: ignore[index]
