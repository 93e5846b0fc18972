"""decode / decompress to .y4m and raw .yuv (8-bit 4:2:0, BT.601 limited range, C420jpeg): sizes, the
Y4M header, the round trip through nervkit's reader, and odd frame sizes refused with nothing written."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from helpers import TINY_MODELS, cli_ok, gradient_clip, run_cli

from nervkit.io import read_video, write_video
from nervkit.io.reader import frame_to_rgb

H, W, N = 36, 60, 4
FIT = ["--epochs", 4, "--lr", "2e-3", "--quiet", "--no-video", "--threads", 1, *TINY_MODELS["nerv"]]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Path, Path]:
    """(root, run): a tiny NeRV fitted on a 36x60 clip of 4 frames at 25 fps."""
    root = tmp_path_factory.mktemp("yuv")
    clip = write_video(gradient_clip(N, H, W), root / "clip.mkv", fps=25, lossless=True)
    run = root / "run"
    cli_ok("fit", clip, "-o", run, *FIT)
    return root, run


def _pngs(root: Path, run: Path) -> np.ndarray:
    cli_ok("decode", run, "-o", root / "png/")
    return read_video(root / "png").frames.numpy().astype(np.float64)


def test_decode_writes_y4m_that_reads_back(fitted):
    root, run = fitted
    out = root / "out.y4m"
    cli_ok("decode", run, "-o", out)
    data = out.read_bytes()
    header, rest = data.split(b"\n", 1)
    fields = header.decode().split()
    assert fields[0] == "YUV4MPEG2"
    assert {"W60", "H36", "F25:1", "Ip", "A1:1", "C420jpeg"} <= set(fields)
    frame = W * H * 3 // 2
    assert len(rest) == N * (len(b"FRAME\n") + frame)
    assert rest.startswith(b"FRAME\n")
    video = read_video(out)
    assert video.fps == 25 and tuple(video.frames.shape) == (N, 3, H, W)
    pngs = _pngs(root, run)
    diff = np.abs(video.frames.numpy().astype(np.float64) - pngs)
    assert diff.mean() <= 2.0, diff.mean()  # 4:2:0 chroma subsampling and 8-bit rounding
    # the conversion is the reader's inverse: the same as swscale's RGB -> yuv420p -> RGB of the frames
    for got, png in zip(video.frames.permute(0, 2, 3, 1).numpy(), pngs.transpose(0, 2, 3, 1).astype(np.uint8)):
        yuv = av.VideoFrame.from_ndarray(np.ascontiguousarray(png), format="rgb24").reformat(format="yuv420p")
        assert np.array_equal(got, frame_to_rgb(yuv, "ref"))
    assert not [p for p in root.iterdir() if "partial" in p.name]


def test_decode_writes_raw_yuv(fitted):
    root, run = fitted
    out = root / "out.yuv"
    cli_ok("decode", run, "-o", out)
    assert out.stat().st_size == N * W * H * 3 // 2
    video = read_video(out, raw_size=(H, W))
    assert tuple(video.frames.shape) == (N, 3, H, W)
    # the same planes as the .y4m output
    y4m = root / "same.y4m"
    cli_ok("decode", run, "-o", y4m)
    assert y4m.read_bytes().split(b"\n", 1)[1].replace(b"FRAME\n", b"") == out.read_bytes()
    diff = np.abs(video.frames.numpy().astype(np.float64) - _pngs(root, run))
    assert diff.mean() <= 2.0, diff.mean()


def test_decompress_to_y4m(fitted):
    root, run = fitted
    nerv = root / "v.nerv"
    cli_ok("compress", run, "-o", nerv)
    out = root / "dec.y4m"
    cli_ok("decompress", nerv, "-o", out, "--frames", "1:3")
    assert out.read_bytes().startswith(b"YUV4MPEG2 W60 H36 F25:1 ")
    assert tuple(read_video(out).frames.shape) == (2, 3, H, W)


def test_odd_size_is_refused_and_nothing_is_written(tmp_path):
    clip = write_video(gradient_clip(2, 35, 61), tmp_path / "odd.mkv", lossless=True)
    run = tmp_path / "run"
    cli_ok("fit", clip, "-o", run, "--epochs", 1, "--quiet", "--no-video", "--threads", 1, *TINY_MODELS["nerv"])
    for name in ("odd.y4m", "odd.yuv"):
        out = tmp_path / name
        code, _, err = run_cli("decode", run, "-o", out)
        lines = err.splitlines()
        assert code == 2 and len(lines) == 1 and "even" in lines[0] and "35x61" in lines[0], (code, err)
        assert not out.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".{name}.")]
