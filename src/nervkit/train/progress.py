"""Training progress on stderr: a tqdm bar on a terminal, one plain line per epoch elsewhere.

On a terminal the bar shows the iteration, epoch, loss, PSNR and ETA, redrawn in place. When stderr
is not a terminal (``nohup``, batch schedulers, pipes into a file) a redrawn bar becomes a stream of
carriage returns, so the trainer prints one line per finished epoch instead::

    epoch 3/100  loss 0.1234  psnr 24.31 dB  lr 4.2e-04  12.3 s/epoch  eta 19m

Evaluation results are a line of their own in both modes. Disabled (``--quiet``), nothing is printed.
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


def format_eta(seconds: float) -> str:
    """``45s``, ``19m``, ``2h05m``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{round(s / 60)}m"
    h, m = divmod(round(s / 60), 60)
    return f"{h}h{m:02d}m"


def epoch_line(epoch: int, epochs: int, loss: float, psnr: float, lr: float, seconds: float,
               eta: float) -> str:
    """The plain progress line of a finished epoch."""
    return (f"epoch {epoch}/{epochs}  loss {loss:.4f}  psnr {psnr:.2f} dB  lr {lr:.1e}  "
            f"{seconds:.1f} s/epoch  eta {format_eta(eta)}")


#: a whole run expected to take longer than this (from its first steps) is warned about, unless the user
#: chose its --epochs
LONG_RUN_SECONDS = 3600.0


def format_duration(seconds: float) -> str:
    """``8.2 s``, ``41 min``, ``2.5 h`` (an estimate: two significant figures at most)."""
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def estimate_line(epoch_seconds: float, total_seconds: float, epochs: int) -> str:
    """The run's expected duration from its first steps: ``~8.2 s/epoch, ~41 min for 300 epochs``."""
    plural = "s" if epochs != 1 else ""
    return f"~{format_duration(epoch_seconds)}/epoch, ~{format_duration(total_seconds)} for {epochs} epoch{plural}"


def long_run_warning(total_seconds: float, epochs_set: bool, epochs: int) -> str | None:
    """The warning for a run expected to take over :data:`LONG_RUN_SECONDS` whose ``--epochs`` the
    user did not choose (None: no warning)."""
    if epochs_set or total_seconds <= LONG_RUN_SECONDS:
        return None
    return (f"nervkit: warning: the {epochs} default epochs are expected to take ~{format_duration(total_seconds)}; "
            "set fewer with --epochs, a smaller model with --params, or train on a GPU (--device cuda)")


class ProgressBar:
    """A bar on a terminal, plain lines otherwise (``interactive``: default, whether stderr is a tty)."""

    def __init__(self, total: int, *, initial: int = 0, enabled: bool = True, unit: str = "it",
                 interactive: bool | None = None) -> None:
        self.enabled = enabled
        self.interactive = _stderr_is_terminal() if interactive is None else interactive
        self._bar = (
            tqdm(total=total, initial=initial, unit=unit, dynamic_ncols=True, mininterval=0.5,
                 file=sys.stderr, smoothing=0.05)
            if enabled and self.interactive
            else None
        )

    def update(self, n: int = 1, **postfix: Any) -> None:
        """Advance the bar (plain mode: nothing; the epoch line comes from :meth:`epoch_done`)."""
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)

    def epoch_done(self, line: str) -> None:
        """Print ``line`` (an :func:`epoch_line`) in plain mode; the bar already shows it."""
        if self.enabled and not self.interactive:
            self.message(line)

    def message(self, text: str) -> None:
        """A line of its own (above the bar on a terminal)."""
        if not self.enabled:
            return
        if self._bar is not None:
            tqdm.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False
