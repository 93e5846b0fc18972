"""Decoding a model to frames and files: the one batched decode loop.

Every command that turns a representation into pictures goes through :func:`render_batches` (frames
in bounded batches) and :func:`render_to_file` (those batches into a video or a PNG folder):
``decode``, ``decompress`` (also ``--scale``), ``interpolate`` (fractional positions), ``inpaint
-o``, the run's ``decoded.mp4`` and ``FittedRun.iter_decoded``. What a frame is comes from the
:class:`~nervkit.models.Representation` contract only: integer indices (``decode_frames``), an output
scale (``decode_frames_scaled``) or fractional positions (``decode_frames_at``).

:func:`check_video_output` holds every check on a decoded-video output that can run before any work
(the output policy of :mod:`nervkit.io.outputs` and the writer's options).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from . import arguments
from .io import VideoWriter
from .io.outputs import check_file_target, check_frame_folder_target, check_output
from .io.writer import is_folder_output
from .models import Representation

#: frames decoded at once: bounds the memory of every decode loop
BATCH_FRAMES = 8


def render_batches(model: Representation, *, indices: Sequence[int] | None = None,
                   positions: torch.Tensor | None = None, scale: float = 1.0,
                   batch_size: int = BATCH_FRAMES) -> Iterator[torch.Tensor]:
    """Decoded frames of ``model`` in batches (n, 3, H, W) float in [0, 1], on the model's device.

    ``indices`` (default: every frame) at the fitted size, or rendered at ``scale`` × that size; or
    ``positions``, fractional frame positions in [0, N − 1] (interpolation).
    """
    if positions is not None:
        for start in range(0, len(positions), batch_size):
            yield model.decode_frames_at(positions[start : start + batch_size])
        return
    idx = list(range(model.geometry.num_frames)) if indices is None else list(indices)
    for start in range(0, len(idx), batch_size):
        chunk = idx[start : start + batch_size]
        yield model.decode_frames(chunk) if scale == 1 else model.decode_frames_scaled(chunk, scale)


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
                  scale: float = 1.0) -> Path:
    """Decode ``indices`` (default: all frames) of ``model`` into a video file or PNG folder
    (``scale`` ≠ 1: rendered at scale × the fitted size, :meth:`Representation.decode_scaled`)."""
    return render_to_file(model, output, fps=fps, lossless=lossless, crf=crf, indices=indices, scale=scale,
                          batch_size=batch_size)


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
