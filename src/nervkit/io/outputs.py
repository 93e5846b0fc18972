"""The output-path policy: what nervkit may write, replace or delete. Every command goes through it.

Rules (the promise: nervkit never destroys anything the user did not ask it to create):

* **An output is never one of the command's inputs**, nor inside a run folder the command reads
  (``decode RUN -o RUN/checkpoint.pt``, ``eval ref.mp4 dist.mp4 -o ref.mp4``, ``-o RUN/``), nor a
  folder that holds an input. Paths are compared after resolving symbolic links, and hard links to
  an input count as the input (:func:`check_output`).
* **A file output** (a video, a ``.nerv`` file, a JSON report) may replace an existing *file* of that
  name — the user named it — but never a folder (``-o existing_dir`` is refused).
* **A folder output** (PNG frames, a run folder, a benchmark folder) is written only to a new folder,
  an empty one, or one that nervkit itself wrote before for the same purpose, recognised by its
  marker file (:data:`FRAME_FOLDER_MARKER` for PNG frames, holding nothing but ``frame_NNNNN.png``
  files). Any other non-empty folder is refused with the names it holds; an existing regular file
  is never turned into a folder. When a marked frame folder is replaced, only the files nervkit wrote
  there are deleted (:func:`remove_own_frames`).
* The current folder (or one that contains it) is never replaced.

Writes themselves are atomic and clean up after killed processes: see :mod:`nervkit.io.atomic`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

from ..errors import OutputError

#: Marker file inside a PNG frame folder written by nervkit (JSON: what wrote it).
FRAME_FOLDER_MARKER = ".nervkit-frames"
#: Name pattern of the frames nervkit writes into such a folder.
FRAME_NAME = re.compile(r"^frame_\d{5,}\.png$")

_LISTED = 4  # names quoted in a "not empty" message


def _real(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.realpath(os.fspath(path)))


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _names(entries: Iterable[str]) -> str:
    names = sorted(entries)
    shown = ", ".join(names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def check_output(
    path: str | os.PathLike[str],
    *,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    read_folders: Iterable[str | os.PathLike[str] | None] = (),
    option: str = "-o",
) -> Path:
    """Refuse an output ``path`` that is (or holds, or lies in) something the command reads.

    ``inputs`` are files or folders the command reads (a video, a ``.nerv`` file, a mask); the output
    may not be one of them (same path or same file through a link), nor a folder containing one.
    ``read_folders`` are folders the command reads from (a run folder): nothing may be written inside
    them. Returns ``path`` as a :class:`Path`. Raises :class:`~nervkit.errors.OutputError`.
    """
    out = _real(path)
    for item in inputs:
        if item is None:
            continue
        src = _real(item)
        if out == src or _same_file(out, src):
            raise OutputError(f"{option} {path} is one of this command's inputs ({item}); it would be "
                              "overwritten — choose another output")
        if _is_within(src, out):
            raise OutputError(f"{option} {path} holds this command's input {item}; choose another output")
    for folder in read_folders:
        if folder is None:
            continue
        if _is_within(out, _real(folder)):
            raise OutputError(f"{option} {path} is inside the run folder {folder} that this command reads; "
                              "write the output elsewhere")
    return Path(path)


def check_file_target(path: str | os.PathLike[str]) -> None:
    """A file output: refuse an existing folder, or a path whose parent is a file."""
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder; give a file name")
    _check_parents(p)


def _check_parents(p: Path) -> None:
    """Refuse a path whose nearest existing parent is a file (it cannot hold anything)."""
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"cannot write {p}: {parent} is a file, not a folder")
            break


def check_not_current_folder(path: str | os.PathLike[str]) -> None:
    """Refuse replacing the current folder or one of its parents (``-o .``, ``-o ./``, ``-o ..``)."""
    try:
        cwd = Path(os.getcwd()).resolve()
    except OSError:
        return
    if _is_within(cwd, _real(path)):
        raise OutputError(f"cannot write into {path}: it is the current folder (or holds it); "
                          "name a new folder such as frames/")


def is_own_frame_folder(folder: Path) -> bool:
    """True for a folder nervkit wrote PNG frames to: its marker and nothing but ``frame_NNNNN.png``."""
    try:
        names = os.listdir(folder)
    except OSError:
        return False
    return FRAME_FOLDER_MARKER in names and all(n == FRAME_FOLDER_MARKER or FRAME_NAME.match(n) for n in names)


def check_frame_folder_target(path: str | os.PathLike[str]) -> None:
    """A PNG frame folder output: a new folder, an empty one, or nervkit's own frame folder."""
    p = Path(path)
    check_not_current_folder(p)
    if p.exists() and not p.is_dir():
        raise OutputError(f"cannot write PNG frames to {path}: it is a file, not a folder (it is left as it is)")
    _check_parents(p)
    if p.is_dir():
        try:
            names = os.listdir(p)
        except OSError as exc:
            raise OutputError(f"cannot write PNG frames to {path}: {exc.strerror or exc}") from None
        if names and not is_own_frame_folder(p):
            # name what nervkit did not write first: that is what would be at stake
            foreign = [n for n in names if n != FRAME_FOLDER_MARKER and not FRAME_NAME.match(n)] \
                if FRAME_FOLDER_MARKER in names else names
            raise OutputError(
                f"output folder {path} is not empty (it holds {_names(foreign)}); nervkit writes PNG frames "
                "only to a new or empty folder, or one it wrote frames to before — choose another -o")


def write_frame_marker(folder: Path, frames: int) -> None:
    """Mark ``folder`` as a PNG frame folder written by nervkit (so that a rerun may replace it)."""
    (folder / FRAME_FOLDER_MARKER).write_text(json.dumps({"written_by": "nervkit", "kind": "png-frames",
                                                          "frames": frames}) + "\n")


def remove_own_frames(folder: Path) -> bool:
    """Delete the frames and the marker nervkit wrote in ``folder``, then the folder if it is empty.

    Anything else in it is kept. Returns True if the folder is gone.
    """
    try:
        names = os.listdir(folder)
    except OSError:
        return False
    for name in names:
        if name == FRAME_FOLDER_MARKER or FRAME_NAME.match(name):
            try:
                (folder / name).unlink()
            except OSError:
                pass
    try:
        folder.rmdir()
    except OSError:
        return False
    return True


def check_folder_target(path: str | os.PathLike[str], *, marker: str, what: str,
                        also_own: Iterable[str] = ()) -> None:
    """A folder nervkit fills with named files (a benchmark folder): new, empty, or already holding
    ``marker`` (or one of ``also_own``, the markers of earlier versions); any other folder is refused."""
    p = Path(path)
    check_not_current_folder(p)
    if p.exists() and not p.is_dir():
        raise OutputError(f"cannot write {what} to {path}: it is a file, not a folder")
    if p.is_dir():
        names = os.listdir(p)
        own = {marker, *also_own}
        if names and not own.intersection(names):
            raise OutputError(f"output folder {path} is not empty (it holds {_names(names)}) and is not a "
                              f"{what} nervkit wrote; choose a new or empty folder")
