"""The ffmpeg binary: the classical-codec benchmark (:mod:`nervkit.bench`) and the JPEG/HEVC coding of
latent grids (:mod:`nervkit.compress.latent_codec`) run it.

nervkit uses the static ffmpeg shipped by ``imageio-ffmpeg`` (:func:`imageio_ffmpeg.get_ffmpeg_exe`), so
every machine runs the same encoder builds. :func:`ffmpeg_exe` locates it, :func:`encoders` and
:func:`filters` list what it was built with (asked once, cached), and :func:`run_ffmpeg` runs it with
:mod:`subprocess` (argument list, no shell; stderr captured). A failure is a one-line
:class:`~nervkit.errors.NervkitError` naming what was being done (e.g. the codec) and ffmpeg's last error
line.

The imageio-ffmpeg 0.6 build checked when this was written (ffmpeg n9.0.2) has libx264, libx265,
libaom-av1, libsvtav1, librav1e, libvvenc (input yuv420p10le only) and the libvmaf filter (built-in
models, ``vmaf_v0.6.1`` by default), plus the native H.264/HEVC/VVC/AV1 decoders and libdav1d.
:func:`describe_ffmpeg` reports what the binary in use really has.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Sequence

from nervkit.errors import NervkitError

#: The encoders and filters the benchmark may use, for :func:`describe_ffmpeg`.
WANTED_ENCODERS = ("libx264", "libx265", "libsvtav1", "libaom-av1", "libvvenc")
WANTED_FILTERS = ("libvmaf", "scale", "format")


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of imageio-ffmpeg's ffmpeg binary (NervkitError if it is missing or not executable).

    ``IMAGEIO_FFMPEG_EXE`` (a path, or a command name on ``PATH``) replaces the bundled binary;
    imageio-ffmpeg takes it unchecked, so it is checked here and named in the error."""
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - a dependency of nervkit[bench]
        raise NervkitError("ffmpeg comes from imageio-ffmpeg: pip install imageio-ffmpeg") from exc
    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:  # pragma: no cover - broken install
        raise NervkitError(f"cannot find imageio-ffmpeg's ffmpeg binary: {' '.join(str(exc).split())}") from None
    if shutil.which(exe) is None:
        if os.environ.get("IMAGEIO_FFMPEG_EXE"):
            raise NervkitError(f"the ffmpeg binary {exe} (set by IMAGEIO_FFMPEG_EXE) is not an executable file")
        raise NervkitError(f"imageio-ffmpeg's ffmpeg binary {exe} is not an executable file")  # pragma: no cover
    return exe


def _list(kind: str) -> frozenset[str]:
    """Names in ``ffmpeg -encoders`` / ``-filters`` output (second column of each table row)."""
    out = run_ffmpeg(["-hide_banner", f"-{kind}"], what=f"listing ffmpeg {kind}").stdout.decode(errors="replace")
    names = set()
    for line in out.splitlines():
        match = re.match(r"^\s*[A-Z.|]{2,}\s+(\S+)\s", line)
        if match and match.group(1) not in ("=", "->"):
            names.add(match.group(1))
    return frozenset(names)


@functools.lru_cache(maxsize=1)
def encoders() -> frozenset[str]:
    """Names of the encoders this ffmpeg was built with (cached)."""
    return _list("encoders")


@functools.lru_cache(maxsize=1)
def filters() -> frozenset[str]:
    """Names of the filters this ffmpeg was built with (cached)."""
    return _list("filters")


def has_encoder(name: str) -> bool:
    return name in encoders()


def has_filter(name: str) -> bool:
    return name in filters()


def describe_ffmpeg() -> dict[str, object]:
    """What the benchmark can use: ffmpeg path and version, and which wanted encoders/filters exist."""
    version = run_ffmpeg(["-hide_banner", "-version"], what="asking ffmpeg's version").stdout.decode(errors="replace")
    return {
        "path": ffmpeg_exe(),
        "version": version.splitlines()[0] if version else "",
        "encoders": {name: has_encoder(name) for name in WANTED_ENCODERS},
        "filters": {name: has_filter(name) for name in WANTED_FILTERS},
    }


def _last_error_line(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    # ffmpeg ends with generic lines ("Conversion failed!", "Exiting with exit code"); prefer the cause
    generic = ("conversion failed", "exiting with exit code", "error while filtering", "nothing was written")
    for line in reversed(lines):
        if not line.lower().startswith(generic):
            return line
    return lines[-1] if lines else "no error message"


def run_ffmpeg(
    args: Sequence[str], *, what: str, input: bytes | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``ffmpeg ARGS`` (no shell), feeding ``input`` on stdin; raise NervkitError naming ``what`` on failure."""
    try:
        exe = ffmpeg_exe()
    except NervkitError as exc:
        raise NervkitError(f"{what}: {exc}") from None
    cmd = [exe, *map(str, args)]
    try:
        proc = subprocess.run(
            cmd,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise NervkitError(f"{what}: ffmpeg took longer than {timeout} s") from exc
    except OSError as exc:
        raise NervkitError(f"{what}: cannot run ffmpeg: {exc}") from exc
    if proc.returncode != 0:
        message = _last_error_line(proc.stderr) if proc.stderr.strip() else f"exit status {proc.returncode}, no message"
        raise NervkitError(f"{what} failed: ffmpeg: {message}")
    return proc
