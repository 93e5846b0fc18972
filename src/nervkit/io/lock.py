"""A lock file that one process holds while it changes a folder (a run being fitted or fine-tuned).

The lock is a small JSON file created with ``O_CREAT | O_EXCL`` (atomic on local file systems), holding
the owner's PID, host, start time and command. A second process finds it and is refused with a message
naming the owner. A lock left by a process that no longer runs (SIGKILL, a crash, a reboot) is stale:
it is recognised on the same host by a dead PID, or a PID reused by a process that started later,
and replaced silently.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import NervkitError, output_error

_INCOMPLETE_GRACE_S = 10.0  # a lock file without content: being written, or left by a crash


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused PID apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int, ticks: int | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    current = _start_ticks(pid)
    return ticks is None or current is None or current == ticks


def _owner(path: Path) -> dict[str, Any] | None:
    """The lock's content, or None if it has none (yet)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("pid"), int) else None


def _is_stale(path: Path) -> bool:
    owner = _owner(path)
    if owner is None:
        try:
            return time.time() - path.stat().st_mtime > _INCOMPLETE_GRACE_S
        except FileNotFoundError:
            return True
    if owner.get("host") != socket.gethostname():
        return False  # another machine's process: cannot tell
    return not _alive(owner["pid"], owner.get("start_ticks"))


def describe_owner(path: Path) -> str:
    owner = _owner(path) or {}
    parts = [f"process {owner['pid']}" if "pid" in owner else "another process"]
    if owner.get("command"):
        parts.append(f"({owner['command']}")
        parts[-1] += f", started {owner['started']})" if owner.get("started") else ")"
    if owner.get("host") and owner.get("host") != socket.gethostname():
        parts.append(f"on host {owner['host']}")
    return " ".join(parts)


class FolderLock:
    """``with FolderLock(folder / ".lock", "nervkit fit", what="run folder runs/v"):`` — exclusive."""

    def __init__(self, path: str | os.PathLike[str], command: str, *, what: str) -> None:
        self.path = Path(path)
        self.command = command
        self.what = what
        self.held = False

    def acquire(self) -> FolderLock:
        content = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                              "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                              "start_ticks": _start_ticks(os.getpid())})
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not _is_stale(self.path):
                    raise NervkitError(
                        f"{self.what} is in use by {describe_owner(self.path)}; wait for it to finish "
                        f"(or, if no nervkit process uses it, delete {self.path})") from None
                # stale: move it aside under a unique name first, so two recoverers cannot both win
                aside = self.path.with_name(f"{self.path.name}.stale-{os.getpid()}")
                with contextlib.suppress(OSError):
                    os.replace(self.path, aside)
                    aside.unlink()
                continue
            except OSError as exc:
                raise output_error(exc, self.path, "cannot lock") from None
            try:
                os.write(fd, content.encode())
            except OSError as exc:  # e.g. a full disk: no half-written lock is left behind
                os.close(fd)
                with contextlib.suppress(OSError):
                    self.path.unlink()
                raise output_error(exc, self.path, "cannot lock") from None
            os.close(fd)
            self.held = True
            return self
        raise NervkitError(f"{self.what} is in use: cannot take its lock {self.path}")

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        owner = _owner(self.path)
        if owner is not None and owner.get("pid") == os.getpid():
            with contextlib.suppress(OSError):
                self.path.unlink()

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def locked(path: str | os.PathLike[str], command: str, *, what: str) -> Iterator[FolderLock]:
    with FolderLock(path, command, what=what) as lock:
        yield lock
