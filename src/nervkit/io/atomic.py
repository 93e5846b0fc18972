"""Write files and folders so that a reader never sees a partial result, and nothing else is lost.

Everything nervkit writes (videos, frame folders, checkpoints, JSON) goes to a temporary name in the
destination's folder first and is renamed into place only when complete; on any error the temporary
is removed and the destination is left as it was.

Temporaries are named ``.<name>.nervkit-<pid>-<random>.partial<suffix>``. A process killed with
SIGKILL cannot remove its own; the next write to the same destination removes every such sibling
whose process is gone (:func:`sweep_stale_temporaries`), so nothing accumulates.

What may be replaced follows :mod:`nervkit.io.outputs`: a file destination may replace a file (never
a folder); a folder destination (PNG frames) may replace only an empty folder or a frame folder
nervkit wrote (marker file), and then deletes only the files it had written there. OS errors (disk
full, read-only, permissions) become one-line :class:`~nervkit.errors.OutputError`\\ s naming the path.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import NervkitError, output_error
from .outputs import (
    check_file_target,
    check_frame_folder_target,
    is_own_frame_folder,
    remove_own_frames,
    write_frame_marker,
)

_TAG = "nervkit"
_STALE = re.compile(rf"^\.(?P<name>.+)\.{_TAG}-(?P<pid>\d+)-[^.]+\.(partial|old)")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True
    return True


def sweep_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporaries (and replaced-folder backups) of ``path`` left by killed processes.

    Only siblings named by this module for exactly this destination, whose process no longer runs,
    are removed. Returns what was removed.
    """
    final = Path(path)
    removed = []
    try:
        entries = list(os.scandir(final.parent if str(final.parent) else "."))
    except OSError:
        return removed
    for entry in entries:
        match = _STALE.match(entry.name)
        if not match or match["name"] != final.name or _pid_alive(int(match["pid"])):
            continue
        target = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                if entry.name.endswith(".old"):
                    remove_own_frames(target)  # a replaced frame folder: only nervkit's own files
                else:
                    shutil.rmtree(target)
            else:
                target.unlink()
            removed.append(target)
        except OSError:
            pass
    return removed


def _temporary_sibling(path: Path, directory: bool, kind: str = "partial") -> Path:
    prefix = f".{path.name}.{_TAG}-{os.getpid()}-"
    if directory:
        return Path(tempfile.mkdtemp(prefix=prefix, suffix=f".{kind}", dir=path.parent))
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=f".{kind}" + path.suffix, dir=path.parent)
    os.close(fd)
    return Path(name)


def _remove(tmp: Path) -> None:
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _commit_folder(tmp: Path, final: Path) -> None:
    """Move the finished folder ``tmp`` to ``final`` (new, empty, or nervkit's own frame folder)."""
    if not final.exists():
        tmp.rename(final)
        return
    check_frame_folder_target(final)  # again: it may have changed while the frames were written
    if not os.listdir(final):
        os.rename(tmp, final)  # POSIX: replaces an empty folder atomically
        return
    if not is_own_frame_folder(final):  # pragma: no cover - check_frame_folder_target refused it
        raise NervkitError(f"refusing to replace {final}")
    backup = _temporary_sibling(final, True, kind="old")
    backup.rmdir()
    final.rename(backup)
    tmp.rename(final)
    remove_own_frames(backup)  # only the frames and the marker nervkit wrote; anything else stays


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    The temporary keeps ``path``'s suffix so that format detection by extension (ffmpeg muxers)
    still works. An existing destination is replaced only at the very end, and only as
    :mod:`nervkit.io.outputs` allows (a folder destination gets the frame-folder marker). OS errors
    are raised as one-line :class:`~nervkit.errors.OutputError`\\ s.
    """
    final = Path(path)
    if directory:
        check_frame_folder_target(final)
    else:
        check_file_target(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale_temporaries(final)
        tmp = _temporary_sibling(final, directory)
    except OSError as exc:
        raise output_error(exc, final) from None
    try:
        yield tmp
        # mkstemp/mkdtemp create private (0600/0700) entries; give the result the usual permissions
        if tmp.exists():
            os.chmod(tmp, (0o777 if directory else 0o666) & ~_umask())
        if directory:
            write_frame_marker(tmp, sum(1 for n in os.listdir(tmp) if n.endswith(".png")))
            _commit_folder(tmp, final)
        else:
            os.replace(tmp, final)
    except BaseException as exc:
        _remove(tmp)
        if isinstance(exc, OSError):
            raise output_error(exc, final) from None
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (fsync'd before the rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())
