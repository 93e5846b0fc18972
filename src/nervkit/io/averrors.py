"""Translation of PyAV/FFmpeg exceptions into nervkit's one-line :class:`~nervkit.errors.InputError`.

No ``av.error.*`` exception may reach nervkit's callers; every PyAV call that touches user data runs
inside :func:`translate_av_errors`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import av

from ..errors import InputError, NervkitError

#: What PyAV raises for bad data: FFmpeg errors, unknown codecs, and its few plain OSErrors.
AV_ERRORS: tuple[type[BaseException], ...] = (av.error.FFmpegError, av.codec.codec.UnknownCodecError)


def describe(exc: BaseException) -> str:
    """A short one-line description of a PyAV exception (FFmpeg's message, without the errno)."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


@contextlib.contextmanager
def translate_av_errors(message: str) -> Iterator[None]:
    """Re-raise any PyAV error inside the block as ``InputError(f"{message}: {details}")``.

    ``message`` names the problem and the path, e.g. ``"/x/a.mp4 is truncated or corrupt"``.
    nervkit's own errors pass through untouched.
    """
    try:
        yield
    except NervkitError:
        raise
    except AV_ERRORS as exc:
        raise InputError(f"{message}: {describe(exc)}") from exc
