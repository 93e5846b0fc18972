"""Helpers shared by the tests: a synthetic clip, in-process CLI calls, an audio-only file."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import av
import numpy as np
import torch

from nervkit.cli.main import main

H, W, N = 36, 60, 8  # not a multiple of the strides: the model pads and crops

#: tiny models (a few thousand to ~100k parameters) on a few frames of 36x60 (the
#: SIGKILL/resume and CUDA-path tests)
TINY_MODELS = {
    "nerv": ["--mlp-hidden", 32, "--grid-channels", 16, "--lower-width", 16],
    "hnerv": ["--encoder-width", 8, "--channels", 16, "--embed-channels", 4, "--lower-width", 4],
    "dnerv": ["--encoder-width", 8, "--channels", 16, "--embed-channels", 4],
    "enerv": ["--embed-dim", 16, "--temporal-hidden", 32, "--heads", 2, "--head-dim", 8, "--ffn-dim", 16,
              "--norm-dim", 16, "--grid-channels", 16, "--lower-width", 8],
    # 2 iterations of 8192 pixel samples per epoch: 8192 x 9 sparse-grid reads x 2 features per step,
    # well above the 32,768 updates from which PyTorch spreads an index_put_ over threads
    "nvp": ["--params", "20k", "--pixels-per-batch", 8192, "--pixels-per-epoch", 16384],
    # about 16 k parameters, one block per stage; 12x12 patches (the 36x60 output is 3x5 of them)
    "hinerv": ["--channels", 32, "--base-grid-channels", 2, "--encoding-channels", 2, "--depths", "1,1,1,1"],
    # clips of 2 frames: 2 iterations of one clip per epoch, from 3 coded key-frames
    "d-nerv": ["--clip-length", 2, "--grid-channels", 8, "--stem-hidden", 16, "--pe-levels", 16, "--encoder-width", 8,
               "--lower-width", 8, "--batch-size", 1],
}


def gradient_clip(n: int = N, height: int = H, width: int = W) -> list[np.ndarray]:
    """Smooth colour gradients moving a little from frame to frame: (H, W, 3) uint8."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for i in range(n):
        r = 128 + 100 * np.sin((x + 2 * i) / 19.0)
        g = 128 + 100 * np.cos((y - 1.5 * i) / 11.0)
        b = 128 + 80 * np.sin((x + y + 3 * i) / 29.0)
        frames.append(np.clip(np.stack([r, g, b], -1) + 0.5, 0, 255).astype(np.uint8))
    return frames


def run_cli(*argv: object) -> tuple[int, str, str]:
    """``nervkit ARGV`` in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    threads = torch.get_num_threads()  # a fit with --threads (or a resumed one) changes it
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse (--help, usage errors)
            code = int(exc.code or 0)
        finally:
            torch.set_num_threads(threads)
    return code, out.getvalue(), err.getvalue()


def write_audio_only(path: Path) -> Path:
    """A real container holding one AAC audio stream and no video stream."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 8000, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def write_bayer_video(path: Path, n: int = 3, height: int = 36, width: int = 64) -> Path:
    """A real rawvideo stream in a pixel format nervkit rejects (bayer_rggb8)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("rawvideo", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "bayer_rggb8"
        for _ in range(n):
            frame = av.VideoFrame.from_bytes(bytes(width * height), width, height, "bayer_rggb8")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


#: a small NeRV (for task tests that need a fast fit)
TINY_NERV = {"mlp_hidden": 32, "grid_channels": 16, "lower_width": 16}


def one_line_error(result: tuple[int, str, str], *words: str) -> str:
    """Assert that a ``run_cli`` result is a one-line ``nervkit: error:`` with exit 2 naming ``words``."""
    code, out, err = result
    assert code == 2, (code, out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("nervkit: error:") and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def clip_tensor(n: int = N, height: int = H, width: int = W) -> torch.Tensor:
    """:func:`gradient_clip` as float frames (n, 3, H, W) in [0, 1]."""
    frames = torch.from_numpy(np.stack(gradient_clip(n, height, width)))
    return frames.permute(0, 3, 1, 2).float() / 255.0


def meta_model(method: str, geometry, **kwargs):
    """Method ``method`` built for ``geometry`` on the meta device (counts and shapes, no weights)."""
    from nervkit.models import get_method

    spec = get_method(method)
    config = spec.build_config(geometry, **kwargs)
    with torch.device("meta"):
        return spec.model_cls(config, geometry)


def cli_ok(*argv: object) -> str:
    """``nervkit ARGV`` in-process, asserting success; returns stdout."""
    code, out, err = run_cli(*argv)
    assert code == 0, f"nervkit {' '.join(map(str, argv))} failed ({code}): {err}"
    return out


def assert_decodes_identically(nerv: Path, folder: Path, frames: int) -> None:
    """``nervkit decompress`` of ``nerv`` twice into PNG folders under ``folder``: ``frames`` frames,
    byte-identical between the two decodes."""
    cli_ok("decompress", nerv, "-o", folder / "a")
    cli_ok("decompress", nerv, "-o", folder / "b")
    first = sorted((folder / "a").glob("frame_*.png"))
    assert len(first) == frames
    for a in first:
        assert a.read_bytes() == (folder / "b" / a.name).read_bytes()
