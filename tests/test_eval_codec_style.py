"""nervkit eval, codec style (issue #17): Y/U/V and 6:1:1 YUV PSNR, streamed VMAF, --device, --csv."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from helpers import gradient_clip, run_cli

from nervkit.io import write_video, yuv420_planes
from nervkit.io.ffmpeg import has_filter
from nervkit.metrics.psnr import PSNR_CAP_DB

N, H, W = 6, 36, 64


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("codec_style")
    frames = gradient_clip(N, H, W)
    rng = np.random.default_rng(0)
    noisy = [np.clip(f.astype(np.int16) + rng.integers(-12, 13, f.shape), 0, 255).astype(np.uint8) for f in frames]
    ref, dis = folder / "ref.mkv", folder / "noisy.mkv"
    write_video(frames, ref, lossless=True)
    write_video(noisy, dis, lossless=True)
    return ref, dis, frames, noisy


def _eval(*argv):
    code, out, err = run_cli("eval", *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return min(PSNR_CAP_DB, 10 * math.log10(255.0**2 / mse)) if mse else PSNR_CAP_DB


def test_yuv_psnr_and_the_611_average_of_psnrs(clips):
    ref, dis, frames, noisy = clips
    data = _eval(ref, dis)
    per = data["per_frame"]
    for i, (a, b) in enumerate(zip(frames, noisy)):
        expect = [_psnr(p, q) for p, q in zip(yuv420_planes(a), yuv420_planes(b))]
        assert [per["psnr_y"][i], per["psnr_u"][i], per["psnr_v"][i]] == pytest.approx(expect, abs=1e-9)
        # the 6:1:1 average is of the PSNRs (as codec papers report), not of the MSEs
        assert per["psnr_yuv"][i] == pytest.approx((6 * expect[0] + expect[1] + expect[2]) / 8, abs=1e-9)
    means = {k: data[f"psnr_{k}"] for k in ("y", "u", "v", "yuv")}
    assert means["yuv"] == pytest.approx((6 * means["y"] + means["u"] + means["v"]) / 8)
    assert means["y"] == pytest.approx(np.mean(per["psnr_y"]))
    assert 20 < means["y"] < 60 and data["vmaf"] is None


def test_identical_clips_give_the_cap(clips):
    ref, _, _, _ = clips
    data = _eval(ref, ref)
    assert [data[f"psnr_{k}"] for k in ("y", "u", "v", "yuv")] == [PSNR_CAP_DB] * 4


def test_table_lists_yuv_rows(clips):
    ref, dis, _, _ = clips
    code, out, err = run_cli("eval", ref, dis, "--device", "cpu")
    assert code == 0, err
    assert "PSNR Y (dB)" in out and "PSNR YUV 6:1:1 (dB)" in out


def test_libvmaf_is_bundled():
    assert has_filter("libvmaf")


def test_vmaf_streamed_and_csv(clips, tmp_path):
    ref, dis, _, _ = clips
    same = _eval(ref, ref, "--vmaf")
    assert 97 <= same["vmaf"] <= 100
    path = tmp_path / "frames.csv"
    data = _eval(ref, dis, "--vmaf", "--csv", path)
    assert 0 <= data["vmaf"] <= 100 and data["vmaf"] < same["vmaf"]
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == N
    assert list(rows[0]) == ["frame", "psnr_rgb", "ms_ssim", "psnr_y", "psnr_u", "psnr_v", "psnr_yuv", "vmaf"]
    assert [int(r["frame"]) for r in rows] == list(range(N))
    assert [float(r["vmaf"]) for r in rows] == pytest.approx(data["per_frame"]["vmaf"])
    assert [float(r["psnr_yuv"]) for r in rows] == pytest.approx(data["per_frame"]["psnr_yuv"])
    assert not [p for p in tmp_path.iterdir() if p.name != "frames.csv"]  # atomic: no temporaries left


def test_csv_without_vmaf_has_no_vmaf_column(clips, tmp_path):
    ref, dis, _, _ = clips
    path = tmp_path / "f.csv"
    _eval(ref, dis, "--csv", path)
    assert "vmaf" not in path.read_text().splitlines()[0]


def test_bad_csv_path_is_one_line(clips, tmp_path):
    ref, dis, _, _ = clips
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _out, err = run_cli("eval", ref, dis, "--csv", blocker / "f.csv")
    assert code != 0 and len(err.strip().splitlines()) == 1 and "file" in err
    code, _out, err = run_cli("eval", ref, dis, "--csv", tmp_path)
    assert code != 0 and len(err.strip().splitlines()) == 1


def test_bad_device_is_one_line(clips):
    ref, dis, _, _ = clips
    code, _out, err = run_cli("eval", ref, dis, "--device", "tpu")
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_missing_libvmaf_is_one_line(clips, monkeypatch):
    from nervkit.metrics import vmaf

    monkeypatch.setattr(vmaf, "has_filter", lambda name: False)
    ref, dis, _, _ = clips
    code, _out, err = run_cli("eval", ref, dis, "--vmaf")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "libvmaf" in err
