"""Frames of one video as uint8, in memory or memory-mapped from a cache file.

Training reads random frames every iteration, so the decoded video must be random-access. A short
or small video is held in memory (N×3×H×W uint8, 4× smaller than float); a video that does not fit
the memory budget is decoded once, streaming, into a cache file (``frames.npy``) beside the run and
memory-mapped, so the operating system pages frames in and out and a long 1080p video never sits in
RAM at once.

Before anything is allocated, :func:`load_frames` checks that the frames fit: in memory, or else on
the cache folder's disk and in the address space the process may still map (``ulimit -v``), and
that one frame can be decoded and resized in the memory available. A request that fits nowhere, and
any ``ENOMEM``/``ENOSPC``/``EFBIG``/``EDQUOT`` while creating the cache, is a one-line
:class:`~nervkit.errors.ConfigError` naming the frame count, size and bytes needed and what to do
(a smaller ``--size`` or fewer ``--frames``). The cache file's disk space is reserved when it is
created, so a disk that fills up later cannot kill the process while frames are written.

Training on a GPU puts a copy of the frames on the device when they take less than a quarter of its
free memory (:meth:`FrameStore.on_device`): batches and evaluations then never copy frames from the host.
"""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, InputError
from ..io import FrameRange, iter_frames, probe_video
from ..resources import address_space_headroom, available_memory_bytes, device_free_memory, format_bytes

#: errno values of "the machine cannot hold this" while creating or filling the frame cache.
_NO_ROOM = {
    errno.ENOMEM: "not enough memory (or address space) to map it",
    errno.ENOSPC: "no space left on the device",
    errno.EFBIG: "the file would be too large for the file system or the process's file-size limit",
    errno.EDQUOT: "disk quota exceeded",
}
#: errno values of ``posix_fallocate`` on file systems that cannot reserve space (nothing reserved).
_CANNOT_RESERVE = {errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS, errno.ENODEV}
_ADVICE = "use a smaller --size or fewer --frames"
#: free disk space the frame cache leaves for the run's checkpoints and outputs
_DISK_MARGIN = 512 << 20
#: the share of an accelerator's free memory the training frames may take there (:meth:`FrameStore.on_device`)
DEVICE_SHARE = 0.25


def _free_disk_bytes(folder: Path) -> int | None:
    """Free bytes on ``folder``'s file system for this user, or None when unknown."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _working_bytes(source: tuple[int, int], target: tuple[int, int]) -> int:
    """Rough peak memory to decode one ``source`` frame and resize it to ``target`` (both ``(h, w)``):
    the decoded and RGB frames, Pillow's 4-byte-per-pixel images and the copies of the result."""
    src = source[0] * source[1]
    dst = target[0] * target[1]
    return 8 * src + (10 * dst if target != source else 0)


@dataclass
class FrameStore:
    """uint8 frames (N, 3, H, W) with the source's fps and the source frame index of each."""

    frames: torch.Tensor
    fps: float
    source_indices: list[int] = field(default_factory=list)
    source_size: tuple[int, int] = (0, 0)
    memory_mapped: bool = False
    #: a collection of videos (:mod:`nervkit.data.collection`): each video's frame count, name, frame rate
    #: and source path, in order; empty for a single video
    segments: tuple[int, ...] = ()
    names: tuple[str, ...] = ()
    video_fps: tuple[float, ...] = ()
    video_sources: tuple[str, ...] = ()

    def __len__(self) -> int:
        return self.frames.shape[0]

    @property
    def height(self) -> int:
        return self.frames.shape[2]

    @property
    def width(self) -> int:
        return self.frames.shape[3]

    def get(self, indices: torch.Tensor | list[int]) -> torch.Tensor:
        """Float frames in [0, 1] at ``indices`` (n, 3, H, W), where the frames are (:attr:`device`)."""
        idx = torch.as_tensor(indices, dtype=torch.long, device=self.frames.device)
        return self.frames[idx].to(torch.float32).div_(255.0)

    def neighbours(self, indices: torch.Tensor | list[int]) -> torch.Tensor:
        """The previous and the next frame of each of ``indices``: float (n, 2, 3, H, W) in [0, 1].

        The first frame is its own previous frame and the last its own next one (so their outer
        frame differences are zero); a one-frame video is its own neighbour on both sides. In a
        collection this holds for every video: neighbours never cross a video boundary.
        """
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        first, last = self.video_bounds(idx)
        pairs = torch.stack([torch.maximum(idx - 1, first), torch.minimum(idx + 1, last)], dim=1)
        return self.get(pairs.reshape(-1)).reshape(len(idx), 2, *self.frames.shape[1:])

    def video_bounds(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The first and the last frame of the video that holds each of ``indices`` (a collection's
        videos are separate: a neighbour never crosses into the next video)."""
        counts = torch.tensor(self.segments or (len(self),), dtype=torch.long)
        ends = counts.cumsum(0)
        video = torch.searchsorted(ends, indices, right=True)
        return ends[video] - counts[video], ends[video] - 1

    @property
    def device(self) -> torch.device:
        """Where the frames are (the CPU, unless :meth:`on_device` moved them)."""
        return self.frames.device

    def on_device(self, device: torch.device | str, *, share: float = DEVICE_SHARE) -> FrameStore:
        """This store with its frames on accelerator ``device`` when they take less than ``share`` of its
        free memory (uint8, as stored), so that batches and evaluation read them without host-to-device
        copies; else (and on the CPU) this store itself. The store is not changed: the moved one is a copy
        (``memory_mapped`` False), and :meth:`get` then returns frames on that device."""
        device = torch.device(device)
        if device.type == "cpu" or self.frames.device == device:
            return self
        free = device_free_memory(device)
        if free is None or self.frames.numel() >= share * free:
            return self
        return replace(self, frames=self.frames.to(device), memory_mapped=False)

    @classmethod
    def from_tensor(cls, frames: torch.Tensor, fps: float = 25.0) -> FrameStore:
        """From frames (N, 3, H, W): uint8, or float in [0, 1]."""
        if frames.dtype != torch.uint8:
            frames = (frames.clamp(0, 1) * 255.0).round().to(torch.uint8)
        n, _, h, w = frames.shape
        return cls(frames.contiguous(), fps, list(range(n)), (h, w))


def load_frames(
    path: str | os.PathLike[str],
    *,
    frames: FrameRange | None = None,
    size: tuple[int, int] | None = None,
    raw_size: tuple[int, int] | None = None,
    raw_fps: float = 25.0,
    memory_budget: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> FrameStore:
    """Decode ``path`` (frame range, resize) into a :class:`FrameStore`.

    Frames are kept in memory when they take less than ``memory_budget`` bytes (default: a third
    of the available memory), otherwise streamed into ``cache_dir/frames.npy`` and memory-mapped.
    ``ConfigError`` (one line) when they fit neither in memory nor in the cache (see the module
    docstring); ``InputError`` for bad input, including a truncated file (a ``frames`` range within its
    decodable part is read, see :mod:`nervkit.io.reader`).
    """
    info = probe_video(path, frames=frames, raw_size=raw_size, raw_fps=raw_fps)
    selected = (frames or FrameRange()).resolve(info.num_frames, source=info.path)
    h, w = size if size else (info.height, info.width)
    n = len(selected)
    shape = (n, 3, h, w)
    nbytes = n * 3 * h * w
    what = f"{path}: {n} frames of {h}x{w} need {format_bytes(nbytes)} ({nbytes:,} bytes)"
    memory = available_memory_bytes()
    working = _working_bytes(info.size, (h, w))
    budget = memory_budget if memory_budget is not None else memory // 3
    if nbytes > budget and cache_dir is not None:  # the cache's room first: the likelier limit
        _check_cache_room(Path(cache_dir) / "frames.npy", nbytes, working, budget, what)
    if working > memory:
        raise ConfigError(
            f"{path}: decoding and resizing one {info.height}x{info.width} frame to {h}x{w} needs about "
            f"{format_bytes(working)} of memory but only {format_bytes(memory)} is available; {_ADVICE}"
        )
    array, mapped = create_frame_array(shape, what, budget=budget, cache_dir=cache_dir, working=working)
    target = Path(cache_dir) / "frames.npy" if cache_dir is not None else None
    count = 0
    try:
        for i, frame in enumerate(
            iter_frames(path, frames=frames, size=size, raw_size=raw_size, raw_fps=raw_fps)
        ):
            if i >= n:
                break
            array[i] = frame.transpose(2, 0, 1)
            count += 1
        if count != n:
            raise InputError(f"{path}: expected {n} frames but only {count} could be decoded (truncated?)")
        if mapped:
            array.flush()  # type: ignore[attr-defined]
    except MemoryError as exc:
        _discard(target if mapped else None)
        raise ConfigError(f"{what} and ran out of memory while decoding them; {_ADVICE}") from exc
    except OSError as exc:
        if exc.errno not in _NO_ROOM or not mapped:
            raise
        _discard(target)
        reason = _NO_ROOM[exc.errno]
        raise ConfigError(f"{what}: cannot write the frame cache {target}: {reason}; {_ADVICE}") from exc
    return FrameStore(torch.from_numpy(array), info.fps, list(selected), (info.height, info.width), mapped)


def create_frame_array(shape: tuple[int, int, int, int], what: str, *, budget: int,
                       cache_dir: str | os.PathLike[str] | None, working: int = 0) -> tuple[np.ndarray, bool]:
    """A uint8 array of ``shape`` for decoded frames: in memory when it takes at most ``budget`` bytes,
    else memory-mapped from ``cache_dir/frames.npy`` (its disk space reserved); ``(array, mapped)``.
    ``what`` starts the one-line error when it fits nowhere."""
    nbytes = int(np.prod(shape))
    mapped = nbytes > budget
    target = Path(cache_dir) / "frames.npy" if cache_dir is not None else None
    if mapped:
        if target is None:
            raise InputError(f"{what}, more than the memory budget ({format_bytes(budget)}), and no cache folder "
                             f"was given; {_ADVICE}")
        _check_cache_room(target, nbytes, working, budget, what)
        return _create_cache(target, shape, what), True
    try:
        return np.empty(shape, dtype=np.uint8), False
    except MemoryError as exc:
        raise ConfigError(f"{what}, more than the memory available; {_ADVICE}") from exc


def _check_cache_room(target: Path, nbytes: int, working: int, budget: int, what: str) -> None:
    """``ConfigError`` before anything is allocated if the memory-mapped cache cannot hold ``nbytes``:
    not enough free disk (an old cache file there counts as free; 512 MiB are left for the run's other
    files) or address space (``ulimit -v``)."""
    folder = target.parent
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = _free_disk_bytes(existing)
    if free is not None and target.is_file():
        free += target.stat().st_size
    short = []
    if free is not None and nbytes > free - _DISK_MARGIN:
        short.append(f"the free disk space for the frame cache in {folder} ({format_bytes(free)})")
    headroom = address_space_headroom()
    if headroom is not None and nbytes + working > headroom:
        short.append(f"the address space this process may still map ({format_bytes(headroom)}, ulimit -v)")
    if short:
        raise ConfigError(
            f"{what}, more than the memory budget ({format_bytes(budget)}) and more than "
            f"{' and '.join(short)}; {_ADVICE}"
        )


def _create_cache(target: Path, shape: tuple[int, int, int, int], what: str) -> np.ndarray:
    """The memory-mapped cache file ``target`` of uint8 ``shape``, its disk space reserved;
    ``ConfigError`` (and no file left behind) when the system has no room for it."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        array = np.lib.format.open_memmap(target, mode="w+", dtype=np.uint8, shape=shape)
        _reserve(target)
        return array
    except OSError as exc:
        if exc.errno not in _NO_ROOM:
            raise
        _discard(target)
        reason = _NO_ROOM[exc.errno]
        raise ConfigError(f"{what}: cannot create the frame cache {target}: {reason}; {_ADVICE}") from exc
    except MemoryError as exc:
        _discard(target)
        reason = _NO_ROOM[errno.ENOMEM]
        raise ConfigError(f"{what}: cannot create the frame cache {target}: {reason}; {_ADVICE}") from exc


def _reserve(target: Path) -> None:
    """Allocate ``target``'s blocks now (``OSError(ENOSPC)`` if the disk cannot hold it), so that
    writing frames into the mapping later cannot fail (a full disk would kill the process with SIGBUS)."""
    if not hasattr(os, "posix_fallocate"):  # pragma: no cover - not on Linux
        return
    fd = os.open(target, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as exc:
        if exc.errno not in _CANNOT_RESERVE:
            raise
    finally:
        os.close(fd)


def _discard(target: Path | None) -> None:
    """Delete a cache file after a failure (its blocks are freed once the mapping is dropped)."""
    if target is not None:
        try:
            target.unlink()
        except OSError:
            pass
