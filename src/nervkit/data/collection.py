"""A collection of videos in one run: which videos (:func:`find_videos`), and their frames as one
:class:`~nervkit.data.FrameStore` (:func:`load_collection`).

The inputs of ``nervkit fit A.mp4 B.mkv frames_dir/ …``, of a folder of videos, or of ``--list FILE``
(``path [name]`` per line, ``#`` comments, paths relative to the list's folder) become named videos.
Every video is brought to one frame size: ``--size HxW`` resizes it, or ``--tile HxW`` cuts it the way
the official UVG protocol does (crop the top-left part that is a whole number of tiles, then tiles in
row-major order named ``<video>-01``, ``<video>-02``, …; with ``--size`` too, every tile is then resized). ``--frames A:B[:step]`` selects frames of
every video (UCF101 is sampled at 2 fps) and ``--segment-frames N`` cuts long videos into parts of N
frames (``<video>-s01``, …; the last part keeps the remainder). The store holds the videos one after
the other; ``FrameStore.segments`` has their frame counts and ``FrameStore.names`` their names, so
neighbouring frames never cross from one video to the next.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ConfigError, InputError
from ..io import FrameRange, iter_frames, probe_video
from ..io.frame_folder import IMAGE_SUFFIXES, natural_key
from ..io.resize import resize_frame
from ..resources import available_memory_bytes, format_bytes
from .frame_store import FrameStore, create_frame_array

#: file endings taken as videos when a folder of videos is given
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm", ".avi", ".y4m", ".mpg", ".mpeg", ".m4v", ".ts", ".flv",
                  ".wmv", ".ogv", ".yuv")


@dataclass(frozen=True)
class VideoSource:
    """One input video (a file or a folder of frames) and its name in the collection."""

    path: str
    name: str


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(name if count == 0 else f"{name}-{count + 1}")
    return out


def _folder_entries(folder: Path) -> tuple[list[Path], list[Path]]:
    """(image files, video files) of a folder, hidden entries ignored."""
    try:
        entries = sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=lambda p: natural_key(p.name))
    except OSError as exc:
        raise InputError(f"cannot read folder {folder}: {exc.strerror or exc}") from None
    images = [p for p in entries if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    videos = [p for p in entries if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]
    return images, videos


def _check_frame_folder(folder: Path, where: str) -> None:
    """A folder named as *one* video (a line of a list file) must hold image frames and nothing else
    that could be a video: a folder of videos, a mix of both, or an empty folder is refused."""
    images, videos = _folder_entries(folder)
    if images and videos:
        raise InputError(f"{where} holds both image frames and video files: a line names one video (a video file "
                         "or a folder of frames), not a mix")
    if videos:
        raise InputError(f"{where} is a folder of video files ({len(videos)}), not one video: name each video on "
                         "its own line, or give the folder as an input instead of --list")
    if not images:
        raise InputError(f"{where} is an empty folder: no image frames")


def read_list_file(path: str | os.PathLike[str]) -> list[VideoSource]:
    """The videos of a list file: ``path [name]`` per line, blank lines and ``#`` comments skipped;
    relative paths are relative to the list file's folder. Each line names one video: a video file or a
    folder of frames (a folder of videos, a mix or an empty folder is refused, naming the line)."""
    p = Path(path)
    try:
        lines = p.read_text().splitlines()
    except FileNotFoundError:
        raise InputError(f"--list {p}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--list {p}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    sources = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split(maxsplit=1)
        video = Path(parts[0]) if Path(parts[0]).is_absolute() else p.parent / parts[0]
        if not video.exists():
            raise InputError(f"--list {p} line {number}: no such file or folder: {parts[0]}")
        if video.is_dir():
            _check_frame_folder(video, f"--list {p} line {number}: {parts[0]}")
        sources.append(VideoSource(str(video), parts[1].strip() if len(parts) > 1 else video.stem))
    if not sources:
        raise InputError(f"--list {p} names no video")
    return sources


def find_videos(inputs: list[str | os.PathLike[str]], list_file: str | os.PathLike[str] | None = None
                ) -> list[VideoSource]:
    """The named videos of the inputs (see the module docstring). A folder of images is one video; a
    folder of video files is one video per file; a folder holding both is refused, as is an empty one."""
    sources: list[VideoSource] = []
    for item in inputs:
        path = Path(item)
        if not path.exists():
            raise InputError(f"no such file or folder: {path}")
        if path.is_dir():
            images, videos = _folder_entries(path)
            if images and videos:
                raise InputError(f"{path} holds both image frames and video files: give a folder of frames (one "
                                 "video) or a folder of videos, not a mix")
            if videos:
                sources += [VideoSource(str(v), v.stem) for v in videos]
            elif images:
                sources.append(VideoSource(str(path), path.name))
            else:
                raise InputError(f"{path} is an empty folder: no image frames and no video files")
        else:
            sources.append(VideoSource(str(path), path.stem))
    if list_file is not None:
        sources += read_list_file(list_file)
    if not sources:
        raise InputError("no input videos")
    names = _unique([s.name for s in sources])
    return [VideoSource(s.path, n) for s, n in zip(sources, names)]


def is_collection(inputs: list[str | os.PathLike[str]], list_file: object = None, tile: object = None,
                  segment_frames: object = None) -> bool:
    """True unless the inputs are one video (a file or a folder of frames) read as it is."""
    if list_file is not None or tile is not None or segment_frames is not None or len(inputs) != 1:
        return True
    path = Path(inputs[0])
    return path.is_dir() and bool(_folder_entries(path)[1])


@dataclass(frozen=True)
class _Part:
    """One video of the collection: where its frames come from."""

    source: int  # index into the sources
    name: str
    tile: tuple[int, int] | None  # (row, column) of the tile, or None
    first: int  # first selected frame of the source that belongs to this part (index into the selection)
    count: int


def load_collection(
    sources: list[VideoSource],
    *,
    frames: FrameRange | None = None,
    size: tuple[int, int] | None = None,
    tile: tuple[int, int] | None = None,
    segment_frames: int | None = None,
    raw_size: tuple[int, int] | None = None,
    raw_fps: float = 25.0,
    memory_budget: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> FrameStore:
    """The frames of every video (see the module docstring) in one store, videos one after the other."""
    if segment_frames is not None and segment_frames < 1:
        raise ConfigError(f"--segment-frames must be >= 1, got {segment_frames}")
    infos = [probe_video(s.path, frames=frames, raw_size=raw_size, raw_fps=raw_fps) for s in sources]
    selections = [(frames or FrameRange()).resolve(i.num_frames, source=i.path) for i in infos]
    if tile is not None:
        th, tw = tile
        for source, info in zip(sources, infos):
            if info.height < th or info.width < tw:
                raise ConfigError(f"--tile {th}x{tw} is larger than the {info.height}x{info.width} frames of "
                                  f"{source.path}")
        height, width = size or tile  # tiles are cut at the tile size, then resized to --size if given
    elif size is not None:
        height, width = size
    else:
        sizes = {(i.height, i.width) for i in infos}
        if len(sizes) > 1:
            shown = ", ".join(f"{Path(s.path).name} is {i.height}x{i.width}" for s, i in list(zip(sources, infos))[:3])
            raise ConfigError(f"the videos have different frame sizes ({shown}): give --size HxW (resize) or "
                              "--tile HxW (cut into tiles) to bring them to one size")
        height, width = next(iter(sizes))
    parts: list[_Part] = []
    for k, (source, info, selected) in enumerate(zip(sources, infos, selections)):
        grid = [(r, c) for r in range(info.height // tile[0]) for c in range(info.width // tile[1])] \
            if tile is not None else [None]
        for g, cell in enumerate(grid):
            base = f"{source.name}-{g + 1:02d}" if tile is not None else source.name
            step = segment_frames or len(selected)
            chunks = list(range(0, len(selected), step))
            for j, first in enumerate(chunks):
                name = f"{base}-s{j + 1:02d}" if segment_frames and len(chunks) > 1 else base
                parts.append(_Part(k, name, cell, first, min(step, len(selected) - first)))
    total = sum(p.count for p in parts)
    shape = (total, 3, height, width)
    nbytes = total * 3 * height * width
    what = (f"{len(parts)} videos, {total} frames of {height}x{width} need {format_bytes(nbytes)} "
            f"({nbytes:,} bytes)")
    budget = memory_budget if memory_budget is not None else available_memory_bytes() // 3
    array, mapped = create_frame_array(shape, what, budget=budget, cache_dir=cache_dir)
    offsets, position = {}, 0
    for part in parts:
        offsets[(part.source, part.tile, part.first)] = position
        position += part.count
    source_indices: list[int] = [0] * total
    for k, (source, info, selected) in enumerate(zip(sources, infos, selections)):
        resize = size if tile is None else None
        mine = [p for p in parts if p.source == k]
        for i, frame in enumerate(iter_frames(source.path, frames=frames, size=resize, raw_size=raw_size,
                                              raw_fps=raw_fps)):
            if i >= len(selected):
                break
            chw = frame.transpose(2, 0, 1)
            for part in mine:
                if not part.first <= i < part.first + part.count:
                    continue
                row = offsets[(part.source, part.tile, part.first)] + i - part.first
                if part.tile is None:
                    array[row] = chw
                else:
                    r, c = part.tile
                    th, tw = tile  # type: ignore[misc]
                    cut = frame[r * th:(r + 1) * th, c * tw:(c + 1) * tw]
                    array[row] = (resize_frame(cut, (height, width)) if (th, tw) != (height, width)
                                  else cut).transpose(2, 0, 1)
                source_indices[row] = selected[i]
    if mapped:
        array.flush()  # type: ignore[attr-defined]
    fps = tuple(infos[p.source].fps for p in parts)
    return FrameStore(torch.from_numpy(array), fps[0], source_indices, (infos[0].height, infos[0].width), mapped,
                      segments=tuple(p.count for p in parts), names=tuple(p.name for p in parts), video_fps=fps,
                      video_sources=tuple(sources[p.source].path for p in parts))


__all__ = ["VIDEO_SUFFIXES", "VideoSource", "find_videos", "is_collection", "load_collection", "read_list_file"]
