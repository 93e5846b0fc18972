"""VMAF of a distorted video against its reference, streamed into ffmpeg's ``libvmaf`` filter.

The frames are given as 8-bit 4:2:0 planes (:func:`nervkit.io.yuv420_planes`: the one BT.601
limited-range conversion nervkit uses, the same planes the Y/U/V PSNRs are measured on) and written, one
frame at a time, as rawvideo ``yuv420p`` to two pipes of one ffmpeg process: the distorted frames on its
stdin, the reference frames on a second pipe (``pipe:N``). Nothing but libvmaf's small JSON log touches
the disk, so a 1080p x 600-frame comparison needs no 3.7 GB temporary per side. Two writer threads
(bounded queues) feed the pipes, so neither side can stall the other. Model: the built-in
``vmaf_v0.6.1``; the pooled value is libvmaf's mean over frames. The first frame's temporal feature is
0 by definition, so identical short clips score a little under 100 (about 99.4 over 4 frames).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from nervkit.errors import InputError, NervkitError
from nervkit.io.ffmpeg import _last_error_line, ffmpeg_exe, has_filter

VMAF_MODEL = "vmaf_v0.6.1"
#: Smallest frame side libvmaf is given (16 fails in libvmaf, 24 works).
VMAF_MIN_SIDE = 24
_END = None


def check_vmaf(height: int, width: int) -> None:
    """NervkitError (one line) if this ffmpeg has no libvmaf or the frames are too small for it."""
    if not has_filter("libvmaf"):
        raise NervkitError("VMAF needs ffmpeg's libvmaf filter, which this ffmpeg lacks")
    if min(height, width) < VMAF_MIN_SIDE:
        raise InputError(f"VMAF needs frames of at least {VMAF_MIN_SIDE} pixels on a side, got {height}x{width} (HxW)")


def _filter_path(path: Path) -> str:
    return "'" + str(path).replace("\\", "/").replace("'", "'\\''").replace(":", "\\:") + "'"


class VmafStream:
    """One ffmpeg libvmaf process fed frame by frame: :meth:`feed` (reference planes, distorted planes)
    for every frame, then :meth:`close` -> (pooled VMAF, per-frame VMAF). :meth:`abort` ends it early."""

    def __init__(self, height: int, width: int, *, fps: float = 25.0, model: str = VMAF_MODEL,
                 threads: int | None = None) -> None:
        check_vmaf(height, width)
        self._frames = 0
        self._folder = tempfile.TemporaryDirectory(prefix="nervkit-vmaf-")
        self._log = Path(self._folder.name) / "vmaf.json"
        self._stderr = open(Path(self._folder.name) / "stderr.txt", "w+b")  # noqa: SIM115 - closed in close()
        n_threads = threads if threads is not None else max(1, min(8, os.cpu_count() or 1))
        ref_read, ref_write = os.pipe()
        raw = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{width}x{height}", "-framerate", f"{fps:g}"]
        graph = (f"[0:v][1:v]libvmaf=model=version={model}:log_fmt=json:n_threads={n_threads}"
                 f":log_path={_filter_path(self._log)}")
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *raw, "-i", "pipe:0",
               *raw, "-i", f"pipe:{ref_read}", "-lavfi", graph, "-f", "null", "-"]
        try:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=self._stderr, pass_fds=(ref_read,))
        except OSError as exc:
            os.close(ref_read)
            os.close(ref_write)
            self._cleanup()
            raise NervkitError(f"measuring VMAF: cannot run ffmpeg: {exc}") from exc
        os.close(ref_read)
        assert self._proc.stdin is not None
        sinks = [self._proc.stdin, os.fdopen(ref_write, "wb")]
        self._queues: list[queue.Queue] = [queue.Queue(maxsize=4) for _ in sinks]
        self._broken = False
        self._threads = [threading.Thread(target=self._pump, args=(q, sink), daemon=True)
                         for q, sink in zip(self._queues, sinks)]
        for thread in self._threads:
            thread.start()

    def _pump(self, q: queue.Queue, sink) -> None:  # type: ignore[no-untyped-def]
        try:
            while (data := q.get()) is not _END:
                if not self._broken:
                    sink.write(data)
        except OSError:  # ffmpeg ended early: keep draining, close() reports its error
            self._broken = True
            while q.get() is not _END:
                pass
        finally:
            try:
                sink.close()
            except OSError:
                pass

    def feed(self, reference: tuple[np.ndarray, ...], distorted: tuple[np.ndarray, ...]) -> None:
        self._queues[0].put(b"".join(np.ascontiguousarray(p).tobytes() for p in distorted))
        self._queues[1].put(b"".join(np.ascontiguousarray(p).tobytes() for p in reference))
        self._frames += 1

    def _finish_feeding(self) -> None:
        for q in self._queues:
            q.put(_END)
        for thread in self._threads:
            thread.join()

    def abort(self) -> None:
        self._broken = True
        self._finish_feeding()
        self._proc.kill()
        self._proc.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        self._stderr.close()
        self._folder.cleanup()

    def close(self) -> tuple[float, list[float]]:
        self._finish_feeding()
        code = self._proc.wait()
        try:
            if code != 0:
                self._stderr.seek(0)
                stderr = self._stderr.read()
                message = _last_error_line(stderr) if stderr.strip() else f"exit status {code}, no message"
                raise NervkitError(f"measuring VMAF failed: ffmpeg: {message}")
            try:
                log = json.loads(self._log.read_text())
                per_frame = [float(frame["metrics"]["vmaf"]) for frame in log["frames"]]
                pooled = float(log["pooled_metrics"]["vmaf"]["mean"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise NervkitError(f"cannot read libvmaf's JSON log: {exc}") from exc
        finally:
            self._cleanup()
        if len(per_frame) != self._frames:
            raise NervkitError(f"libvmaf scored {len(per_frame)} of {self._frames} frames")
        return pooled, per_frame
