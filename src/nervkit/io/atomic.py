"""Write files and folders so that a reader never sees a partial result.

Everything nervkit writes (videos, frame folders, checkpoints, JSON) goes to a temporary name in the
destination's folder first and is renamed into place only when complete; on any error the temporary
is removed and the destination is left as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temporary_sibling(path: Path, directory: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}."
    if directory:
        return Path(tempfile.mkdtemp(prefix=prefix, suffix=".partial", dir=path.parent))
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".partial" + path.suffix, dir=path.parent)
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    The temporary keeps ``path``'s suffix so that format detection by extension (ffmpeg muxers)
    still works. An existing destination is replaced only at the very end.
    """
    final = Path(path)
    tmp = _temporary_sibling(final, directory)
    try:
        yield tmp
        # mkstemp/mkdtemp create private (0600/0700) entries; give the result the usual permissions
        if tmp.exists():
            os.chmod(tmp, (0o777 if directory else 0o666) & ~_umask())
        if directory:
            if final.exists():
                backup = _temporary_sibling(final, True)
                backup.rmdir()
                final.rename(backup)
                tmp.rename(final)
                shutil.rmtree(backup, ignore_errors=True)
            else:
                tmp.rename(final)
        else:
            os.replace(tmp, final)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
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
