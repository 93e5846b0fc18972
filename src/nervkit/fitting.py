"""Fitting a run: a new run folder from a request (:func:`start_run`), or the continuation of an
interrupted one (:func:`resume_run`); both end in :func:`train_run`.

A new fit takes the output folder (new or empty) and holds its lock for the whole fit, so that two
fits started together cannot both write it (:mod:`nervkit.io.lock`); checks the model's memory on
the meta device before allocating it; writes run.json (settings and provenance: the command line,
versions, git commit, device, threads) before the first step, trains (checkpoints, the per-epoch log
``history.jsonl``), then writes history.json, metrics.json, ``decoded.mp4`` and marks the run
complete. Under torchrun only rank 0 writes the run folder (:meth:`DistContext.from_env`).
"""

from __future__ import annotations

import contextlib
import os
import platform
import shlex
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import ConfigError, OutputError, ResourceError, RunDirError, output_error
from .io.lock import FolderLock
from .data.samplers import check_sampling
from .models import Representation, VideoGeometry
from .models.config import config_from_dict, config_to_dict, replace_config
from .models.memory import check_model_memory
from .models.registry import MethodSpec, get_method
from .models.sizing import bpp_to_param_count
from .precision import check_precision
from .render import write_decoded
from .runs import DataOptions, FittedRun, Run, model_from_checkpoint
from .tasks import TaskData, evaluate_run
from .train import DistContext, TrainConfig, Trainer, init_distributed, load_checkpoint, resolve_device
from .train.engine import check_rate_target
from .train import shutdown_distributed
from .version import version


@dataclass(frozen=True)
class FitRequest:
    """A new fit, its options checked (:func:`nervkit.fit` builds it): the data, the method and its size
    (a preset, a parameter budget or a bpp budget, architecture options) and the training recipe."""

    data: DataOptions
    spec: MethodSpec
    train: TrainConfig
    preset: str | None = None
    budget: int | None = None
    bpp: float | None = None
    model_options: dict[str, Any] | None = None
    epochs_set: bool = True  # the user chose --epochs (else no warning for a run over an hour)


def train_config(train: TrainConfig | None, overrides: dict[str, Any],
                 method_defaults: dict[str, Any] | None = None) -> TrainConfig:
    """``train`` (or the defaults: TrainConfig's, then the method's own recipe) with ``overrides``.

    ``method_defaults`` (``register_method(train_defaults=…)``) only fill in for an implicit
    TrainConfig: an explicit ``train`` object and every override win over them.
    """
    if train is None and method_defaults:
        overrides = {**method_defaults, **overrides}
    config = replace_config(train or TrainConfig(), **overrides) if overrides else (train or TrainConfig())
    config.validate()
    _check_device_precision(config)
    return config


def _check_device_precision(config: TrainConfig) -> None:
    """A ``--precision`` the training device cannot run is refused before anything is loaded or written."""
    try:
        device = resolve_device(config.device, DistContext.from_env().local_rank)
    except ConfigError:
        return  # the device itself is reported where it is used, with its own message
    check_precision(config.precision, device)


def start_run(run: Run, request: FitRequest, *, progress: bool, write_video: bool,
              memory_budget: int | None = None) -> FittedRun:
    """Fit a new run into ``run`` (new or empty folder) as ``request`` says."""
    main = DistContext.from_env().is_main
    lock, created = _claim_new_run(run) if main else (None, False)
    try:
        try:
            data = run.training_data(memory_budget, fitting=True, options=request.data)
            net, meta = _build(request, data)
            if main:
                run.write_meta(meta)
        except BaseException:
            if lock is not None:  # nothing of the run was written: leave nothing behind
                _discard_unstarted(run, created)
            raise
        if progress and main:
            for line in build_summary(request.spec, net, data):
                print(line, file=sys.stderr, flush=True)
        return train_run(run, net, data, request.train, meta, None, progress, write_video,
                         epochs_set=request.epochs_set)
    finally:
        if lock is not None:
            lock.release()


def _build(request: FitRequest, data: TaskData) -> tuple[Representation, dict[str, Any]]:
    """The model of ``request`` for the loaded video, checked to fit in memory, and run.json's content."""
    spec, store = request.spec, data.clean
    geometry = VideoGeometry(len(store), store.height, store.width, store.segments)
    budget, options = request.budget, request.model_options
    if request.bpp is not None:  # "0.9bpp": 8-bit values at that rate (the papers' quantized-only bpp)
        budget = max(1000, bpp_to_param_count(request.bpp, geometry.pixels))
        # a method whose file holds more than its weights counts them in a rate (D-NeRV's key-frames)
        options = {**spec.config_cls.rate_budget_options, **options}
    config = spec.build_config(geometry, preset=request.preset, params=budget, overrides=options)
    # counted on the meta device: a model the machine cannot train is refused before any allocation
    check_model_memory(spec, config, geometry, training=True, device=request.train.device, error=ResourceError)
    torch.manual_seed(request.train.seed)
    net = spec.model_cls(config, geometry)
    check_rate_target(net, request.train)  # an unreachable --target-bpp: before the run exists
    check_sampling(net, request.train.sampling())  # e.g. a --patch-size that does not tile the frame
    meta = {
        "nervkit_version": version(),
        "run_id": uuid.uuid4().hex,
        "method": spec.name,
        "preset": request.preset,
        "params_budget": budget,
        "bpp_budget": request.bpp,
        "config": config_to_dict(config),
        "geometry": geometry.to_dict(),
        "train": config_to_dict(request.train),
        "data": request.data.to_dict(),
        "fps": store.fps,
        "source_size": list(store.source_size),
        "source_indices": store.source_indices,
        "output_size": list(net.output_size),
        "parameters": asdict(net.parameter_counts()),
        "status": "training",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "provenance": provenance(request.train),
    }
    if store.segments:  # a collection: every video's name, frames, rate and source
        meta["videos"] = [{"name": n, "frames": c, "fps": f, "source": src} for n, c, f, src in
                          zip(store.names, store.segments, store.video_fps, store.video_sources)]
    return net, meta


def build_summary(spec: MethodSpec, net: Representation, data: TaskData) -> list[str]:
    """What ``nervkit fit`` read and built, before its first step: one line (frames, size, rate, the model's
    parameters and decoding FLOPs per frame), then a warning for a model that stores more values than
    the video has."""
    store, counts = data.clean, net.parameter_counts()
    flops = decode_flops(spec, net)
    videos = f" in {len(store.segments)} videos" if store.segments else ""
    line = (f"read {len(store)} frames {store.height}x{store.width}{videos} at {store.fps:g} fps; {spec.name}: "
            f"{counts.official:,} parameters ({counts.total:,} stored values)"
            + (f", {_format_flops(flops)}/frame" if flops else ""))
    lines = [line]
    values = len(store) * store.height * store.width * 3
    if counts.total > values:
        small = max(1, values // 20)  # about 1/20 of the pixel values, well below the video
        lines.append(f"nervkit: warning: the model stores {counts.total:,} values, more than the video's "
                     f"{values:,} pixel values; use a smaller budget, e.g. --params {_format_count(small)} "
                     "or a bpp budget like --params 0.3bpp")
    return lines


def decode_flops(spec: MethodSpec, net: Representation) -> int | None:
    """FLOPs of decoding one frame, counted on a copy of ``net`` on the meta device (None: not countable)."""
    try:
        from torch.utils.flop_counter import FlopCounterMode

        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = spec.model_cls(net.config, net.geometry).eval()
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                model.decode(torch.zeros(1, dtype=torch.long))
        return int(counter.get_total_flops()) or None
    except Exception:  # noqa: BLE001 - an op without a meta kernel or a FLOP formula: leave the FLOPs out
        return None


def _format_flops(flops: int) -> str:
    for unit, scale in (("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6), ("kFLOP", 1e3)):
        if flops >= scale:
            return f"{flops / scale:.1f} {unit}"
    return f"{flops} FLOP"


def _format_count(n: int) -> str:
    """A ``--params`` value: ``0.05M``, ``20k``, ``500``."""
    if n >= 1_000_000:
        return f"{n / 1e6:.2g}M"
    if n >= 1000:
        return f"{n / 1e3:.2g}k"
    return str(n)


#: the training options a resumed run may change (a GPU without bf16, a machine without a compiler); what
#: a resume used is in run.json's ``resumed`` entries
RUNTIME_OPTIONS = ("device", "threads", "precision", "compile")


def resume_run(run: Run, *, model: str | None, progress: bool, write_video: bool, memory_budget: int | None,
               train_overrides: dict[str, Any]) -> FittedRun:
    """Continue the interrupted run in ``run`` with its stored settings (only the runtime options
    :data:`RUNTIME_OPTIONS` may change: where and how fast it computes), holding its lock."""
    with _run_lock(run, "nervkit fit --resume", DistContext.from_env().is_main):
        meta = run.read_meta()
        if model is not None and get_method(model).name != meta["method"]:
            raise ConfigError(f"--model {model} differs from the run's {meta['method']}; a resumed run keeps its "
                              "settings (drop --model, or fit a new run in another folder)")
        stored_train = meta["train"]
        for key, value in train_overrides.items():
            if key not in RUNTIME_OPTIONS and key in stored_train and stored_train[key] != value:
                raise ConfigError(f"--{key.replace('_', '-')} {value} differs from the run's {stored_train[key]}; "
                                  "a resumed run keeps its settings")
        runtime = {k: v for k, v in train_overrides.items() if k in RUNTIME_OPTIONS}
        train_cfg = train_config(None, {**stored_train, **runtime})
        state = load_checkpoint(run.checkpoint) if run.checkpoint.is_file() else None
        if state is not None:
            run.check_checkpoint(meta, state)
        data = run.training_data(memory_budget, fitting=True)
        if state is not None:
            net = model_from_checkpoint(state)
        else:  # killed before the first checkpoint: start over with the stored settings
            spec = get_method(meta["method"])
            torch.manual_seed(train_cfg.seed)
            net = spec.model_cls(config_from_dict(spec.config_cls, meta["config"]), VideoGeometry(**meta["geometry"]))
        store = data.clean
        if (len(store), store.height, store.width) != (net.geometry.num_frames, net.geometry.height,
                                                       net.geometry.width):
            raise RunDirError(f"{run.data_options.describe()} no longer match the run in {run.path}")
        if DistContext.from_env().is_main:
            resumes = [*meta.get("resumed", []), {"at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                                  **provenance(train_cfg)}]
            meta = {**meta, "resumed": resumes}
            run.write_meta(meta)
        return train_run(run, net, data, train_cfg, meta, state, progress, write_video)


def train_run(run: Run, net: Representation, data: TaskData, train_cfg: TrainConfig, meta: dict[str, Any],
              state: dict[str, Any] | None, progress: bool, write_video: bool, *,
              epochs_set: bool = True) -> FittedRun:
    """Train ``net`` on ``data`` (from ``state``, a checkpoint, when resuming) and write the results."""
    if train_cfg.threads:
        torch.set_num_threads(train_cfg.threads)
    device = resolve_device(train_cfg.device, DistContext.from_env().local_rank)
    dist = init_distributed(device)
    try:
        trainer = Trainer(net, data.store, train_cfg, device=device, train_indices=data.train_indices,
                          checkpoint_path=run.checkpoint, dist=dist, progress=progress, loss_mask=data.loss_mask,
                          checkpoint_extra={"run_id": meta["run_id"]} if meta.get("run_id") else None,
                          epoch_log=run.epoch_log if dist.is_main else None, estimate=True,
                          epochs_set=epochs_set)
        if state is not None:
            trainer.load_state_dict(state)
        final = trainer.fit()
        if not dist.is_main:
            return FittedRun(run, net.cpu().eval(), meta, final.history, final.evals, None)
        report, tasks = evaluate_run(net, data)  # against the clean video; per task where one is set
        run.write_results(history=final.history, evals=final.evals, elapsed=final.elapsed,
                          frames=len(data.store), report=report, tasks=tasks)
        net = net.cpu().eval()
        fitted = FittedRun(run, net, meta, final.history, final.evals, report, tasks)
        if write_video:
            _write_decoded_videos(run, net, meta)
        # the counts as fitted (D-NeRV's coded key-frames are only known once training started)
        meta = {**meta, "status": "complete", "train_seconds": final.elapsed, "psnr": report.psnr,
                "ms_ssim": report.ms_ssim, "parameters": asdict(net.parameter_counts())}
        run.write_meta(meta)
        fitted.meta = meta
        run.remove_cache()
        return fitted
    finally:
        shutdown_distributed(dist)


def _write_decoded_videos(run: Run, net: Representation, meta: dict[str, Any]) -> None:
    """decoded.mp4, or for a collection decoded/<name>.mp4 per video (each at its own frame rate)."""
    videos = meta.get("videos")
    if not videos:
        write_decoded(net, run.decoded_video, fps=float(meta.get("fps", 25.0)), lossless=False)
        return
    for video, (start, count) in zip(videos, net.geometry.spans()):
        write_decoded(net, run.decoded_folder / f"{video['name']}.mp4", fps=float(video["fps"]), lossless=False,
                      indices=list(range(start, start + count)))


# -- the run folder while it is being created -------------------------------------------------------------
def _refuse_occupied(run: Run) -> None:
    if run.has_run():
        raise OutputError(f"{run.path} already holds a run; use --resume to continue it or choose another -o")
    entries = run.foreign_entries()
    if entries:
        shown = ", ".join(entries[:4]) + (f" and {len(entries) - 4} more" if len(entries) > 4 else "")
        raise OutputError(f"output folder {run.path} is not empty (it holds {shown}); a new run needs a new "
                          "or empty folder")


def _claim_new_run(run: Run) -> tuple[FolderLock, bool]:
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


def _discard_unstarted(run: Run, created: bool) -> None:
    """Remove what a fit that failed before writing run.json created (its frame cache, the folder)."""
    import shutil

    if created:
        shutil.rmtree(run.path, ignore_errors=True)
    else:
        run.remove_cache()
        with contextlib.suppress(OSError):
            run.run_file.unlink()  # written, then the first step failed: not a run yet


@contextlib.contextmanager
def _run_lock(run: Run, command: str, enabled: bool = True) -> Iterator[None]:
    """Hold ``run``'s lock (when ``enabled``: rank 0 under torchrun) for a command that changes it."""
    if not enabled:
        yield
        return
    run.read_meta()  # a clear "not a run folder" before creating a lock file in it
    with run.lock(command):
        yield


# -- provenance -------------------------------------------------------------------------------------------
def _git_commit() -> str | None:
    """The commit of the nervkit source tree when it is a git checkout (editable installs), else None."""
    here = Path(__file__).resolve().parent
    if not any((p / ".git").exists() for p in (here, *here.parents)):
        return None
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    if out.returncode != 0 or not commit:
        return None
    return commit + ("+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


#: the command line of the CLI call in progress (``nervkit.cli.main`` sets it); None for API use
_invocation: list[str] | None = None


@contextlib.contextmanager
def invoked_as(argv: list[str]) -> Iterator[None]:
    """Record ``argv`` as the command line of what runs inside (the CLI: ``["nervkit", "fit", …]``)."""
    global _invocation
    previous, _invocation = _invocation, list(argv)
    try:
        yield
    finally:
        _invocation = previous


def _command_line() -> str | None:
    """How the run was started: the CLI's own arguments (``nervkit fit …``), else this process's."""
    if _invocation is not None:
        return shlex.join(_invocation)
    return shlex.join(sys.argv) if sys.argv and sys.argv[0] else None


def provenance(train_cfg: TrainConfig) -> dict[str, Any]:
    """What produced a run: the command line, versions, the git commit of nervkit (when a checkout),
    the device and the thread count."""
    try:
        device = str(resolve_device(train_cfg.device, DistContext.from_env().local_rank))
    except ConfigError:
        device = train_cfg.device
    return {
        "command": _command_line(),
        "nervkit": version(),
        "git_commit": _git_commit(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": platform.node(),
        "device": device,
        "threads": train_cfg.threads or torch.get_num_threads(),
        "precision": train_cfg.precision,
        "compile": train_cfg.compile,
        "world_size": DistContext.from_env().world_size,
        "cwd": os.getcwd(),
    }
