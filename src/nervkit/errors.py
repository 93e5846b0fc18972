"""The one error type nervkit raises for anything a user can cause.

Every problem with the input (a missing file, a file that is not a video, a nonsense option, a frame
size the model cannot handle, a corrupt checkpoint) is raised as a :class:`NervkitError` whose message
is a single line naming the problem. The CLI prints that line and exits non-zero; no traceback.
"""

from __future__ import annotations

import errno
import re


class NervkitError(Exception):
    """Base class: a user-facing problem described in one line."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        # one line, always: a user sees exactly this
        super().__init__(" ".join(str(message).split()))


class InputError(NervkitError):
    """The input video, frames or file cannot be used (missing, unreadable, empty, wrong format)."""


class ConfigError(NervkitError):
    """An option value is invalid, or options contradict each other."""


class ModelError(NervkitError):
    """The model cannot be built for this input (e.g. frames too small for its strides)."""


class TrainingError(NervkitError):
    """Training cannot continue (e.g. the loss became NaN); the last good checkpoint is kept."""


class RunDirError(NervkitError):
    """A run folder is missing, incomplete or corrupt."""


class BitstreamError(NervkitError):
    """A ``.nerv`` file or an entropy-coded payload is malformed, truncated, corrupt or too new."""


class OutputError(NervkitError):
    """An output cannot be written: it would destroy something nervkit did not create, it is one of
    the command's own inputs, or the operating system refuses (read-only, disk full, permissions)."""


class ResourceError(NervkitError):
    """The machine cannot hold what was asked for (memory), checked before allocating."""


#: errno values a user can act on (free space, permissions, another path), with their wording.
_OS_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOMEM: "not enough memory",
    errno.EFBIG: "file too large for the file system or the process's file-size limit",
    errno.ENAMETOOLONG: "file name too long",
    errno.EISDIR: "it is a folder",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EEXIST: "it already exists",
    errno.EBUSY: "it is in use (a mount point or the current folder?)",
    errno.ENOENT: "no such file or folder",
    errno.ELOOP: "too many levels of symbolic links",
    errno.EMFILE: "too many open files",
    errno.ENFILE: "too many open files in the system",
    errno.EXDEV: "it is on another file system",
    errno.ENOTEMPTY: "the folder is not empty",
    errno.EIO: "input/output error (a failing disk or a network file system?)",
}


def os_error_reason(exc: OSError) -> str | None:
    """The user-actionable reason of ``exc`` in words, or ``None`` for other errno values."""
    return _OS_REASONS.get(exc.errno) if exc.errno is not None else None


def output_error(exc: OSError, path: object, action: str = "cannot write") -> NervkitError:
    """``exc`` (an OS error while writing ``path``) as a one-line :class:`OutputError`
    (:class:`ResourceError` for ENOMEM); unknown errno values keep the OS's own words."""
    reason = os_error_reason(exc) or (exc.strerror or str(exc))
    target = exc.filename if path is None and exc.filename else path
    if exc.errno == errno.ENOMEM:
        return ResourceError(f"{action} {target}: {reason}")
    return OutputError(f"{action} {target}: {reason}")


def user_error_from(exc: BaseException) -> NervkitError | None:
    """A :class:`NervkitError` for an exception whose cause the user can act on, else ``None``.

    The last line of defence of the CLI and the API: OS errors with an actionable errno (disk full,
    read-only, permissions, …) and allocation failures (``MemoryError``, PyTorch's "can't allocate
    memory" / "out of memory") become one-line errors with exit 2 instead of "internal error".
    """
    if isinstance(exc, NervkitError):
        return exc
    if isinstance(exc, OSError) and os_error_reason(exc) is not None:
        where = exc.filename if exc.filename else "a file"
        action = "cannot allocate for" if exc.errno == errno.ENOMEM else "cannot access"
        return output_error(exc, where, action)
    if isinstance(exc, MemoryError):
        return ResourceError("out of memory: the model or the frames need more memory than this machine has; "
                             "use a smaller --params, --size or fewer --frames")
    text = str(exc)
    if isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower()):
        size = ""
        match = re.search(r"allocate (\d+) bytes", text)
        if match:
            size = f" ({int(match.group(1)) / 2**30:.1f} GiB at once)"
        return ResourceError(f"out of memory{size}: the model or the frames need more memory than this device "
                             "has; use a smaller --params, --size or fewer --frames")
    return None
