"""Decoded clips straight from a fitted representation: :class:`NervVideoDataset` (a neural dataloader).

A ``.nerv`` file of a collection stands in for the video files of a data set (the use the NeRV-family
papers give for action recognition): ``NervVideoDataset("ucf.nerv", clip_length=8)`` is a
``torch.utils.data.Dataset`` whose items are clips of T consecutive decoded frames of one video, for a
standard ``DataLoader`` (batching, shuffling, worker processes) on the CPU or a GPU. A single-video file
is a collection of one video.

**The dependency is inverted.** The data layer sits below the compressor and the renderer, so this module
never imports them. It reads a *clip source* (:class:`ClipSource`: the videos and ``decode(indices)``) that
an *opener* registered for the file's suffix makes (:func:`register_opener`). An opener may also return a
*model file* (:class:`ModelFile`: ``videos`` as dicts and ``build_model()`` returning a module with
``decode_frames``), which :class:`ModelFileSource` adapts: the ``.nerv`` opener, registered by
:mod:`nervkit.compress.model_codec` when it is imported, is its ``read_nerv``; that module is imported by
name (:data:`BUILTIN_OPENERS`) the first time a ``.nerv`` file is opened, so no import of the compressor
is needed first (``import nervkit`` is lazy and imports none).

**Clips.** Video v of L frames gives the clips starting at 0, s, 2s, … (s = ``stride``, default T). A clip
is *whole* when it ends inside the video; the first clip that would run past the end is *partial*, and
``partial`` says what becomes of it: ``"pad"`` (the default) keeps it and repeats the video's last frame
up to T frames, ``"drop"`` leaves it out. Every item holds ``valid``, the number of real frames (T for a
whole clip), so padded slots can be masked. Padding is the default because it loses nothing: every frame
of every video is in some clip and a video shorter than T still gives one, which a classifier over a
data set needs (dropping would silently remove short videos and the tails of long ones), while every
item keeps the shape (T, 3, H, W) that batching needs; it is also how the clip-based methods of
nervkit (D-NeRV) fill their last clip.

**Processes.** The model is never pickled: the dataset pickles as its path, its options and its clip
table, and each process builds its own model the first time it decodes (once per worker process, kept
for the worker's life). Decoding is deterministic: an item is always decoded the same way (its own
frames, in chunks of :data:`DECODE_CHUNK` aligned to the clip's start, with ``threads`` CPU threads), so
the same item is the same tensor in the main process and in any worker on the same kind of device. The
thread count matters because a convolution's or a matrix product's float sums are split differently
over a different number of threads (the last bit changes); ``threads=1`` (the default) is what a
DataLoader worker runs with anyway, and the main process (``num_workers=0``) then decodes one item with
one thread too, setting torch's thread count back afterwards. ``threads=None`` keeps torch's own
setting: faster with ``num_workers=0`` on several cores, but an item may then differ in the last bit
from the same item decoded by a worker. ``device="cuda"`` decodes on
the GPU: use ``num_workers=0`` (the GPU is the parallelism) or worker processes started with
``multiprocessing_context="spawn"``; a worker started by ``fork`` (Linux's default) after the parent
process used CUDA cannot use CUDA, and the dataset says so in a one-line ConfigError instead of CUDA's
own error.
"""

from __future__ import annotations

import importlib
import numbers
import operator
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch.utils.data import Dataset

from ..errors import ConfigError, InputError
from ..io.convert import to_uint8

#: frames decoded at once inside one item (the renderer's batch): bounds the decode memory of long clips
DECODE_CHUNK = 8
#: what ``partial`` accepts
PARTIAL = ("pad", "drop")


@dataclass(frozen=True)
class VideoEntry:
    """One video of a clip source: its name, its first frame in the source's frame sequence, its frame
    count and frame rate."""

    name: str
    first_frame: int
    frames: int
    fps: float


@dataclass(frozen=True)
class Clip:
    """One item of the dataset: video ``video_index``, frames ``start`` … ``start + valid − 1`` of it
    (``valid`` < the clip length: a padded last clip)."""

    video_index: int
    start: int
    valid: int


@runtime_checkable
class ClipSource(Protocol):
    """What the dataset reads: the videos, and frames decoded by their index in the whole frame sequence
    (the videos one after the other)."""

    videos: Sequence[VideoEntry]

    def decode(self, indices: Sequence[int]) -> torch.Tensor:
        """Frames ``indices`` as (n, 3, H, W) float in [0, 1]."""
        ...


@runtime_checkable
class ModelFile(Protocol):
    """A stored model an opener may return instead of a :class:`ClipSource` (a parsed ``.nerv`` file):
    ``videos`` as dicts (``name``, ``first_frame``, ``frames``, ``fps``) and ``build_model()``, a module
    with ``decode_frames(indices)`` (float in [0, 1], at the true frame size) and ``to(device)``."""

    @property
    def videos(self) -> Sequence[dict[str, Any]]: ...

    def build_model(self) -> Any: ...


Opener = Callable[[Path], "ClipSource | ModelFile"]
_OPENERS: dict[str, Opener] = {}
#: suffix -> the nervkit module whose import registers its opener (imported on first use, by name: the
#: data layer does not depend on the compressor)
BUILTIN_OPENERS = {".nerv": "nervkit.compress.model_codec"}


def register_opener(suffix: str, opener: Opener) -> None:
    """Make ``opener(path)`` the reader of files ending in ``suffix`` (``".nerv"``; case-insensitive); a
    later registration of the same suffix replaces the earlier one. It returns a :class:`ClipSource` or a
    :class:`ModelFile` and raises a NervkitError (one line) for a file it cannot read."""
    if not isinstance(suffix, str) or not suffix.startswith(".") or len(suffix) < 2:
        raise ValueError(f"a file suffix such as '.nerv' is needed, got {suffix!r}")
    if not callable(opener):
        raise TypeError(f"the opener of {suffix} must be callable, got {type(opener).__name__}")
    _OPENERS[suffix.lower()] = opener


def registered_suffixes() -> tuple[str, ...]:
    """The file suffixes an opener is registered for (or built in: :data:`BUILTIN_OPENERS`)."""
    return tuple(sorted(set(_OPENERS) | set(BUILTIN_OPENERS)))


def _opener(suffix: str) -> Opener | None:
    """The opener of ``suffix`` (lower case), importing its built-in module the first time."""
    if suffix not in _OPENERS and suffix in BUILTIN_OPENERS:
        importlib.import_module(BUILTIN_OPENERS[suffix])
    return _OPENERS.get(suffix)


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch.device (cpu, cuda, cuda:N); a ConfigError for an unknown one or a CUDA device
    on a machine without one."""
    if not isinstance(device, (str, torch.device)):
        raise ConfigError(f"device must be a string such as 'cpu' or 'cuda', got {device!r}")
    try:
        target = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"device: unknown device {device!r} (use cpu, cuda or cuda:N)") from None
    if target.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device cuda was requested but no CUDA device is available")
        if target.index is not None and target.index >= torch.cuda.device_count():
            raise ConfigError(f"device {target}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif target.type != "cpu":
        raise ConfigError(f"device {target} is not supported here: use cpu or cuda")
    return target


class ModelFileSource:
    """A :class:`ClipSource` over a :class:`ModelFile`: the model is built on ``device`` the first time
    frames are decoded (then the parsed file is let go: the model holds its tensors)."""

    def __init__(self, file: ModelFile, device: torch.device) -> None:
        self.videos = tuple(_entry(v) for v in file.videos)
        self.device = device
        self._file: ModelFile | None = file
        self._model: Any = None

    @property
    def built(self) -> bool:
        return self._model is not None

    def model(self) -> Any:
        if self._model is None:
            if self.device.type == "cuda" and torch.cuda._is_in_bad_fork():
                raise _fork_error()
            assert self._file is not None
            model = self._file.build_model()
            try:
                self._model = model.to(self.device)
            except RuntimeError as exc:
                if "fork" in str(exc):
                    raise _fork_error() from None
                raise
            self._file = None
        return self._model

    def decode(self, indices: Sequence[int]) -> torch.Tensor:
        return self.model().decode_frames(list(indices))


def _fork_error() -> ConfigError:
    return ConfigError("device cuda in a DataLoader worker started by fork: CUDA cannot be used there; use "
                       "num_workers=0 or DataLoader(..., multiprocessing_context='spawn')")


def _entry(video: Any) -> VideoEntry:
    if isinstance(video, VideoEntry):
        return video
    return VideoEntry(str(video["name"]), int(video["first_frame"]), int(video["frames"]), float(video["fps"]))


def open_clip_source(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> ClipSource:
    """The :class:`ClipSource` of ``path`` from the opener registered for its suffix: an InputError for a
    missing file or a file type without an opener; the opener's own one-line error for a bad file."""
    p = Path(path)
    target = check_device(device)
    opener = _opener(p.suffix.lower())
    if opener is None:
        known = ", ".join(registered_suffixes()) or "none"
        raise InputError(f"{p}: no clip reader for {p.suffix or 'files without a suffix'} files "
                         f"(readers: {known})")
    if not p.exists():
        raise InputError(f"no such file: {p}")
    if not p.is_file():
        raise InputError(f"{p} is not a file")
    opened = opener(p)
    if isinstance(opened, ClipSource):
        return opened
    if isinstance(opened, ModelFile):
        return ModelFileSource(opened, target)
    raise TypeError(f"the opener of {p.suffix} files returned a {type(opened).__name__}, "
                    "not a ClipSource or a ModelFile")


def clip_table(videos: Sequence[VideoEntry], clip_length: int, stride: int, partial: str) -> tuple[Clip, ...]:
    """The clips of ``videos``, video after video (module docstring: whole clips, then the partial one
    padded or dropped)."""
    clips = []
    for v, video in enumerate(videos):
        for start in range(0, video.frames, stride):
            valid = min(clip_length, video.frames - start)
            if valid < clip_length:
                if partial == "pad":
                    clips.append(Clip(v, start, valid))
                break
            clips.append(Clip(v, start, valid))
    return tuple(clips)


class NervVideoDataset(Dataset):
    """Clips of decoded frames from a ``.nerv`` file (or any file with a registered opener).

    ``clip_length`` frames per clip (T), consecutive clips ``stride`` frames apart (default T: no
    overlap), ``partial`` ``"pad"`` or ``"drop"`` for a video's last, shorter clip (module docstring),
    ``dtype`` of the frames (a float type: values in [0, 1]; ``torch.uint8``: 0…255, rounded as nervkit's
    writers round), ``device`` where the model decodes and the frames are returned, ``threads`` the CPU
    threads that decode one item (1: the same tensor in every process; None: torch's setting).

    Item ``i`` (``len()`` = the number of clips) is a dict: ``frames`` (T, 3, H, W), ``video`` (the name),
    ``video_index``, ``start`` (the clip's first frame inside its video) and ``valid`` (its real frames;
    T unless padded). ``videos`` lists the videos, ``clips`` the clips and ``video_clips(v)`` the item
    numbers of one video (for ``torch.utils.data.Subset``).
    """

    def __init__(self, path: str | os.PathLike[str], clip_length: int = 8, *, stride: int | None = None,
                 partial: str = "pad", dtype: torch.dtype = torch.float32,
                 device: str | torch.device = "cpu", threads: int | None = 1) -> None:
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise ConfigError(f"path must be a file path, got {path!r}")
        self.clip_length = _positive("clip_length", clip_length)
        self.stride = self.clip_length if stride is None else _positive("stride", stride)
        if not isinstance(partial, str) or partial not in PARTIAL:
            raise ConfigError(f"partial must be one of {', '.join(PARTIAL)}, got {partial!r}")
        self.partial = partial
        if not isinstance(dtype, torch.dtype) or not (dtype.is_floating_point or dtype == torch.uint8):
            raise ConfigError(f"dtype must be a float dtype or torch.uint8, got {dtype!r}")
        self.dtype = dtype
        self.device = check_device(device)
        self.threads = None if threads is None else _positive("threads", threads)
        self.path = Path(os.fspath(path)).absolute()
        source = open_clip_source(self.path, self.device)
        self.videos: tuple[VideoEntry, ...] = tuple(_entry(v) for v in source.videos)
        self.clips = clip_table(self.videos, self.clip_length, self.stride, self.partial)
        if not self.clips:
            longest = max(v.frames for v in self.videos)
            raise ConfigError(f"{self.path.name}: no clip of {self.clip_length} frames: the longest of its "
                              f"{len(self.videos)} video(s) has {longest} frames (use partial='pad' or a shorter "
                              "clip_length)")
        self._source: ClipSource | None = source
        self._pid = os.getpid()

    # -- pickling: the path and the options, never the model ---------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_source"], state["_pid"] = None, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def source(self) -> ClipSource:
        """This process's clip source: opened (its model built on first decode) once per process; a copy
        of the dataset in another process (a DataLoader worker, forked or spawned) opens its own."""
        if self._source is None or self._pid != os.getpid():
            source = open_clip_source(self.path, self.device)
            if tuple(_entry(v) for v in source.videos) != self.videos:
                raise InputError(f"{self.path} changed since the dataset was made: its videos differ")
            self._source, self._pid = source, os.getpid()
        return self._source

    # -- the Dataset protocol ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, Any]:
        clip = self.clips[operator.index(index)]  # IndexError past the end, as a Dataset should
        video = self.videos[clip.video_index]
        first = video.first_frame + clip.start
        source = self.source()
        with _intra_op_threads(self.threads if self.device.type == "cpu" else None):
            chunks = [source.decode(range(a, min(a + DECODE_CHUNK, first + clip.valid)))
                      for a in range(first, first + clip.valid, DECODE_CHUNK)]
        frames = torch.cat(chunks) if len(chunks) > 1 else chunks[0]
        if clip.valid < self.clip_length:
            frames = torch.cat([frames, frames[-1:].expand(self.clip_length - clip.valid, *frames.shape[1:])])
        frames = frames.to(self.device)
        frames = to_uint8(frames) if self.dtype == torch.uint8 else frames.to(self.dtype)
        return {"frames": frames, "video": video.name, "video_index": clip.video_index, "start": clip.start,
                "valid": clip.valid}

    # -- selection ---------------------------------------------------------------------------------------
    def video_index(self, video: str | int) -> int:
        """The index of ``video`` (its name, or its index as an int or a string of digits)."""
        names = [v.name for v in self.videos]
        if isinstance(video, str) and video in names:
            return names.index(video)
        if (isinstance(video, int) and not isinstance(video, bool)) or (isinstance(video, str) and video.isdigit()):
            if 0 <= int(video) < len(self.videos):
                return int(video)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise ConfigError(f"no video {video!r}: {self.path.name} holds {len(names)} (0..{len(names) - 1}: {shown})")

    def video_clips(self, video: str | int) -> list[int]:
        """The item numbers of the clips of ``video`` (a name or an index), in order (empty when
        ``partial="drop"`` left it none)."""
        v = self.video_index(video)
        return [i for i, clip in enumerate(self.clips) if clip.video_index == v]

    @property
    def num_frames(self) -> int:
        """Frames of all the videos (the source's frame sequence)."""
        return sum(v.frames for v in self.videos)

    def __repr__(self) -> str:
        return (f"NervVideoDataset({str(self.path)!r}, clip_length={self.clip_length}, stride={self.stride}, "
                f"partial={self.partial!r}, dtype={self.dtype}, device={str(self.device)!r}, threads={self.threads}: "
                f"{len(self.videos)} videos, {len(self.clips)} clips)")


@contextmanager
def _intra_op_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to ``threads`` (None: unchanged) inside the block, then restored."""
    before = torch.get_num_threads()
    if threads is None or threads == before:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _positive(name: str, value: object) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, got {value}")
    return int(value)


__all__ = [
    "DECODE_CHUNK",
    "Clip",
    "ClipSource",
    "ModelFile",
    "ModelFileSource",
    "NervVideoDataset",
    "VideoEntry",
    "check_device",
    "clip_table",
    "open_clip_source",
    "register_opener",
    "registered_suffixes",
]
