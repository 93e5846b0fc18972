"""The Python API, mirroring the CLI: thin functions over :mod:`nervkit.fitting` (fit, resume),
:mod:`nervkit.runs` (a run folder and its fitted model), :mod:`nervkit.render` (decoding to files) and
:mod:`nervkit.metrics`. Every argument is checked (:mod:`nervkit.arguments`): bad values raise
:class:`~nervkit.errors.NervkitError`, never a bare TypeError, and nothing is coerced silently.

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

import os
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from . import arguments
from .data.collection import VideoSource, find_videos, is_collection
from .errors import ConfigError
from .fitting import FitRequest, resume_run, start_run, train_config, version
from .io import FrameRange
from .io.atomic import write_bytes_atomic, write_json_atomic
from .io.outputs import check_output
from .metrics import QualityReport, evaluate_videos
from .models import get_method
from .models.sizing import parse_bpp_budget, parse_param_count
from .precision import check_precision
from .render import check_video_output, select_frames, write_decoded
from .runs import DataOptions, FittedRun, Run
from .tasks import TaskData, TaskOptions
from .train import TrainConfig, resolve_device

__all__ = ["DataOptions", "FittedRun", "check_video_output", "decode", "evaluate", "fit", "info", "inpaint",
           "interpolate", "load", "sample_video", "task_data", "write_decoded", "write_report"]


def sample_video() -> Path:
    """Path of the bundled Big Buck Bunny clip (1280×720, 132 frames; CC-BY 3.0, Blender Foundation)."""
    return Path(str(resources.files("nervkit") / "assets" / "bigbuckbunny.mp4"))


def sample_nerv() -> Path:
    """Path of the bundled ``.nerv`` sample: a 40 k-parameter NeRV of 16 Bunny frames at 90×160 (assets/README.md)."""
    return Path(str(resources.files("nervkit") / "assets" / "sample.nerv"))


def fit(
    video: str | os.PathLike[str] | list[str | os.PathLike[str]] | None = None,
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
    list_file: str | os.PathLike[str] | None = None,
    tile: str | tuple[int, int] | None = None,
    segment_frames: int | None = None,
    **train_overrides: Any,
) -> FittedRun:
    """Fit a representation to ``video`` and write the run folder ``out`` (see :mod:`nervkit.runs`).

    ``video`` is one video (a file or a folder of frames) or a collection — several paths, a folder of
    video files, ``list_file`` (``path [name]`` lines) — fitted as one run, every video brought to one
    size by ``size`` (resize) or ``tile`` (the UVG protocol: cut into tiles), ``segment_frames`` cutting
    long videos (:mod:`nervkit.data.collection`); the run's metrics then hold each video's quality.

    ``train_overrides`` are :class:`~nervkit.train.TrainConfig` fields (``epochs=…, lr=…, loss=…``);
    without ``train`` the method's own recipe (e.g. HNeRV: L2 loss, lr 1e-3, batch 2) fills in the
    fields not given.
    With ``resume=True`` the run in ``out`` continues from its checkpoint with its stored settings.
    ``train_frames``, ``mask``, ``noise`` and ``noise_seed`` choose what is trained on for the
    interpolation, inpainting and denoising tasks (:class:`nervkit.tasks.TaskOptions`, docs/tasks.md);
    the run's metrics then hold the per-task numbers (``FittedRun.tasks``).
    """
    run = Run.at(arguments.path("out", out))
    if resume:
        if video is not None:
            raise ConfigError("--resume continues the run with its stored video; drop the VIDEO argument")
        if train_frames != "all" or mask or noise or noise_seed:
            raise ConfigError("--resume continues a run with its stored data options; drop --train-frames, "
                              "--mask, --noise and --noise-seed")
        return resume_run(run, model=model, progress=progress, write_video=write_video,
                          memory_budget=memory_budget, train_overrides=train_overrides)
    inputs = [] if video is None else [video] if isinstance(video, (str, os.PathLike)) else list(video)
    if not inputs and list_file is None:
        raise ConfigError("no input video given")
    # a collection's videos may come named: (path, name) pairs (a run.json read by fit -c)
    named = [VideoSource(arguments.path("video", v[0]), arguments.text("video name", v[1]))
             for v in inputs if isinstance(v, (tuple, list))]
    inputs = [arguments.path("video", v) for v in inputs if not isinstance(v, (tuple, list))]
    tile_hw = arguments.size("--tile", tile)
    if segment_frames is not None:
        segment_frames = arguments.integer("--segment-frames", segment_frames, low=1)
    arguments.text("train_frames", train_frames)
    tasks = TaskOptions(train_frames, mask, noise, arguments.integer("--noise-seed", noise_seed, low=0)).validate()
    spec = get_method("nerv" if model is None else arguments.text("model", model))
    if train is not None and not isinstance(train, TrainConfig):
        raise ConfigError(f"train must be a nervkit.TrainConfig, got {type(train).__name__}")
    if model_options is not None and not isinstance(model_options, dict):
        raise ConfigError(f"model_options must be a dict of architecture options, got {type(model_options).__name__}")
    train_cfg = train_config(train, train_overrides, spec.train_defaults)
    size_hw, raw_hw = arguments.size("--size", size), arguments.size("--raw-size", raw_size)
    frame_range = arguments.frame_range("--frames", frames)
    fps = arguments.number("--fps", raw_fps, low=0, low_open=True, high=1000)
    if named or is_collection(inputs, list_file, tile_hw, segment_frames):
        # missing files, empty folders: before anything is written
        sources = named + (find_videos(inputs, list_file) if inputs or list_file else [])
        data = DataOptions(source=None, frames=str(frame_range) if frame_range else None, size=size_hw,
                           raw_size=raw_hw, raw_fps=fps, tasks=tasks, videos=tuple((v.path, v.name) for v in sources),
                           tile=tile_hw, segment_frames=segment_frames)
    else:
        if Path(inputs[0]).suffix.lower() == ".yuv" and raw_hw is None and size_hw is not None:
            size_hw, raw_hw = None, size_hw  # a raw .yuv has no header: --size gives its frame size
        data = DataOptions(source=str(Path(inputs[0])), frames=str(frame_range) if frame_range else None,
                           size=size_hw, raw_size=raw_hw, raw_fps=fps, tasks=tasks)
    bpp = parse_bpp_budget(params)
    budget = parse_param_count(params) if params is not None and bpp is None else None
    # check the model options before decoding the video: cheap errors first
    spec.unresolved_config(preset=preset, params=budget if bpp is None else 1, overrides=model_options)
    request = FitRequest(data, spec, train_cfg, preset=preset, budget=budget, bpp=bpp, model_options=model_options,
                         epochs_set=train is not None or "epochs" in train_overrides)
    return start_run(run, request, progress=progress, write_video=write_video, memory_budget=memory_budget)


def load(run_dir: str | os.PathLike[str], device: str | torch.device = "cpu") -> FittedRun:
    """Load a fitted run (the model in eval mode, its settings and history)."""
    return Run.at(arguments.path("run", run_dir)).load(_device(device))


def task_data(fitted: FittedRun, memory_budget: int | None = None) -> TaskData:
    """The training data of a fitted run, rebuilt once from its stored data options (compress, tasks)."""
    return fitted.run_dir.training_data(memory_budget)


def decode(run_dir: str | os.PathLike[str], output: str | os.PathLike[str], *, lossless: bool = False,
           frames: str | FrameRange | None = None, crf: int = 12, device: str = "cpu",
           video: str | int | None = None, precision: str = "fp32") -> Path:
    """Decode a fitted run to a video file (.mp4/.mkv; ``lossless`` → FFV1 in .mkv), an uncompressed 8-bit
    4:2:0 .y4m / raw .yuv (BT.601 limited range, see :mod:`nervkit.io.writer`) or a PNG folder;
    ``video`` (a name or an index) decodes one video of a collection, ``frames`` then counting in it.
    ``precision``: fp32 (the reference), or bf16/fp16 autocast where ``device`` runs it (deterministic
    all the same: the same run on the same device decodes to the same frames)."""
    check_video_output(output, read_folders=[run_dir], lossless=lossless, crf=crf)
    frame_range = arguments.frame_range("--frames", frames)
    precision = arguments.text("--precision", precision)
    check_precision(precision, _device(device))  # a mode the device cannot run: before loading anything
    fitted = load(run_dir, device)
    indices, chosen = select_frames(fitted.run_dir.videos, fitted.model.geometry.num_frames, video=video,
                                    frames=frame_range)
    fps = chosen["fps"] if chosen else fitted.fps
    return write_decoded(fitted.model, output, fps=fps, lossless=lossless, indices=indices, crf=crf,
                         precision=precision)


def interpolate(run: str | os.PathLike[str], factor: int, out: str | os.PathLike[str], *, lossless: bool = False,
                crf: int = 12, device: str = "cpu") -> dict[str, Any]:
    """Synthesise in-between frames: decode ``run`` (a run folder or a ``.nerv`` file) at the fractional
    positions 0, 1/factor, …, N − 1 (``Representation.decode_at``) into ``out`` at fps × factor.

    Returns ``{"file", "frames", "fps", "factor", "source_frames", "method"}``; the output holds
    N + (N − 1)(factor − 1) frames (see :mod:`nervkit.tasks.interpolation`).
    """
    from .compress.model_codec import read_nerv
    from .tasks.interpolation import interpolation_positions, write_interpolated

    path = Path(arguments.path("run", run))
    arguments.integer("--factor", factor)
    if path.is_file():
        check_video_output(out, inputs=[path], lossless=lossless, crf=crf)
        nerv = read_nerv(path)
        interpolation_positions(nerv.geometry.num_frames, factor)  # a bad factor fails before building
        model, fps = nerv.build_model().to(_device(device)), nerv.fps
    else:
        check_video_output(out, read_folders=[path], lossless=lossless, crf=crf)
        fitted = load(path, device)
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
    fitted = load(run, device)
    data = fitted.run_dir.data_options
    if out is not None:
        mask_file = mask if isinstance(mask, str) and Path(mask).exists() else None
        check_video_output(out, inputs=[*data.inputs, mask_file], read_folders=[fitted.run_dir.path],
                           lossless=lossless, crf=crf)
    clean = data.load(None)
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

    ``frames`` (``"A:B"`` or a FrameRange), ``size`` and ``raw_size`` (``"HxW"`` or a pair) as on the CLI;
    also Y/U/V and 6:1:1 YUV PSNR, and VMAF with ``vmaf=True``; ``device`` (cpu, cuda) runs the metrics.
    """
    if kwargs.get("device") is not None:
        kwargs["device"] = _device(kwargs["device"])
    return evaluate_videos(arguments.path("reference", reference), arguments.path("distorted", distorted),
                           frames=arguments.frame_range("--frames", frames), size=arguments.size("--size", size),
                           raw_size=arguments.size("--raw-size", raw_size), **kwargs)


def write_report(path: str | os.PathLike[str], data: dict[str, Any], *, inputs: list[Any]) -> Path:
    """Write a JSON report to ``path`` (a file; never one of ``inputs``), atomically."""
    check_output(path, inputs=inputs)
    write_json_atomic(path, data)
    return Path(path)


def write_csv(path: str | os.PathLike[str], rows: list[list[Any]], *, inputs: list[Any]) -> Path:
    """Write ``rows`` as CSV to ``path`` (a file; never one of ``inputs``), atomically."""
    import csv
    import io as _io

    check_output(path, inputs=inputs)
    text = _io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    write_bytes_atomic(path, text.getvalue().encode())
    return Path(path)


def info(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Model, parameters, frames, size and training history of a run."""
    return Run.at(arguments.path("run", run_dir)).info()


def _device(device: str | torch.device) -> torch.device:
    """``device`` ("cpu", "cuda", "auto", or a torch.device) checked: ConfigError if absent or unknown."""
    if isinstance(device, torch.device):
        return resolve_device(str(device))
    return resolve_device(arguments.text("--device", device))


_version = version  # the CLI's --version
