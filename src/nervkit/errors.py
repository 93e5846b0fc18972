"""The one error type nervkit raises for anything a user can cause.

Every problem with the input (a missing file, a file that is not a video, a nonsense option, a frame
size the model cannot handle, a corrupt checkpoint) is raised as a :class:`NervkitError` whose message
is a single line naming the problem. The CLI prints that line and exits non-zero; no traceback.
"""

from __future__ import annotations


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
