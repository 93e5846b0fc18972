"""Run folders: what ``nervkit fit`` writes and ``decode``/``info``/``compress`` read.

Layout of a run folder::

    run.json        settings: method, resolved model config, video geometry, training and data options,
                    parameter counts, status ("training" | "complete")
    checkpoint.pt   latest checkpoint (model, optimizer, progress, history) — atomic, resumable
    history.json    per-epoch loss / train PSNR / lr / seconds, and the evaluations
    metrics.json    final quality of the fitted model on all frames against the clean source (PSNR, SSIM,
                    MS-SSIM, per frame), plus the interpolation / inpainting / denoising sections
    decoded.mp4     the decoded video (H.264, near-lossless CRF); ``nervkit decode`` makes others
    .nervkit-lock   present while a process fits, resumes or fine-tunes the run (:mod:`nervkit.io.lock`)

run.json carries a ``run_id`` that every checkpoint of the run repeats: a checkpoint copied from
another run (or left by a race) is refused by :meth:`RunDir.load_model` instead of decoding the wrong
model. Only one process at a time may change a run folder (:meth:`RunDir.lock`); a lock left by a
killed process is recovered.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import RunDirError
from .io.lock import FolderLock
from .models import Representation, VideoGeometry, rebuild_model
from .train import load_checkpoint

RUN_FILE = "run.json"
CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
DECODED_FILE = "decoded.mp4"
LOCK_FILE = ".nervkit-lock"
#: keys run.json must hold, with their types
_META_FIELDS = {"method": str, "config": dict, "geometry": dict, "train": dict, "data": dict}


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

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK_FILE

    def has_run(self) -> bool:
        return self.run_file.is_file()

    def lock(self, command: str) -> FolderLock:
        """The run folder's exclusive lock (``with run.lock("nervkit fit"):``), for whoever changes it."""
        return FolderLock(self.lock_file, command, what=f"run folder {self.path}")

    def foreign_entries(self) -> list[str]:
        """What the folder holds besides its lock (a new run needs an empty folder)."""
        try:
            return sorted(n for n in os.listdir(self.path) if n != LOCK_FILE)
        except FileNotFoundError:
            return []

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
        for key, kind in _META_FIELDS.items():
            if not isinstance(meta.get(key), kind):
                raise RunDirError(f"{self.run_file} is corrupt: its {key!r} entry is missing or not a "
                                  f"{'JSON object' if kind is dict else 'string'}")
        return meta

    def check_checkpoint(self, meta: dict[str, Any], state: dict[str, Any]) -> None:
        """RunDirError unless ``state`` (a checkpoint) belongs to the run that ``meta`` (run.json) describes."""
        run_id, ckpt_id = meta.get("run_id"), state.get("run_id")
        same = (run_id == ckpt_id) if (run_id and ckpt_id) else True
        same = same and state.get("method") == meta["method"] \
            and _plain(state.get("geometry")) == _plain(meta["geometry"]) \
            and _plain(state.get("config")) == _plain(meta["config"])
        if not same:
            geo = state.get("geometry") or {}
            raise RunDirError(
                f"{self.checkpoint} belongs to another run ({state.get('method')}, {geo.get('num_frames')} frames "
                f"{geo.get('height')}x{geo.get('width')}) than {self.run_file} describes ({meta['method']}, "
                f"{meta['geometry'].get('num_frames')} frames {meta['geometry'].get('height')}x"
                f"{meta['geometry'].get('width')}); restore the run's own checkpoint or fit again")

    def load_model(self, device: str | torch.device = "cpu") -> tuple[Representation, dict[str, Any]]:
        """The fitted model (eval mode) and its checkpoint dict."""
        meta = self.read_meta()
        state = load_checkpoint(self.checkpoint, map_location="cpu")
        self.check_checkpoint(meta, state)
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


def _plain(value: Any) -> Any:
    """``value`` as JSON sees it (tuples as lists), for comparing run.json with a checkpoint."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return repr(value)
