"""What ``nervkit fit`` says before training (issue #17): the build line (frames, size, method,
parameters, FLOPs/frame), the expected duration after the first steps, and the warnings for a model
bigger than the video and for a run over an hour whose epochs the user did not choose."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import gradient_clip, run_cli

from nervkit.io import write_video
from nervkit.train.progress import estimate_line, long_run_warning


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(gradient_clip(n=6), tmp_path_factory.mktemp("summary") / "clip.mkv", lossless=True)


def fit(clip: Path, out: Path, *args: object) -> str:
    code, _, err = run_cli("fit", clip, "-o", out, "--epochs", 2, "--no-video", *args)
    assert code == 0, err
    return err


def test_build_line_estimate_and_no_warning_for_a_small_model(clip: Path, tmp_path: Path) -> None:
    err = fit(clip, tmp_path / "run", "--model", "nerv", "--params", "10k")
    build = [line for line in err.splitlines() if line.startswith("read ")]
    assert len(build) == 1, err
    assert re.fullmatch(r"read 6 frames 36x60 at 25 fps; nerv: [\d,]+ parameters \([\d,]+ stored values\), "
                        r"[\d.]+ [kMGT]?FLOP/frame", build[0]), build[0]
    assert re.search(r"^~[\d.]+ s/epoch, ~[\d.]+ (s|min|h) for 2 epochs$", err, re.MULTILINE), err
    assert "warning" not in err
    assert err.index("read 6 frames") < err.index("s/epoch,")


def test_a_model_bigger_than_the_video_is_warned_about(clip: Path, tmp_path: Path) -> None:
    err = fit(clip, tmp_path / "run", "--model", "nerv", "--params", "0.2M", "--epochs", 1)
    lines = [line for line in err.splitlines() if line.startswith("nervkit: warning:")]
    assert len(lines) == 1 and "more than the video's 38,880 pixel values" in lines[0], err
    assert "--params" in lines[0] and "bpp" in lines[0]


def test_quiet_prints_none_of_them(clip: Path, tmp_path: Path) -> None:
    err = fit(clip, tmp_path / "run", "--model", "nerv", "--params", "0.2M", "--epochs", 1, "--quiet")
    assert "read " not in err and "s/epoch" not in err and "warning" not in err, err


def test_long_run_warning_only_when_over_an_hour_and_epochs_not_chosen() -> None:
    warning = long_run_warning(2.5 * 3600, epochs_set=False, epochs=300)
    assert warning is not None and warning.startswith("nervkit: warning:")
    assert "~2.5 h" in warning and "--epochs" in warning and "--params" in warning and "GPU" in warning
    assert long_run_warning(2.5 * 3600, epochs_set=True, epochs=300) is None
    assert long_run_warning(3500, epochs_set=False, epochs=300) is None


def test_estimate_line() -> None:
    assert estimate_line(8.2, 41 * 60, 300) == "~8.2 s/epoch, ~41 min for 300 epochs"
    assert estimate_line(90, 2.5 * 3600, 100) == "~2 min/epoch, ~2.5 h for 100 epochs"
