"""nervkit.metrics.evaluate_videos on small lossless videos written by the test (FFV1 .mkv, PNG folders)."""

from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np
import pytest

from nervkit.errors import ConfigError, InputError
from nervkit.io import FrameRange
from nervkit.metrics import PSNR_CAP_DB, evaluate_videos


def reference_frames(n: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """``(n, H, W, 3)`` uint8 RGB with values in [0, 235], so that adding up to 20 never clips."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for i in range(n):
        base = 100 + 60 * np.sin((x + 3 * i) / 5.0)[..., None] + 40 * np.cos(y / 4.0)[..., None]
        noise = rng.integers(-20, 21, size=(height, width, 3))
        frames.append(np.clip(base + noise, 0, 235))
    return np.stack(frames).astype(np.uint8)


def write_ffv1(path: Path, frames: np.ndarray, fps: int = 25) -> Path:
    """Lossless RGB video (FFV1, bgr0) in a Matroska container."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("ffv1", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "bgr0"
        for array in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
            for packet in stream.encode(frame.reformat(format="bgr0")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_png_folder(path: Path, frames: np.ndarray) -> Path:
    from PIL import Image

    path.mkdir()
    for i, array in enumerate(frames):
        Image.fromarray(array).save(path / f"frame_{i:05d}.png")
    return path


def expected_psnr(reference: np.ndarray, distorted: np.ndarray) -> tuple[list[float], float]:
    diff = (distorted.astype(np.float64) - reference.astype(np.float64)) / 255.0
    mse = (diff**2).reshape(len(diff), -1).mean(axis=1)
    return [-10 * math.log10(m) for m in mse], -10 * math.log10(mse.mean())


@pytest.fixture
def clip(tmp_path):
    """A 7-frame 24x40 reference and a copy with a known per-frame offset (frame i: +2*(i+1) levels)."""
    ref = reference_frames(7, 24, 40)
    offsets = np.arange(1, 8, dtype=np.int16)[:, None, None, None] * 2
    dist = (ref.astype(np.int16) + offsets).astype(np.uint8)
    return ref, dist, write_ffv1(tmp_path / "ref.mkv", ref), write_ffv1(tmp_path / "dist.mkv", dist)


def test_known_offsets_give_closed_form_psnr(clip):
    ref, dist, ref_path, dist_path = clip
    report = evaluate_videos(ref_path, dist_path, batch_size=3)  # 3 + 3 + 1 frames
    assert report.frames == 7 and (report.height, report.width) == (24, 40)
    # frame i is off by 2*(i+1) levels everywhere: PSNR = 20*log10(255 / (2*(i+1)))
    closed = [20 * math.log10(255 / (2 * (i + 1))) for i in range(7)]
    assert report.psnr_per_frame == pytest.approx(closed, abs=1e-4)
    per_frame, global_psnr = expected_psnr(ref, dist)
    assert report.psnr == pytest.approx(sum(per_frame) / 7, abs=1e-4)
    assert report.psnr_global == pytest.approx(global_psnr, abs=1e-4)
    assert report.psnr_global < report.psnr
    assert all(0 < v < 1 for v in report.ssim_per_frame)
    assert report.ms_ssim is not None and 0 < report.ms_ssim < 1
    assert report.reference == str(ref_path) and report.distorted == str(dist_path)
    # batching does not change anything
    assert evaluate_videos(ref_path, dist_path, batch_size=8).psnr_per_frame == pytest.approx(
        report.psnr_per_frame, abs=1e-9
    )


def test_random_noise_matches_numpy(tmp_path):
    ref = reference_frames(4, 32, 32, seed=5)
    noise = np.random.default_rng(9).integers(0, 21, size=ref.shape)
    dist = (ref.astype(np.int16) + noise).astype(np.uint8)
    report = evaluate_videos(
        write_ffv1(tmp_path / "r.mkv", ref), write_png_folder(tmp_path / "d", dist), batch_size=2
    )
    per_frame, global_psnr = expected_psnr(ref, dist)
    assert report.psnr_per_frame == pytest.approx(per_frame, abs=1e-4)
    assert report.psnr_global == pytest.approx(global_psnr, abs=1e-4)


def test_identical_videos(clip):
    _, _, ref_path, _ = clip
    report = evaluate_videos(ref_path, ref_path)
    assert report.psnr == report.psnr_global == PSNR_CAP_DB
    assert report.ssim == pytest.approx(1.0, abs=1e-6) and report.ms_ssim == pytest.approx(1.0, abs=1e-6)


def test_frame_range_applies_to_both(clip):
    _, _, ref_path, dist_path = clip
    report = evaluate_videos(ref_path, dist_path, frames=FrameRange(2, 6))
    assert report.frames == 4
    assert report.psnr_per_frame == pytest.approx(
        [20 * math.log10(255 / (2 * (i + 1))) for i in range(2, 6)], abs=1e-4
    )


def test_different_frame_counts_raise(tmp_path, clip):
    _, dist, ref_path, _ = clip
    short = write_ffv1(tmp_path / "short.mkv", dist[:5])
    for a, b in [(ref_path, short), (short, ref_path)]:
        with pytest.raises(InputError, match="frame counts differ") as err:
            evaluate_videos(a, b)
        message = str(err.value)
        assert "\n" not in message and "7" in message and "5" in message


def test_different_frame_sizes_raise_unless_resized(tmp_path, clip):
    _, _, ref_path, _ = clip
    wide = write_ffv1(tmp_path / "wide.mkv", reference_frames(7, 24, 48, seed=1))
    with pytest.raises(InputError, match="frame sizes differ") as err:
        evaluate_videos(ref_path, wide)
    assert "\n" not in str(err.value) and "24x40" in str(err.value) and "24x48" in str(err.value)
    report = evaluate_videos(ref_path, wide, size=(12, 20))
    assert report.frames == 7 and (report.height, report.width) == (12, 20)
    assert all(math.isfinite(v) for v in report.psnr_per_frame + report.ssim_per_frame)


def test_bad_batch_size(clip):
    _, _, ref_path, dist_path = clip
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="batch_size"):
            evaluate_videos(ref_path, dist_path, batch_size=bad)


def test_source_shorter_than_declared_is_caught_while_streaming(tmp_path, clip, monkeypatch):
    """If a probe over-reports the length, the lockstep loop still names both real counts."""
    import dataclasses

    import nervkit.io

    _, dist, ref_path, _ = clip
    short = write_ffv1(tmp_path / "short.mkv", dist[:5])
    real_probe = nervkit.io.probe_video

    def lying_probe(path, **kwargs):
        info = real_probe(path, **kwargs)
        return dataclasses.replace(info, num_frames=7) if str(path) == str(short) else info

    monkeypatch.setattr(nervkit.io, "probe_video", lying_probe)
    with pytest.raises(InputError, match="frame counts differ") as err:
        evaluate_videos(ref_path, short, batch_size=2)
    assert "has 7 frames" in str(err.value) and "has 5" in str(err.value)
