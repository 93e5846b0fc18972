"""Decoding a model to frames and files: the one batched decode loop.

Every command that turns a representation into pictures goes through :func:`render_batches` (frames
in bounded batches) and :func:`render_to_file` (those batches into a video or a PNG folder):
``decode``, ``decompress`` (also ``--scale``), ``interpolate`` (fractional positions), ``inpaint
-o``, the run's ``decoded.mp4`` and ``FittedRun.iter_decoded``. What a frame is comes from the
:class:`~nervkit.models.Representation` contract only: integer indices (``decode_frames``), an output
scale (``decode_frames_scaled``) or fractional positions (``decode_frames_at``).

:func:`check_video_output` holds every check on a decoded-video output that can run before any work
(the output policy of :mod:`nervkit.io.outputs` and the writer's options).

``precision`` (``bf16``/``fp16``, :mod:`nervkit.precision`) decodes under that autocast and casts the
frames back to float32; like fp32 it is deterministic: the same model on the same device decodes to the
same frames every time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from . import arguments
from .errors import ConfigError
from .io import FrameRange, VideoWriter
from .io.outputs import check_file_target, check_frame_folder_target, check_output
from .io.writer import is_folder_output
from .models import Representation
from .precision import autocast, check_precision

#: frames decoded at once: bounds the memory of every decode loop
BATCH_FRAMES = 8


def render_batches(model: Representation, *, indices: Sequence[int] | None = None,
                   positions: torch.Tensor | None = None, scale: float = 1.0,
                   batch_size: int = BATCH_FRAMES, precision: str = "fp32") -> Iterator[torch.Tensor]:
    """Decoded frames of ``model`` in batches (n, 3, H, W) float in [0, 1], on the model's device.

    ``indices`` (default: every frame) at the fitted size, or rendered at ``scale`` × that size; or
    ``positions``, fractional frame positions in [0, N − 1] (interpolation). ``precision``: the
    arithmetic of decoding (fp32, or autocast in bf16/fp16; the frames come back as float32).
    """
    device = next(model.parameters(), torch.empty(0)).device
    check_precision(precision, device)
    for what in _batches(model, indices, positions, batch_size):
        with torch.no_grad(), autocast(precision, device):
            if isinstance(what, torch.Tensor):
                frames = model.decode_frames_at(what)
            else:
                frames = model.decode_frames(what) if scale == 1 else model.decode_frames_scaled(what, scale)
        yield frames.float()


def _batches(model: Representation, indices: Sequence[int] | None, positions: torch.Tensor | None,
             batch_size: int) -> Iterator[list[int] | torch.Tensor]:
    """The batches of :func:`render_batches`: lists of frame indices, or tensors of fractional positions."""
    if positions is not None:
        for start in range(0, len(positions), batch_size):
            yield positions[start : start + batch_size]
        return
    idx = list(range(model.geometry.num_frames)) if indices is None else list(indices)
    for start in range(0, len(idx), batch_size):
        yield idx[start : start + batch_size]


def render_to_file(model: Representation, output: str | os.PathLike[str], *, fps: float, lossless: bool = False,
                   crf: int = 12, **what: Any) -> Path:
    """Decode ``model`` (``what``: :func:`render_batches`' ``indices``/``positions``/``scale``) into a
    video file or a PNG folder, atomically (:class:`~nervkit.io.VideoWriter`)."""
    with VideoWriter(output, fps=fps, lossless=lossless, crf=crf) as writer:
        for frames in render_batches(model, **what):
            writer.write(frames.cpu())
    return Path(output)


def write_decoded(model: Representation, output: str | os.PathLike[str], *, fps: float, lossless: bool,
                  indices: list[int] | None = None, crf: int = 12, batch_size: int = BATCH_FRAMES,
                  scale: float = 1.0, precision: str = "fp32") -> Path:
    """Decode ``indices`` (default: all frames) of ``model`` into a video file or PNG folder
    (``scale`` ≠ 1: rendered at scale × the fitted size, :meth:`Representation.decode_scaled`;
    ``precision``: fp32, or autocast in bf16/fp16)."""
    return render_to_file(model, output, fps=fps, lossless=lossless, crf=crf, indices=indices, scale=scale,
                          batch_size=batch_size, precision=precision)


def select_frames(videos: Sequence[dict[str, Any]], num_frames: int, *, video: str | int | None = None,
                  frames: FrameRange | None = None) -> tuple[list[int] | None, dict[str, Any] | None]:
    """The frame indices to decode (None: every frame) and the chosen video's entry (None: no choice).

    ``videos``: the collection's videos in order (``name``, ``first_frame``, ``frames``, ``fps``); ``video``
    a name or an index (``--video NAME|INDEX``); ``frames`` a range inside that video, or of the whole
    sequence when no video is chosen. Only the chosen frames are decoded: one video (or one clip of
    it) without the others."""
    if video is None:
        return (list(frames.resolve(num_frames)) if frames else None), None
    chosen = None
    if isinstance(video, int) or (isinstance(video, str) and video.isdigit()):
        index = int(video)
        chosen = videos[index] if 0 <= index < len(videos) else None
    if chosen is None:
        chosen = next((v for v in videos if v["name"] == video), None)
    if chosen is None:
        names = ", ".join(v["name"] for v in videos[:5]) + (f" and {len(videos) - 5} more" if len(videos) > 5 else "")
        raise ConfigError(f"--video {video}: no such video; this one holds {len(videos)} "
                          f"(0..{len(videos) - 1}: {names})")
    first, count = chosen["first_frame"], chosen["frames"]
    local = frames.resolve(count, source=chosen["name"]) if frames else range(count)
    return [first + i for i in local], chosen


def check_video_output(output: str | os.PathLike[str], *, inputs: Sequence[Any] = (),
                       read_folders: Sequence[Any] = (), lossless: bool = False, crf: int = 12) -> Path:
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
