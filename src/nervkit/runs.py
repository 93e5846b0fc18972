"""Run folders: what ``nervkit fit`` writes and ``decode``/``info``/``compress`` read.

Layout of a run folder::

    run.json        settings: method, resolved model config, video geometry, training and data options,
                    parameter counts, status ("training" | "complete")
    checkpoint.pt   latest checkpoint (model, optimizer, progress, history) — atomic, resumable
    history.json    per-epoch loss / train PSNR / lr / seconds, and the evaluations (at the end)
    history.jsonl   one line per epoch, appended while training runs (``tail -f``)
    metrics.json    final quality of the fitted model on all frames against the clean source (PSNR, SSIM,
                    MS-SSIM, per frame), plus the interpolation / inpainting / denoising sections
    decoded.mp4     the decoded video (H.264, near-lossless CRF); ``nervkit decode`` makes others
    decoded/        for a collection of videos: decoded/<name>.mp4 per video instead of decoded.mp4
    .nervkit-lock   present while a process fits, resumes or fine-tunes the run (:mod:`nervkit.io.lock`)

run.json carries a ``run_id`` that every checkpoint of the run repeats: a checkpoint copied from
another run (or left by a race) is refused by :meth:`Run.load_model` instead of decoding the wrong
model. Only one process at a time may change a run folder (:meth:`Run.lock`); a lock left by a
killed process is recovered.

A :class:`Run` owns its folder's life cycle: it reads run.json once, rebuilds the model, loads the
training data once (:meth:`Run.training_data`, cached: the source frames with the run's frame
range, resize, noise, mask and frame split) and writes results. Fitting and resuming are in
:mod:`nervkit.fitting`, decoding to files in :mod:`nervkit.render`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import arguments
from .data import FrameStore, load_frames
from .data.collection import VideoSource, load_collection
from .errors import NervkitError, RunDirError
from .io import FrameRange
from .io.atomic import write_json_atomic
from .io.lock import FolderLock
from .metrics import QualityReport
from .models import Representation, VideoGeometry, get_method, rebuild_model
from .render import render_batches
from .tasks import TaskData, TaskOptions, prepare
from .train import DistContext, load_checkpoint

RUN_FILE = "run.json"
CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
DECODED_FILE = "decoded.mp4"
EPOCH_LOG_FILE = "history.jsonl"
LOCK_FILE = ".nervkit-lock"
#: keys run.json must hold, with their types
_META_FIELDS = {"method": str, "config": dict, "geometry": dict, "train": dict, "data": dict}


@dataclass(frozen=True)
class DataOptions:
    """Which frames a run is fitted to (run.json's ``data``): the source, its frame range, resize and
    raw-YUV geometry, and what is trained on (:class:`~nervkit.tasks.TaskOptions`: frame split,
    inpainting mask, denoising noise). run.json stores the task options flat beside the others."""

    source: str | None
    frames: str | None = None
    size: tuple[int, int] | None = None
    raw_size: tuple[int, int] | None = None
    raw_fps: float = 25.0
    tasks: TaskOptions = field(default_factory=TaskOptions)
    #: a collection (:mod:`nervkit.data.collection`): (path, name) of every input video, and how they
    #: are brought to one size and length; empty/None for a single video
    videos: tuple[tuple[str, str], ...] = ()
    tile: tuple[int, int] | None = None
    segment_frames: int | None = None

    @property
    def is_collection(self) -> bool:
        return bool(self.videos)

    @property
    def inputs(self) -> list[str]:
        """Every input path (what a command reading the run must never overwrite)."""
        return [p for p, _ in self.videos] if self.videos else [self.source] if self.source else []

    def describe(self) -> str:
        return self.source if not self.videos else f"the {len(self.videos)} videos of the collection"

    def to_dict(self) -> dict[str, Any]:
        d = {"source": self.source, "frames": self.frames, "size": list(self.size) if self.size else None,
             "raw_size": list(self.raw_size) if self.raw_size else None, "raw_fps": self.raw_fps,
             **asdict(self.tasks)}
        if self.videos:  # only for collections: a single video's run.json is as it always was
            d.update(videos=[{"path": p, "name": n} for p, n in self.videos],
                     tile=list(self.tile) if self.tile else None, segment_frames=self.segment_frames)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataOptions:
        tasks = TaskOptions(train_frames=d.get("train_frames") or "all", mask=d.get("mask"),
                            noise=d.get("noise"), noise_seed=int(d.get("noise_seed") or 0))
        return cls(
            source=d.get("source"),
            frames=d.get("frames"),
            size=tuple(d["size"]) if d.get("size") else None,  # type: ignore[arg-type]
            raw_size=tuple(d["raw_size"]) if d.get("raw_size") else None,  # type: ignore[arg-type]
            raw_fps=float(d.get("raw_fps", 25.0)),
            tasks=tasks,
            videos=tuple((v["path"], v["name"]) for v in d.get("videos") or ()),
            tile=tuple(d["tile"]) if d.get("tile") else None,  # type: ignore[arg-type]
            segment_frames=d.get("segment_frames"),
        )

    def load(self, cache_dir: Path | None, memory_budget: int | None = None) -> FrameStore:
        """The decoded frames. ``cache_dir``: where frames that do not fit in memory are memory-mapped
        (the run being fitted); ``None``: a private cache outside any run folder, removed with the store
        (a command that only reads a run never writes into it)."""
        private = cache_dir is None
        folder = Path(tempfile.mkdtemp(prefix="nervkit-frames-")) if private else cache_dir
        frames = FrameRange.parse(self.frames) if self.frames else None
        if self.videos:
            store = load_collection([VideoSource(p, n) for p, n in self.videos], frames=frames, size=self.size,
                                    tile=self.tile, segment_frames=self.segment_frames, raw_size=self.raw_size,
                                    raw_fps=self.raw_fps, memory_budget=memory_budget, cache_dir=folder)
        else:
            store = load_frames(self.source, frames=frames, size=self.size, raw_size=self.raw_size,
                                raw_fps=self.raw_fps, memory_budget=memory_budget, cache_dir=folder)
        if private:
            weakref.finalize(store, shutil.rmtree, folder, True)
        return store


@dataclass
class Run:
    """A run folder (see the module docstring)."""

    path: Path
    _meta: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)
    _data: TaskData | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def at(cls, path: str | os.PathLike[str]) -> Run:
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
    def decoded_folder(self) -> Path:
        """A collection's decoded videos, one file per video."""
        return self.path / "decoded"

    @property
    def cache_dir(self) -> Path:
        return self.path / "cache"

    @property
    def epoch_log(self) -> Path:
        return self.path / EPOCH_LOG_FILE

    @property
    def meta(self) -> dict[str, Any]:
        """run.json, read once (:meth:`read_meta` reads it again)."""
        if self._meta is None:
            self._meta = self.read_meta()
        return self._meta

    def write_meta(self, meta: dict[str, Any]) -> None:
        write_json_atomic(self.run_file, meta)
        self._meta = meta

    @property
    def videos(self) -> list[dict[str, Any]]:
        """The run's videos (name, fps, first frame, frame count); a single video is one entry."""
        meta = self.meta
        geometry = VideoGeometry(**{k: tuple(v) if k == "segments" else v for k, v in meta["geometry"].items()})
        listed = meta.get("videos") or [{"name": Path(str(meta["data"].get("source") or "video")).stem,
                                         "fps": meta.get("fps", 25.0)}]
        return [{"name": v["name"], "fps": float(v.get("fps") or meta.get("fps", 25.0)), "first_frame": start,
                 "frames": count} for v, (start, count) in zip(listed, geometry.spans())]

    @property
    def data_options(self) -> DataOptions:
        return DataOptions.from_dict(self.meta["data"])

    def training_data(self, memory_budget: int | None = None, *, fitting: bool = False,
                      options: DataOptions | None = None) -> TaskData:
        """The run's training data, loaded once: the source frames with the run's data options (or
        ``options``, for a run whose run.json is not written yet), and the task data built from them
        (noise, mask, frame split; :func:`nervkit.tasks.prepare`). The process fitting the run
        (``fitting``) caches large videos in the run's own cache folder (one per rank); every other
        reader in a private one outside the run."""
        if self._data is None:
            options = options or self.data_options
            cache = self.cache_dir / f"rank{DistContext.from_env().rank}" if fitting else None
            self._data = prepare(options.tasks, options.load(cache, memory_budget))
        return self._data

    def remove_cache(self) -> None:
        if self.cache_dir.exists():
            shutil.rmtree(self.cache_dir, ignore_errors=True)

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
            and _chosen(meta["method"], state.get("config")) == _chosen(meta["method"], meta["config"])
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

    def load(self, device: str | torch.device = "cpu") -> FittedRun:
        """The fitted run: model (eval mode), settings, history and per-task results."""
        meta = self.read_meta()
        self._meta = meta
        model, state = self.load_model(device)
        tasks: dict[str, Any] = {}
        if self.metrics_file.is_file():
            try:
                metrics = json.loads(self.metrics_file.read_text())
                tasks = {k: metrics[k] for k in ("interpolation", "inpainting", "denoising", "videos") if k in metrics}
            except (OSError, ValueError, TypeError):
                pass
        return FittedRun(self, model, meta, list(state.get("history", [])), list(state.get("evals", [])),
                         tasks=tasks, rate_state=state.get("rate"))

    def info(self) -> dict[str, Any]:
        """run.json and the training history (history.json, or the checkpoint's when it is missing or
        unreadable); the checkpoint must be this run's own."""
        meta = self.read_meta()
        history: dict[str, Any] | None = None
        state = None
        if self.checkpoint.is_file():
            state = load_checkpoint(self.checkpoint, mmap=True)
            self.check_checkpoint(meta, state)
        if self.history_file.is_file():
            try:
                history = json.loads(self.history_file.read_text())
            except (OSError, ValueError):
                history = None  # unreadable: the checkpoint holds the same history
            if not isinstance(history, dict) or not isinstance(history.get("epochs", []), list):
                history = None
                if state is None:
                    raise RunDirError(f"{self.history_file} is corrupt and the run has no checkpoint to recover "
                                      "it from")
        if history is None and state is not None:
            history = {"epochs": state.get("history", []), "evals": state.get("evals", []),
                       "train_seconds": state.get("elapsed", 0.0)}
        return {**meta, "history": history or {}}

    def write_results(self, *, history: list[dict[str, Any]], evals: list[dict[str, Any]], elapsed: float,
                      frames: int, report: QualityReport, tasks: dict[str, Any]) -> None:
        """history.json and metrics.json at the end of training."""
        write_json_atomic(self.history_file, {"epochs": history, "evals": evals, "train_seconds": elapsed})
        write_json_atomic(self.metrics_file, {"frames": frames, **report.to_dict(), **tasks})


#: the name of earlier versions
RunDir = Run


@dataclass
class FittedRun:
    """A fitted representation: the model, its run folder and settings."""

    run_dir: Run
    model: Representation
    meta: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    metrics: QualityReport | None = None
    #: per-task quality (interpolation / inpainting / denoising sections of metrics.json)
    tasks: dict[str, Any] = field(default_factory=dict)
    #: a run fitted with rate training: its learned quantizers (the checkpoint's ``"rate"``), else None
    rate_state: dict[str, Any] | None = None

    @property
    def run(self) -> Run:
        return self.run_dir

    @property
    def fps(self) -> float:
        return float(self.meta.get("fps", 25.0))

    def decode(self, indices: list[int] | torch.Tensor | int) -> torch.Tensor:
        """Frames at the true size (n, 3, H, W), float in [0, 1]."""
        idx = arguments.frame_indices(indices, self.model.geometry.num_frames)
        return self.model.decode_frames(idx)

    def iter_decoded(self, indices: list[int] | None = None, batch_size: int = 8) -> Iterator[torch.Tensor]:
        """Decoded frames in batches (bounded memory)."""
        n = self.model.geometry.num_frames
        idx = None if indices is None else arguments.frame_indices(indices, n).tolist()
        yield from render_batches(self.model, indices=idx, batch_size=batch_size)


def model_from_checkpoint(state: dict[str, Any]) -> Representation:
    """Rebuild a model from a checkpoint dict (no video needed)."""
    try:
        geometry = VideoGeometry(**state["geometry"])
        model = rebuild_model(state["method"], state["config"], geometry)
        model.load_state_dict(state["model"])
    except (TypeError, KeyError, RuntimeError) as exc:
        raise RunDirError(f"checkpoint does not match its model ({type(exc).__name__}: {str(exc)[:120]})") from None
    return model


def _chosen(method: str, config: Any) -> Any:
    """A config as JSON sees it without the options the model records while it is fitted."""
    plain = _plain(config)
    if isinstance(plain, dict):
        try:
            recorded = get_method(method).config_cls.recorded_options
        except NervkitError:
            recorded = ()
        plain = {k: v for k, v in plain.items() if k not in recorded}
    return plain


def _plain(value: Any) -> Any:
    """``value`` as JSON sees it (tuples as lists), for comparing run.json with a checkpoint."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return repr(value)
