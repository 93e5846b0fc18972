"""Which frames of a video to use: :class:`FrameRange` (Python slice semantics over frame indices)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ConfigError

_INT = re.compile(r"[0-9]+")


def _is_int(value: object) -> bool:
    """True for a real ``int`` (not ``bool``)."""
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class FrameRange:
    """A slice ``start:stop:step`` over frame indices; ``stop=None`` means "to the end".

    Only non-negative indices are allowed (no counting from the end) and ``step >= 1``. A ``stop``
    past the end of the video is clipped, as a Python slice is; a ``start`` past the end is an error
    (see :meth:`resolve`).
    """

    start: int = 0
    stop: int | None = None
    step: int = 1

    def __post_init__(self) -> None:
        """Reject negative or non-integer bounds, a step below 1 and an empty ``start >= stop``."""
        if not _is_int(self.start) or self.start < 0:
            raise ConfigError(f"invalid frame range start {self.start!r}: must be an integer >= 0")
        if self.stop is not None and (not _is_int(self.stop) or self.stop < 0):
            raise ConfigError(f"invalid frame range stop {self.stop!r}: must be an integer >= 0")
        if not _is_int(self.step) or self.step < 1:
            raise ConfigError(f"invalid frame range step {self.step!r}: must be an integer >= 1")
        if self.stop is not None and self.stop <= self.start:
            raise ConfigError(f"frame range {self} selects no frame: stop must be greater than start")

    @classmethod
    def parse(cls, text: str) -> FrameRange:
        """Parse ``"A:B"``, ``"A:"``, ``":B"``, ``"A:B:S"`` (any part may be empty) or ``"N"``.

        ``"N"`` is the single frame ``N`` (``N:N+1``). Raises :class:`ConfigError` for anything else:
        negative numbers, a step of 0, non-integers, too many colons, an empty range.
        """
        if not isinstance(text, str):
            raise ConfigError(f"invalid frame range {text!r}: expected text like 0:100 or 0:100:2")
        parts = [p.strip() for p in text.strip().split(":")]
        if len(parts) > 3 or not text.strip():
            raise ConfigError(f"invalid frame range {text!r}: expected N, A:B, A: , :B or A:B:S")
        for p in parts:
            if p.startswith("-"):
                raise ConfigError(f"invalid frame range {text!r}: negative indices are not supported")
            if p and not _INT.fullmatch(p):
                raise ConfigError(f"invalid frame range {text!r}: {p!r} is not a whole number")
        if len(parts) == 1:
            n = int(parts[0])
            return cls(n, n + 1, 1)
        start = int(parts[0]) if parts[0] else 0
        stop = int(parts[1]) if parts[1] else None
        step = int(parts[2]) if len(parts) == 3 and parts[2] else 1
        if step < 1:
            raise ConfigError(f"invalid frame range {text!r}: step must be at least 1")
        return cls(start, stop, step)

    def resolve(self, num_frames: int, *, source: str | None = None) -> range:
        """The selected indices of a video with ``num_frames`` frames, as a ``range``.

        Raises :class:`ConfigError` if the range starts past the end (selects no frame). ``source``
        (a path) is named in that message when given.
        """
        where = f" of {source}" if source is not None else ""
        if self.start >= num_frames:
            raise ConfigError(
                f"frame range {self} starts past the end{where}: it has {num_frames} frames "
                f"(indices 0..{num_frames - 1})"
            )
        stop = num_frames if self.stop is None else min(self.stop, num_frames)
        selected = range(self.start, stop, self.step)
        if len(selected) == 0:  # pragma: no cover - excluded by __post_init__ and the check above
            raise ConfigError(f"frame range {self} selects no frame{where}")
        return selected

    def __str__(self) -> str:
        """Back to text that :meth:`parse` reads: ``"A:B"``, ``"A:"`` or ``"A:B:S"``."""
        stop = "" if self.stop is None else str(self.stop)
        text = f"{self.start}:{stop}"
        return text if self.step == 1 else f"{text}:{self.step}"
