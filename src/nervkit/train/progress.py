"""A progress bar (tqdm) showing epoch, loss, PSNR and ETA; silent when disabled."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


class ProgressBar:
    def __init__(self, total: int, *, initial: int = 0, enabled: bool = True, unit: str = "it") -> None:
        interactive = sys.stderr.isatty()
        self._bar = (
            tqdm(total=total, initial=initial, unit=unit, dynamic_ncols=True,
                 mininterval=0.5 if interactive else 30.0,
                 file=sys.stderr, smoothing=0.05)
            if enabled
            else None
        )

    def update(self, n: int = 1, **postfix: Any) -> None:
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    @staticmethod
    def write(message: str) -> None:
        tqdm.write(message, file=sys.stderr)
