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
