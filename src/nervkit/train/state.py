"""Where training stands (completed epochs, the position inside the current one, history), and its
checkpoint form: everything a resumed run needs to continue from the exact iteration."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from ..models import Representation
from ..models.config import config_to_dict
from .config import TrainConfig


def _empty_partial() -> dict[str, float]:
    return {"loss": 0.0, "psnr": 0.0, "n": 0, "seconds": 0.0}


@dataclass
class EpochRecord:
    """One finished epoch: mean loss and train PSNR over its batches, the last learning rate, seconds."""

    epoch: int
    loss: float
    psnr: float
    lr: float
    seconds: float


@dataclass
class TrainState:
    """Where training stands: completed epochs, position inside the current one, history."""

    epoch: int = 0  # completed epochs
    iteration: int = 0  # iterations done inside the current epoch
    partial: dict[str, float] = field(default_factory=_empty_partial)
    history: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    elapsed: float = 0.0  # training seconds, across resumes

    def add_iteration(self, loss: float, psnr: float, seconds: float, bpp: float | None = None) -> None:
        """Count one finished iteration of the current epoch (``bpp``: the rate term's estimate, when on)."""
        p = self.partial
        if bpp is not None:
            p["bpp"] = p.get("bpp", 0.0) + bpp
            p["n_bpp"] = p.get("n_bpp", 0) + 1
        p["loss"] += loss
        p["psnr"] += psnr
        p["n"] += 1
        p["seconds"] += seconds
        self.elapsed += seconds
        self.iteration += 1

    def end_epoch(self, lr: float) -> dict[str, Any]:
        """Close the current epoch; returns its record (an :class:`EpochRecord` dict), added to the history."""
        p = self.partial
        n = max(p["n"], 1)
        record = asdict(EpochRecord(self.epoch + 1, p["loss"] / n, p["psnr"] / n, lr, p["seconds"]))
        if p.get("n_bpp"):  # rate training: the mean estimated rate of the model over the epoch's steps
            record["bpp"] = p["bpp"] / p["n_bpp"]
        self.history.append(record)
        self.epoch += 1
        self.iteration = 0
        self.partial = _empty_partial()
        return record

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "iteration": self.iteration, "partial": dict(self.partial),
                "history": list(self.history), "evals": list(self.evals), "elapsed": self.elapsed}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> TrainState:
        return cls(
            epoch=int(state.get("epoch", 0)),
            iteration=int(state.get("iteration", 0)),
            partial=dict(state.get("partial") or _empty_partial()),
            history=list(state.get("history", [])),
            evals=list(state.get("evals", [])),
            elapsed=float(state.get("elapsed", 0.0)),
        )


def checkpoint_state(model: Representation, config: TrainConfig, optimizer: torch.optim.Optimizer,
                     state: TrainState, train_indices: list[int], extra: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint dict of a training run (see :mod:`nervkit.train.checkpoint`)."""
    return {
        "method": model.method,
        "config": config_to_dict(model.config),
        "geometry": model.geometry.to_dict(),
        "train": config_to_dict(config),
        # contiguous: a module trained channels-last (on a GPU) is stored like any other
        "model": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        **state.to_dict(),
        "train_indices": list(train_indices),
        **extra,
    }
