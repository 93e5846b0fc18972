"""Run folders: what ``nervkit fit`` writes and ``decode``/``info``/``compress`` read.

Layout of a run folder::

    run.json        settings: method, resolved model config, video geometry, training and data options,
                    parameter counts, status ("training" | "complete")
    checkpoint.pt   latest checkpoint (model, optimizer, progress, history) — atomic, resumable
    history.json    per-epoch loss / train PSNR / lr / seconds, and the evaluations
    metrics.json    final quality of the fitted model on all frames against the clean source (PSNR, SSIM,
                    MS-SSIM, per frame), plus the interpolation / inpainting / denoising sections
    decoded.mp4     the decoded video (H.264, near-lossless CRF); ``nervkit decode`` makes others
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import RunDirError
from .models import Representation, VideoGeometry, rebuild_model
from .train import load_checkpoint

RUN_FILE = "run.json"
CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
DECODED_FILE = "decoded.mp4"


@dataclass(frozen=True)
class RunDir:
    path: Path

    @classmethod
    def at(cls, path: str | os.PathLike[str]) -> RunDir:
        return cls(Path(path))

    @property
    def run_file(self) -> Path:
        return self.path / RUN_FILE

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT_FILE

    @property
    def history_file(self) -> Path:
        return self.path / HISTORY_FILE

    @property
    def metrics_file(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def decoded_video(self) -> Path:
        return self.path / DECODED_FILE

    @property
    def cache_dir(self) -> Path:
        return self.path / "cache"

    def has_run(self) -> bool:
        return self.run_file.is_file()

    def read_meta(self) -> dict[str, Any]:
        """run.json as a dict (RunDirError if this is not a run folder)."""
        if not self.path.exists():
            raise RunDirError(f"no such run folder: {self.path}")
        if not self.path.is_dir():
            raise RunDirError(f"{self.path} is not a run folder (it is a file)")
        if not self.run_file.is_file():
            raise RunDirError(f"{self.path} is not a nervkit run folder (no {RUN_FILE})")
        try:
            meta = json.loads(self.run_file.read_text())
        except (OSError, ValueError):
            raise RunDirError(f"{self.run_file} is corrupt") from None
        if not isinstance(meta, dict) or "method" not in meta:
            raise RunDirError(f"{self.run_file} is not a nervkit run description")
        return meta

    def load_model(self, device: str | torch.device = "cpu") -> tuple[Representation, dict[str, Any]]:
        """The fitted model (eval mode) and its checkpoint dict."""
        self.read_meta()
        state = load_checkpoint(self.checkpoint, map_location="cpu")
        model = model_from_checkpoint(state)
        return model.to(device).eval(), state


def model_from_checkpoint(state: dict[str, Any]) -> Representation:
    """Rebuild a model from a checkpoint dict (no video needed)."""
    try:
        geometry = VideoGeometry(**state["geometry"])
        model = rebuild_model(state["method"], state["config"], geometry)
        model.load_state_dict(state["model"])
    except (TypeError, KeyError, RuntimeError) as exc:
        raise RunDirError(f"checkpoint does not match its model ({type(exc).__name__}: {str(exc)[:120]})") from None
    return model
