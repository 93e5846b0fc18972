"""Denoising: the noise recipes (reproducible, documented statistics) and fits scored against the clean video."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import nervkit
from helpers import gradient_clip, N, one_line_error, run_cli, TINY_NERV
from nervkit.api import task_data
from nervkit.data import FrameStore
from nervkit.errors import ConfigError
from nervkit.io import write_video
from nervkit.metrics import psnr_per_frame
from nervkit.tasks.denoising import NoiseSpec, add_noise, noisy_frame





@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_video(gradient_clip(), tmp_path_factory.mktemp("denoise") / "clip.mkv", fps=25, lossless=True)


def grey(n: int = 4, h: int = 90, w: int = 160) -> FrameStore:
    return FrameStore.from_tensor(torch.full((n, 3, h, w), 128, dtype=torch.uint8))


def test_noise_specs() -> None:
    assert str(NoiseSpec.parse("white:0.1")) == "white:0.1"
    assert NoiseSpec.parse("salt-pepper:0.05") == NoiseSpec("salt-pepper", 0.05)
    assert NoiseSpec.parse("gaussian:0.2").kind == "white"
    for bad in ("white", "pink:0.1", "white:abc", "white:-1", "salt-pepper:1.5", "white:nan"):
        with pytest.raises(ConfigError, match="--noise"):
            NoiseSpec.parse(bad)


def test_noise_is_reproducible_and_per_frame() -> None:
    store = FrameStore.from_tensor(torch.from_numpy(np.stack(gradient_clip())).permute(0, 3, 1, 2))
    for spec in ("white:0.1", "salt-pepper:0.1"):
        a, b, c = add_noise(store, spec, 7), add_noise(store, spec, 7), add_noise(store, spec, 8)
        assert torch.equal(a.frames, b.frames) and not torch.equal(a.frames, c.frames)
        # frame i depends only on (seed, i): not on which other frames are noised
        assert torch.equal(noisy_frame(store.frames[5], NoiseSpec.parse(spec), 7, 5), a.frames[5])
        assert not torch.equal(a.frames[0], a.frames[1] - store.frames[1] + store.frames[0])
        assert a.fps == store.fps and a.source_indices == store.source_indices


def test_white_noise_statistics() -> None:
    store = grey()
    noisy = add_noise(store, "white:0.05", 3)
    diff = noisy.get(range(4)) - store.get(range(4))
    assert float(diff.mean()) == pytest.approx(0.0, abs=2e-3)
    assert float(diff.std()) == pytest.approx(0.05, rel=0.03)  # 8-bit rounding adds ~0.1 % variance
    # independent across channels: the three channels of a pixel differ
    assert float((diff[:, 0] == diff[:, 1]).float().mean()) < 0.2
    # clipped to [0, 1]
    bright = FrameStore.from_tensor(torch.full((1, 3, 50, 50), 250, dtype=torch.uint8))
    assert int(add_noise(bright, "white:0.2", 0).frames.max()) == 255


def test_salt_and_pepper_statistics() -> None:
    store = grey()
    noisy = add_noise(store, "salt-pepper:0.1", 3).frames
    changed = (noisy != 128).any(dim=1)  # (n, H, W): corrupted pixels
    assert float(changed.float().mean()) == pytest.approx(0.1, rel=0.05)
    values = noisy.permute(0, 2, 3, 1)[changed]  # (k, 3)
    assert bool(((values == 0).all(1) | (values == 255).all(1)).all())  # whole pixels, black or white
    assert float((values[:, 0] == 255).float().mean()) == pytest.approx(0.5, abs=0.03)
    untouched = noisy.permute(0, 2, 3, 1)[~changed]
    assert bool((untouched == 128).all())


def test_fit_on_noise_scores_against_the_clean_video(clip: Path, tmp_path: Path) -> None:
    code, out, err = run_cli("fit", clip, "-o", tmp_path / "run", "--noise", "white:0.1", "--noise-seed", 3,
                             "--epochs", 2, "--quiet", "--no-video", "--json", "--threads", 1,
                             *[x for k, v in TINY_NERV.items() for x in ("--" + k.replace("_", "-"), v)])
    assert code == 0, err
    summary = json.loads(out)
    section = summary["denoising"]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["denoising"]["noisy_input_vs_clean"]["psnr"] == pytest.approx(section["noisy_input_vs_clean"]["psnr"])
    assert section["noise"] == "white:0.1" and section["noise_seed"] == 3
    # the noisy input's PSNR is that of the documented recipe, about 20 dB for sigma 0.1
    clean = FrameStore.from_tensor(torch.from_numpy(np.stack(gradient_clip())).permute(0, 3, 1, 2))
    noisy = add_noise(clean, "white:0.1", 3)
    expected = float(psnr_per_frame(noisy.get(range(N)), clean.get(range(N))).mean())
    assert section["noisy_input_vs_clean"]["psnr"] == pytest.approx(expected, abs=1e-6)
    assert 19.5 < expected < 21
    # the headline numbers are the decode against the clean video
    fitted = nervkit.load(tmp_path / "run")
    decoded = fitted.decode(list(range(N)))
    vs_clean = float(psnr_per_frame(decoded, clean.get(range(N))).mean())
    assert section["decoded_vs_clean"]["psnr"] == pytest.approx(vs_clean, abs=1e-4) == summary["psnr"]
    vs_noisy = float(psnr_per_frame(decoded, noisy.get(range(N))).mean())
    assert section["decoded_vs_noisy_input"]["psnr"] == pytest.approx(vs_noisy, abs=1e-4)
    # run.json keeps the recipe, and compress / resume rebuild exactly the same noisy frames
    data = json.loads((tmp_path / "run" / "run.json").read_text())["data"]
    assert (data["noise"], data["noise_seed"], data["train_frames"], data["mask"]) == ("white:0.1", 3, "all", None)
    assert torch.equal(task_data(fitted).store.frames, noisy.frames)


def test_bad_noise_is_a_one_line_error(clip: Path, tmp_path: Path) -> None:
    fit = ("--params", "20k", "--epochs", 1, "--quiet", "--no-video")
    one_line_error(run_cli("fit", clip, "-o", tmp_path / "run", "--noise", "white:abc", *fit), "--noise")
    one_line_error(run_cli("fit", clip, "-o", tmp_path / "run", "--noise", "pink:0.1", *fit), "--noise")
    one_line_error(run_cli("fit", clip, "-o", tmp_path / "run", "--noise", "white:0.1", "--noise-seed", "x", *fit),
                   "--noise-seed")
    assert not (tmp_path / "run").exists()
