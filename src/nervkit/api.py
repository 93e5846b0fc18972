"""The Python API, mirroring the CLI.

>>> import nervkit
>>> run = nervkit.fit(nervkit.sample_video(), model="nerv", params="1.5M", size=(180, 320),
...                   epochs=50, out="runs/bunny")
>>> run.metrics.psnr                      # quality of the fitted model
>>> fitted = nervkit.load("runs/bunny")
>>> frames = fitted.decode([0, 1, 2])     # (3, 3, 180, 320) float in [0, 1]
>>> nervkit.decode("runs/bunny", "bunny.mkv", lossless=True)
>>> nervkit.evaluate("reference.mp4", "bunny.mkv").psnr
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import uuid
import weakref
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from . import arguments
from .data import FrameStore, load_frames
from .errors import ConfigError, OutputError, ResourceError, RunDirError, output_error
from .io import FrameRange, VideoWriter
from .io.atomic import write_json_atomic
from .io.outputs import check_file_target, check_frame_folder_target, check_output
from .io.writer import is_folder_output
from .metrics import QualityReport, evaluate_videos
from .models import Representation, VideoGeometry, get_method
from .models.config import config_to_dict
from .models.memory import check_model_memory
from .models.sizing import bpp_to_param_count, parse_bpp_budget, parse_param_count
from .runs import RunDir
from .tasks import TaskData, TaskOptions, evaluate_run, prepare
from .train import TrainConfig, Trainer, init_distributed, resolve_device, shutdown_distributed


def sample_video() -> Path:
    """Path of the bundled Big Buck Bunny clip (1280×720, 132 frames; CC-BY 3.0, Blender Foundation)."""
    return Path(str(resources.files("nervkit") / "assets" / "bigbuckbunny.mp4"))


@dataclass(frozen=True)
class DataOptions:
    """Which frames are fitted: source path, frame range, resize, raw-YUV geometry."""

    source: str
    frames: str | None = None
    size: tuple[int, int] | None = None
    raw_size: tuple[int, int] | None = None
    raw_fps: float = 25.0
    # what is trained on (nervkit.tasks): frame split, inpainting mask, denoising noise
    train_frames: str = "all"
    mask: str | None = None
    noise: str | None = None
    noise_seed: int = 0

    @property
    def tasks(self) -> TaskOptions:
        return TaskOptions(self.train_frames, self.mask, self.noise, self.noise_seed)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["size"] = list(self.size) if self.size else None
        d["raw_size"] = list(self.raw_size) if self.raw_size else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataOptions:
        return cls(
            source=d["source"],
            frames=d.get("frames"),
            size=tuple(d["size"]) if d.get("size") else None,  # type: ignore[arg-type]
            raw_size=tuple(d["raw_size"]) if d.get("raw_size") else None,  # type: ignore[arg-type]
            raw_fps=float(d.get("raw_fps", 25.0)),
            train_frames=d.get("train_frames") or "all",
            mask=d.get("mask"),
            noise=d.get("noise"),
            noise_seed=int(d.get("noise_seed") or 0),
        )


@dataclass
class FittedRun:
    """A fitted representation: the model, its run folder and settings."""

    run_dir: RunDir
    model: Representation
    meta: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    metrics: QualityReport | None = None
    #: per-task quality (interpolation / inpainting / denoising sections of metrics.json)
    tasks: dict[str, Any] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return float(self.meta.get("fps", 25.0))

    def decode(self, indices: list[int] | torch.Tensor | int) -> torch.Tensor:
        """Frames at the true size (n, 3, H, W), float in [0, 1]."""
        idx = arguments.frame_indices(indices, self.model.geometry.num_frames)
        return self.model.decode_frames(idx)

    def iter_decoded(self, indices: list[int] | None = None, batch_size: int = 8) -> Iterator[torch.Tensor]:
        """Decoded frames in batches (bounded memory)."""
        idx = list(range(self.model.geometry.num_frames)) if indices is None else list(indices)
        for start in range(0, len(idx), batch_size):
            yield self.decode(idx[start : start + batch_size])


def _as_size(size: str | tuple[int, int] | list[int] | None, name: str = "--size") -> tuple[int, int] | None:
    return arguments.size(name, size)


def _train_config(train: TrainConfig | None, overrides: dict[str, Any],
                  method_defaults: dict[str, Any] | None = None) -> TrainConfig:
    """``train`` (or the defaults: TrainConfig's, then the method's own recipe) with ``overrides``.

    ``method_defaults`` (``register_method(train_defaults=…)``) only fill in for an implicit
    TrainConfig: an explicit ``train`` object and every override win over them.
    """
    from .models.config import replace_config

    if train is None and method_defaults:
        overrides = {**method_defaults, **overrides}
    config = replace_config(train or TrainConfig(), **overrides) if overrides else (train or TrainConfig())
    config.validate()
    return config


def fit(
    video: str | os.PathLike[str] | None = None,
    *,
    out: str | os.PathLike[str],
    model: str | None = None,
    preset: str | None = None,
    params: str | int | None = None,
    size: str | tuple[int, int] | None = None,
    frames: str | None = None,
    raw_size: str | tuple[int, int] | None = None,
    raw_fps: float = 25.0,
    train_frames: str = "all",
    mask: str | None = None,
    noise: str | None = None,
    noise_seed: int = 0,
    model_options: dict[str, Any] | None = None,
    train: TrainConfig | None = None,
    resume: bool = False,
    progress: bool = True,
    write_video: bool = True,
    memory_budget: int | None = None,
    **train_overrides: Any,
) -> FittedRun:
    """Fit a representation to ``video`` and write the run folder ``out`` (see :mod:`nervkit.runs`).

    ``train_overrides`` are :class:`~nervkit.train.TrainConfig` fields (``epochs=…, lr=…, loss=…``);
    without ``train`` the method's own recipe (e.g. HNeRV: L2 loss, lr 1e-3, batch 2) fills in the
    fields not given.
    With ``resume=True`` the run in ``out`` continues from its checkpoint with its stored settings.
    ``train_frames``, ``mask``, ``noise`` and ``noise_seed`` choose what is trained on for the
    interpolation, inpainting and denoising tasks (:class:`nervkit.tasks.TaskOptions`, docs/tasks.md);
    the run's metrics then hold the per-task numbers (``FittedRun.tasks``).
    """
    run = RunDir.at(arguments.path("out", out))
    main_rank = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 writes the run folder
    if resume:
        if video is not None:
            raise ConfigError("--resume continues the run with its stored video; drop the VIDEO argument")
        if train_frames != "all" or mask or noise or noise_seed:
            raise ConfigError("--resume continues a run with its stored data options; drop --train-frames, "
                              "--mask, --noise and --noise-seed")
        with _run_lock(run, "nervkit fit --resume", main_rank):
            return _resume(run, model=model, progress=progress, write_video=write_video,
                           memory_budget=memory_budget, train_overrides=train_overrides)
    if video is None:
        raise ConfigError("no input video given")
    video = arguments.path("video", video)
    arguments.text("train_frames", train_frames)
    noise_seed = arguments.integer("--noise-seed", noise_seed, low=0)
    tasks = TaskOptions(train_frames, mask, noise, noise_seed).validate()  # cheap errors first
    spec = get_method("nerv" if model is None else arguments.text("model", model))
    if train is not None and not isinstance(train, TrainConfig):
        raise ConfigError(f"train must be a nervkit.TrainConfig, got {type(train).__name__}")
    if model_options is not None and not isinstance(model_options, dict):
        raise ConfigError(f"model_options must be a dict of architecture options, got {type(model_options).__name__}")
    train_cfg = _train_config(train, train_overrides, spec.train_defaults)
    size_hw, raw_hw = _as_size(size), _as_size(raw_size, "--raw-size")
    if Path(video).suffix.lower() == ".yuv" and raw_hw is None and size_hw is not None:
        size_hw, raw_hw = None, size_hw  # a raw .yuv has no header: --size gives its frame size
    frame_range = arguments.frame_range("--frames", frames)
    data = DataOptions(
        source=str(Path(video)),
        frames=str(frame_range) if frame_range else None,
        size=size_hw,
        raw_size=raw_hw,
        raw_fps=arguments.number("--fps", raw_fps, low=0, low_open=True, high=1000),
        train_frames=tasks.train_frames,
        mask=tasks.mask,
        noise=tasks.noise,
        noise_seed=tasks.noise_seed,
    )
    bpp = parse_bpp_budget(params)
    budget = parse_param_count(params) if params is not None and bpp is None else None
    # check the model options before decoding the video: cheap errors first
    spec.unresolved_config(preset=preset, params=budget if bpp is None else 1, overrides=model_options)
    lock, created = _claim_new_run(run) if main_rank else (None, False)
    try:
        store = _load_store(data, run, memory_budget)
        task_data = prepare(data.tasks, store)  # bad masks, empty splits: before the run is written
        geometry = VideoGeometry(len(store), store.height, store.width)
        if bpp is not None:  # "0.9bpp": 8-bit values at that rate (the papers' quantized-only bpp)
            budget = max(1000, bpp_to_param_count(bpp, geometry.pixels))
        config = spec.build_config(geometry, preset=preset, params=budget, overrides=model_options)
        # counted on the meta device: a model the machine cannot train is refused before any allocation
        check_model_memory(spec, config, geometry, training=True, device=train_cfg.device, error=ResourceError)
        torch.manual_seed(train_cfg.seed)
        net = spec.model_cls(config, geometry)
    except BaseException:
        if lock is not None:  # nothing of the run was written: leave nothing behind
            _discard_unstarted(run, created)
            lock.release()
        raise
    meta = {
        "nervkit_version": _version(),
        "run_id": uuid.uuid4().hex,
        "method": spec.name,
        "preset": preset,
        "params_budget": budget,
        "bpp_budget": bpp,
        "config": config_to_dict(config),
        "geometry": asdict(geometry),
        "train": config_to_dict(train_cfg),
        "data": data.to_dict(),
        "fps": store.fps,
        "source_size": list(store.source_size),
        "source_indices": store.source_indices,
        "output_size": list(net.output_size),
        "parameters": asdict(net.parameter_counts()),
        "status": "training",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    try:
        if main_rank:
            try:
                write_json_atomic(run.run_file, meta)
            except BaseException:  # e.g. a full disk: the run never started
                _discard_unstarted(run, created)
                raise
        return _train(run, net, task_data, train_cfg, meta, None, progress, write_video)
    finally:
        if lock is not None:
            lock.release()


def _refuse_occupied(run: RunDir) -> None:
    if run.has_run():
        raise OutputError(f"{run.path} already holds a run; use --resume to continue it or choose another -o")
    entries = run.foreign_entries()
    if entries:
        shown = ", ".join(entries[:4]) + (f" and {len(entries) - 4} more" if len(entries) > 4 else "")
        raise OutputError(f"output folder {run.path} is not empty (it holds {shown}); a new run needs a new "
                          "or empty folder")


def _claim_new_run(run: RunDir) -> tuple[Any, bool]:
    """Create (or take the empty) run folder and hold its lock: (lock, created).

    The emptiness check is repeated under the lock, so two fits started at the same moment on the
    same folder cannot both write it: one is refused (held lock, or a run already there).
    """
    if run.path.exists() and not run.path.is_dir():
        raise OutputError(f"-o {run.path} is a file; a run needs a new or empty folder")
    _refuse_occupied(run)
    created = not run.path.exists()
    try:
        run.path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(exc, run.path, "cannot create the run folder") from None
    try:
        lock = run.lock("nervkit fit").acquire()
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                run.path.rmdir()  # only if still empty: another process may hold it now
        raise
    try:
        _refuse_occupied(run)
    except BaseException:
        lock.release()
        raise
    return lock, created


def _discard_unstarted(run: RunDir, created: bool) -> None:
    """Remove what a fit that failed before writing run.json created (its frame cache, the folder)."""
    if created:
        shutil.rmtree(run.path, ignore_errors=True)
    elif run.cache_dir.exists():
        shutil.rmtree(run.cache_dir, ignore_errors=True)


@contextlib.contextmanager
def _run_lock(run: RunDir, command: str, enabled: bool = True) -> Iterator[None]:
    """Hold ``run``'s lock (when ``enabled``: rank 0 under torchrun) for a command that changes it."""
    if not enabled:
        yield
        return
    run.read_meta()  # a clear "not a run folder" before creating a lock file in it
    with run.lock(command):
        yield


def _load_store(data: DataOptions, run: RunDir | None, memory_budget: int | None) -> FrameStore:
    """The run's frames. ``run`` is the run being fitted (its cache folder may hold them); commands that
    only read a run pass ``None`` and get a private cache outside it (a reader never writes a run)."""
    if run is None:
        cache = Path(tempfile.mkdtemp(prefix="nervkit-frames-"))
        store = _load_store_into(data, cache, memory_budget)
        weakref.finalize(store, shutil.rmtree, cache, True)
        return store
    # one cache per process: under torchrun every rank decodes its own copy
    return _load_store_into(data, run.cache_dir / f"rank{os.environ.get('RANK', '0')}", memory_budget)


def _load_store_into(data: DataOptions, cache_dir: Path, memory_budget: int | None) -> FrameStore:
    return load_frames(
        data.source,
        frames=FrameRange.parse(data.frames) if data.frames else None,
        size=data.size,
        raw_size=data.raw_size,
        raw_fps=data.raw_fps,
        memory_budget=memory_budget,
        cache_dir=cache_dir,
    )


def _resume(run: RunDir, *, model: str | None, progress: bool, write_video: bool, memory_budget: int | None,
            train_overrides: dict[str, Any]) -> FittedRun:
    from .runs import model_from_checkpoint
    from .train import load_checkpoint

    meta = run.read_meta()
    if model is not None and get_method(model).name != meta["method"]:
        raise ConfigError(f"--model {model} differs from the run's {meta['method']}; a resumed run keeps its "
                          "settings (drop --model, or fit a new run in another folder)")
    stored_train = meta["train"]
    for key, value in train_overrides.items():
        if key in ("device", "threads"):
            continue
        if key in stored_train and stored_train[key] != value:
            raise ConfigError(
                f"--{key.replace('_', '-')} {value} differs from the run's {stored_train[key]}; "
                "a resumed run keeps its settings"
            )
    runtime = {k: v for k, v in train_overrides.items() if k in ("device", "threads")}
    train_cfg = _train_config(None, {**stored_train, **runtime})
    state = load_checkpoint(run.checkpoint) if run.checkpoint.is_file() else None
    if state is not None:
        run.check_checkpoint(meta, state)
    data = DataOptions.from_dict(meta["data"])
    store = _load_store(data, run, memory_budget)
    if state is not None:
        net = model_from_checkpoint(state)
    else:  # killed before the first checkpoint: start over with the stored settings
        spec = get_method(meta["method"])
        geometry = VideoGeometry(**meta["geometry"])
        from .models.config import config_from_dict

        torch.manual_seed(train_cfg.seed)
        net = spec.model_cls(config_from_dict(spec.config_cls, meta["config"]), geometry)
    if (len(store), store.height, store.width) != (net.geometry.num_frames, net.geometry.height, net.geometry.width):
        raise RunDirError(f"the video {data.source} no longer matches the run in {run.path}")
    return _train(run, net, prepare(data.tasks, store), train_cfg, meta, state, progress, write_video)


def task_data(fitted: FittedRun, memory_budget: int | None = None) -> TaskData:
    """The training data of a fitted run, rebuilt from its stored data options (compress, tasks)."""
    data = DataOptions.from_dict(fitted.meta["data"])
    return prepare(data.tasks, _load_store(data, None, memory_budget))


def _train(run: RunDir, net: Representation, data: TaskData, train_cfg: TrainConfig, meta: dict[str, Any],
           state: dict[str, Any] | None, progress: bool, write_video: bool) -> FittedRun:
    store = data.store
    if train_cfg.threads:
        torch.set_num_threads(train_cfg.threads)
    device = resolve_device(train_cfg.device, int(os.environ.get("LOCAL_RANK", "0")))
    dist = init_distributed(device)
    try:
        trainer = Trainer(net, store, train_cfg, device=device, train_indices=data.train_indices,
                          checkpoint_path=run.checkpoint, dist=dist, progress=progress, loss_mask=data.loss_mask,
                          checkpoint_extra={"run_id": meta["run_id"]} if meta.get("run_id") else None)
        if state is not None:
            trainer.load_state_dict(state)
        final = trainer.fit()
        if not dist.is_main:
            return FittedRun(run, net.cpu().eval(), meta, final.history, final.evals, None)
        write_json_atomic(run.history_file, {"epochs": final.history, "evals": final.evals,
                                             "train_seconds": final.elapsed})
        report, tasks = evaluate_run(net, data)  # against the clean video; per task where one is set
        write_json_atomic(run.metrics_file, {"frames": len(store), **report.to_dict(), **tasks})
        net = net.cpu().eval()
        fitted = FittedRun(run, net, meta, final.history, final.evals, report, tasks)
        if write_video:
            write_decoded(net, run.decoded_video, fps=fitted.fps, lossless=False)
        meta = {**meta, "status": "complete", "train_seconds": final.elapsed, "psnr": report.psnr,
                "ms_ssim": report.ms_ssim}
        write_json_atomic(run.run_file, meta)
        fitted.meta = meta
        if run.cache_dir.exists():
            shutil.rmtree(run.cache_dir, ignore_errors=True)
        return fitted
    finally:
        shutdown_distributed(dist)


def load(run_dir: str | os.PathLike[str], device: str = "cpu") -> FittedRun:
    """Load a fitted run (the model in eval mode, its settings and history)."""
    run = RunDir.at(arguments.path("run", run_dir))
    meta = run.read_meta()
    model, state = run.load_model(_device(device))
    tasks: dict[str, Any] = {}
    if run.metrics_file.is_file():
        import json

        try:
            metrics = json.loads(run.metrics_file.read_text())
            tasks = {k: metrics[k] for k in ("interpolation", "inpainting", "denoising") if k in metrics}
        except (OSError, ValueError):
            pass
    return FittedRun(run, model, meta, list(state.get("history", [])), list(state.get("evals", [])), tasks=tasks)


def write_decoded(model: Representation, output: str | os.PathLike[str], *, fps: float, lossless: bool,
                  indices: list[int] | None = None, crf: int = 12, batch_size: int = 8, scale: float = 1.0) -> Path:
    """Decode ``indices`` (default: all frames) of ``model`` in batches into a video file or PNG folder
    (``scale`` ≠ 1: rendered at scale × the fitted size, :meth:`Representation.decode_scaled`)."""
    idx = list(range(model.geometry.num_frames)) if indices is None else list(indices)
    with VideoWriter(output, fps=fps, lossless=lossless, crf=crf) as writer:
        for start in range(0, len(idx), batch_size):
            chunk = idx[start : start + batch_size]
            frames = model.decode_frames(chunk) if scale == 1 else model.decode_frames_scaled(chunk, scale)
            writer.write(frames.cpu())
    return Path(output)


def decode(
    run_dir: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    lossless: bool = False,
    frames: str | FrameRange | None = None,
    crf: int = 12,
    device: str = "cpu",
) -> Path:
    """Decode a fitted run to a video file (.mp4/.mkv; ``lossless`` → FFV1 in .mkv) or a PNG folder."""
    check_video_output(output, read_folders=[run_dir], lossless=lossless, crf=crf)
    frame_range = arguments.frame_range("--frames", frames)
    fitted = load(run_dir, device)
    n = fitted.model.geometry.num_frames
    indices = list(frame_range.resolve(n)) if frame_range else None
    return write_decoded(fitted.model, output, fps=fitted.fps, lossless=lossless, indices=indices, crf=crf)


def check_video_output(output: str | os.PathLike[str], *, inputs: list[Any] = (),  # type: ignore[assignment]
                       read_folders: list[Any] = (), lossless: bool = False,  # type: ignore[assignment]
                       crf: int = 12) -> Path:
    """Every check on a decoded-video output before any work (:mod:`nervkit.io.outputs`): not an input,
    not inside a run folder the command reads, a writable kind of target, valid writer options."""
    output = arguments.path("output", output)
    arguments.flag("lossless", lossless)
    arguments.integer("--crf", crf, low=0, high=51)
    check_output(output, inputs=inputs, read_folders=read_folders)
    VideoWriter(output, lossless=lossless, crf=crf)  # the output kind and codec options
    if is_folder_output(output):
        check_frame_folder_target(output)
    else:
        check_file_target(output)
    return Path(output)


def interpolate(run: str | os.PathLike[str], factor: int, out: str | os.PathLike[str], *, lossless: bool = False,
                crf: int = 12, device: str = "cpu") -> dict[str, Any]:
    """Synthesise in-between frames: decode ``run`` (a run folder or a ``.nerv`` file) at the fractional
    positions 0, 1/factor, …, N − 1 (``Representation.decode_at``) into ``out`` at fps × factor.

    Returns ``{"file", "frames", "fps", "factor", "source_frames", "method"}``; the output holds
    N + (N − 1)(factor − 1) frames (see :mod:`nervkit.tasks.interpolation`).
    """
    from .tasks.interpolation import interpolation_positions, write_interpolated

    path = Path(arguments.path("run", run))
    arguments.integer("--factor", factor)
    if path.is_file():
        from .compress.model_codec import read_nerv

        check_video_output(out, inputs=[path], lossless=lossless, crf=crf)
        nerv = read_nerv(path)
        interpolation_positions(nerv.geometry.num_frames, factor)  # a bad factor fails before building
        model, fps = nerv.build_model().to(_device(device)), nerv.fps
    else:
        check_video_output(out, read_folders=[path], lossless=lossless, crf=crf)
        fitted = load(path, _device(device))
        model, fps = fitted.model, fitted.fps
    interpolation_positions(model.geometry.num_frames, factor)  # a bad factor fails before writing
    return write_interpolated(model, out, factor=factor, fps=fps, lossless=lossless, crf=crf)


def inpaint(run: str | os.PathLike[str], mask: str, out: str | os.PathLike[str] | None = None, *,
            lossless: bool = False, crf: int = 12, device: str = "cpu") -> dict[str, Any]:
    """Inpainting with masked inputs at test time (the DNeRV protocol) on a run fitted to the clean video.

    A frame-conditioned method recomputes its side information from the masked source frames (the
    run folder is not changed); NeRV just decodes (``"protocol": "index"``). Returns the whole-frame
    and inside-the-mask quality against the unmasked frames; ``out`` also writes the decoded video.
    See :mod:`nervkit.tasks.inpainting`.
    """
    from .data.masks import check_mask_spec, make_mask
    from .tasks.inpainting import inpaint_from_masked_input

    check_mask_spec(mask)
    fitted = load(run, _device(device))
    data = DataOptions.from_dict(fitted.meta["data"])
    if out is not None:
        mask_file = mask if isinstance(mask, str) and Path(mask).exists() else None
        check_video_output(out, inputs=[data.source, mask_file], read_folders=[fitted.run_dir.path],
                           lossless=lossless, crf=crf)
    clean = _load_store(data, None, None)
    holes = make_mask(mask, len(clean), clean.height, clean.width)
    result = inpaint_from_masked_input(fitted.model, clean, holes, mask)
    result = {"run": str(fitted.run_dir.path), "method": fitted.model.method, **result}
    if out is not None:
        result["file"] = str(write_decoded(fitted.model, out, fps=fitted.fps, lossless=lossless, crf=crf))
    return result


def evaluate(reference: str | os.PathLike[str], distorted: str | os.PathLike[str], *,
             frames: str | FrameRange | None = None, size: str | tuple[int, int] | None = None,
             raw_size: str | tuple[int, int] | None = None, **kwargs: Any) -> QualityReport:
    """PSNR (per-frame mean and global), SSIM and MS-SSIM of ``distorted`` against ``reference``.

    ``frames`` (``"A:B"`` or a FrameRange), ``size`` and ``raw_size`` (``"HxW"`` or a pair) as on the CLI.
    """
    return evaluate_videos(arguments.path("reference", reference), arguments.path("distorted", distorted),
                           frames=arguments.frame_range("--frames", frames), size=_as_size(size),
                           raw_size=_as_size(raw_size, "--raw-size"), **kwargs)


def write_report(path: str | os.PathLike[str], data: dict[str, Any], *, inputs: list[Any]) -> Path:
    """Write a JSON report to ``path`` (a file; never one of ``inputs``), atomically."""
    check_output(path, inputs=inputs)
    write_json_atomic(path, data)
    return Path(path)


def info(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Model, parameters, frames, size and training history of a run."""
    run = RunDir.at(arguments.path("run", run_dir))
    meta = run.read_meta()
    history: dict[str, Any] | None = None
    state = None
    if run.checkpoint.is_file():
        from .train import load_checkpoint

        state = load_checkpoint(run.checkpoint, mmap=True)
        run.check_checkpoint(meta, state)  # the checkpoint must be this run's own
    if run.history_file.is_file():
        import json

        try:
            history = json.loads(run.history_file.read_text())
        except (OSError, ValueError):
            history = None  # unreadable: the checkpoint holds the same history
        if not isinstance(history, dict) or not isinstance(history.get("epochs", []), list):
            history = None
            if state is None:
                raise RunDirError(f"{run.history_file} is corrupt and the run has no checkpoint to recover it from")
    if history is None and state is not None:
        history = {"epochs": state.get("history", []), "evals": state.get("evals", []),
                   "train_seconds": state.get("elapsed", 0.0)}
    return {**meta, "history": history or {}}


def _device(device: str | torch.device) -> torch.device:
    """``device`` ("cpu", "cuda", "auto", or a torch.device) checked: ConfigError if absent or unknown."""
    if isinstance(device, torch.device):
        return resolve_device(str(device))
    return resolve_device(arguments.text("--device", device))


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("nervkit")
    except Exception:  # pragma: no cover - not installed
        return "0+unknown"
