"""nervkit.metrics on tensors: PSNR closed forms, SSIM / MS-SSIM vs pytorch_msssim, small frames."""

from __future__ import annotations

import json
import math
import warnings

import pytest
import pytorch_msssim
import torch

from nervkit.errors import ConfigError, InputError
from nervkit.metrics import (
    PSNR_CAP_DB,
    MsSsimSettings,
    QualityAccumulator,
    ms_ssim,
    ms_ssim_settings,
    mse_per_frame,
    psnr_from_mse,
    psnr_per_frame,
    ssim,
    ssim_window,
)


def smooth_frames(n: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Natural-ish test frames: smooth random structure plus a gradient, values in [0.1, 0.9]."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, max(2, height // 8), max(2, width // 8), generator=g)
    up = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    ramp = torch.linspace(0, 1, width).view(1, 1, 1, width)
    return (0.1 + 0.8 * (0.7 * up.clamp(0, 1) + 0.3 * ramp)).clamp(0, 1)


def noisy(frames: torch.Tensor, sigma: float, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (frames + sigma * torch.randn(frames.shape, generator=g)).clamp(0, 1)


# ---------------------------------------------------------------- PSNR / MSE


def test_constant_offset_gives_closed_form_psnr():
    target = smooth_frames(3, 16, 24).double() * 0.8
    for offset, expected in [(0.1, 20.0), (0.01, 40.0), (0.2, -20 * math.log10(0.2))]:
        pred = target + offset
        assert torch.allclose(mse_per_frame(pred, target), torch.full((3,), offset**2, dtype=torch.float64))
        assert torch.allclose(psnr_per_frame(pred, target), torch.full((3,), expected, dtype=torch.float64))


def test_psnr_float32_offset_and_data_range():
    target = torch.zeros(2, 3, 8, 8)
    pred = target + 0.1
    assert psnr_per_frame(pred, target).tolist() == pytest.approx([20.0, 20.0], abs=1e-5)
    # the same error on a 0..255 scale
    assert psnr_per_frame(pred * 255, target * 255, data_range=255.0).tolist() == pytest.approx(
        [20.0, 20.0], abs=1e-4
    )


def test_psnr_of_gaussian_noise_matches_definition():
    target = smooth_frames(2, 32, 48)
    pred = target + 0.05 * torch.randn(target.shape, generator=torch.Generator().manual_seed(3))
    mse = ((pred.double() - target.double()) ** 2).mean(dim=(1, 2, 3))
    assert torch.allclose(psnr_per_frame(pred, target).double(), -10 * torch.log10(mse), atol=1e-4)
    # no clamping or 8-bit rounding of the prediction: values outside [0, 1] count as they are
    assert (pred > 1).any() or (pred < 0).any()


def test_identical_frames_are_capped_not_infinite():
    frames = smooth_frames(2, 16, 16)
    psnr = psnr_per_frame(frames, frames.clone())
    assert psnr.tolist() == [PSNR_CAP_DB, PSNR_CAP_DB]
    assert psnr_from_mse(0.0).item() == PSNR_CAP_DB
    assert psnr_from_mse(1e-30).item() == PSNR_CAP_DB
    assert psnr_from_mse(0.01).item() == pytest.approx(20.0)


def test_psnr_gradient_is_finite_even_for_identical_frames():
    target = smooth_frames(1, 8, 8)
    pred = target.clone().requires_grad_(True)
    psnr_per_frame(pred, target).sum().backward()
    assert torch.isfinite(pred.grad).all()


def test_mse_upcasts_half_precision():
    target = smooth_frames(1, 8, 8)
    pred = target + 0.1
    assert mse_per_frame(pred.half(), target.half()).dtype == torch.float32


@pytest.mark.parametrize(
    "pred, target, fragment",
    [
        (torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9), "shapes differ"),
        (torch.zeros(3, 8, 8), torch.zeros(3, 8, 8), "(N, C, H, W)"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), torch.zeros(1, 3, 8, 8), "float"),
        (torch.zeros(0, 3, 8, 8), torch.zeros(0, 3, 8, 8), "0 frames"),
    ],
)
def test_bad_inputs_raise_one_line_input_error(pred, target, fragment):
    for fn in (mse_per_frame, psnr_per_frame, ssim, ms_ssim):
        with pytest.raises(InputError) as err:
            fn(pred, target)
        assert fragment in str(err.value)
        assert "\n" not in str(err.value)


# ---------------------------------------------------------------- settings


def test_ssim_window_rule():
    assert ssim_window(1080, 1920) == 11
    assert ssim_window(16, 16) == 11
    assert ssim_window(11, 40) == 11
    assert ssim_window(10, 40) == 9
    assert ssim_window(40, 7) == 7
    assert ssim_window(4, 4) == 3
    assert ssim_window(3, 3) == 3
    with pytest.raises(InputError, match="too small"):
        ssim_window(2, 64)


def test_ms_ssim_settings_defaults_above_160px():
    for h, w in [(161, 161), (180, 320), (1080, 1920)]:
        s = ms_ssim_settings(h, w)
        assert s == MsSsimSettings(11, (0.0448, 0.2856, 0.3001, 0.2363, 0.1333))
        assert s.scales == 5


def test_ms_ssim_settings_small_frame_rule():
    # shrink the window first (5 scales kept), ...
    assert ms_ssim_settings(160, 320) == MsSsimSettings(9, ms_ssim_settings(1080, 1920).weights)
    assert ms_ssim_settings(90, 160).win_size == 5
    assert ms_ssim_settings(64, 64).win_size == 3
    assert ms_ssim_settings(33, 100) == MsSsimSettings(3, (0.0448, 0.2856, 0.3001, 0.2363, 0.1333))
    # ... then drop the coarsest scales and renormalise the remaining weights
    s16 = ms_ssim_settings(16, 16)
    assert s16.win_size == 3 and s16.scales == 3
    assert sum(s16.weights) == pytest.approx(1.0)
    assert s16.weights == pytest.approx([w / 0.6305 for w in (0.0448, 0.2856, 0.3001)])
    assert ms_ssim_settings(32, 32).scales == 4
    assert ms_ssim_settings(4, 4) == MsSsimSettings(3, (1.0,))
    with pytest.raises(InputError, match="too small"):
        ms_ssim_settings(2, 2)


def test_ms_ssim_settings_always_fit():
    """The coarsest scale is never smaller than the window, for every side from 3 to 400 px."""
    for side in range(3, 401):
        s = ms_ssim_settings(side, side + 7)
        assert s.win_size % 2 == 1 and 3 <= s.win_size <= 11
        coarsest = side
        for _ in range(s.scales - 1):
            coarsest = (coarsest + 1) // 2
        assert coarsest >= s.win_size, side
        # pytorch_msssim's own size condition, for the scales actually used
        assert side > (s.win_size - 1) * 2 ** (s.scales - 1)


# ---------------------------------------------------------------- SSIM / MS-SSIM vs pytorch_msssim


def test_ssim_and_ms_ssim_equal_pytorch_msssim_defaults_at_180x320():
    target = smooth_frames(2, 180, 320)
    pred = noisy(target, 0.08)
    ref_ssim = pytorch_msssim.ssim(pred, target, data_range=1, size_average=False)
    ref_ms = pytorch_msssim.ms_ssim(pred, target, data_range=1, size_average=False)
    assert torch.allclose(ssim(pred, target), ref_ssim, rtol=0, atol=1e-6)
    assert torch.allclose(ms_ssim(pred, target), ref_ms, rtol=0, atol=1e-6)
    assert ssim(pred, target, per_frame=False).item() == pytest.approx(
        pytorch_msssim.ssim(pred, target, data_range=1).item(), abs=1e-6
    )
    assert ms_ssim(pred, target, per_frame=False).item() == pytest.approx(
        pytorch_msssim.ms_ssim(pred, target, data_range=1).item(), abs=1e-6
    )


@pytest.mark.parametrize("height, width", [(90, 160), (64, 64), (40, 40)])
def test_ms_ssim_equals_pytorch_msssim_with_same_settings(height, width):
    """Small-frame settings computed the same way pytorch_msssim would, where its size check allows."""
    target = smooth_frames(2, height, width)
    pred = noisy(target, 0.05)
    s = ms_ssim_settings(height, width)
    expected = pytorch_msssim.ms_ssim(
        pred, target, data_range=1, size_average=False, win_size=s.win_size, weights=list(s.weights)
    )
    assert torch.allclose(ms_ssim(pred, target), expected, rtol=0, atol=1e-6)
    # fewer scales (as chosen for tiny frames) also match pytorch_msssim with the same weights
    weights = list(ms_ssim_settings(16, 16).weights)
    expected3 = pytorch_msssim.ms_ssim(
        pred, target, data_range=1, size_average=False, win_size=3, weights=weights
    )
    ours3 = ms_ssim(pred, target, settings=MsSsimSettings(3, tuple(weights)))
    assert torch.allclose(ours3, expected3, rtol=0, atol=1e-6)


def test_ms_ssim_settings_override_is_checked():
    frames = smooth_frames(1, 64, 64)
    with pytest.raises(InputError, match="too small for MS-SSIM with window 11"):
        ms_ssim(frames, frames, settings=ms_ssim_settings(1080, 1920))
    with pytest.raises(ConfigError, match="odd window"):
        ms_ssim(frames, frames, settings=MsSsimSettings(4, (1.0,)))


@pytest.mark.parametrize("height, width", [(90, 160), (64, 64), (16, 16), (5, 7)])
def test_small_frames_finite_bounded_and_monotone_in_noise(height, width):
    target = smooth_frames(3, height, width)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pytorch_msssim warns when it has to skip smoothing
        for fn in (ssim, ms_ssim):
            previous = fn(target, target.clone())
            assert torch.allclose(previous, torch.ones(3), atol=1e-6)
            for sigma in (0.01, 0.03, 0.1, 0.3):
                value = fn(noisy(target, sigma), target)
                assert torch.isfinite(value).all()
                assert ((value > 0) & (value <= 1 + 1e-6)).all(), (fn.__name__, sigma, value)
                assert (value < previous).all(), (fn.__name__, sigma, value, previous)
                previous = value


def test_identical_frames_give_ssim_and_ms_ssim_of_one():
    frames = smooth_frames(2, 90, 160)
    assert ssim(frames, frames.clone()).tolist() == pytest.approx([1.0, 1.0], abs=1e-6)
    assert ms_ssim(frames, frames.clone()).tolist() == pytest.approx([1.0, 1.0], abs=1e-6)


def test_ssim_is_differentiable():
    target = smooth_frames(2, 64, 64)
    pred = noisy(target, 0.1).requires_grad_(True)
    loss = 1 - ssim(pred, target, per_frame=False)
    assert loss.dim() == 0
    loss.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    # a gradient step improves SSIM
    with torch.no_grad():
        better = pred - 50.0 * pred.grad
    assert ssim(better, target, per_frame=False) > ssim(pred.detach(), target, per_frame=False)


def test_ms_ssim_is_differentiable_on_noisy_frames():
    target = smooth_frames(1, 16, 16)
    pred = noisy(target, 0.1).requires_grad_(True)
    (1 - ms_ssim(pred, target, per_frame=False)).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_per_frame_values_do_not_depend_on_batching():
    target = smooth_frames(4, 32, 48)
    pred = noisy(target, 0.05)
    for fn in (ssim, ms_ssim, psnr_per_frame):
        whole = fn(pred, target)
        parts = torch.cat([fn(pred[i : i + 1], target[i : i + 1]) for i in range(4)])
        assert torch.allclose(whole, parts, atol=1e-5)


# ---------------------------------------------------------------- accumulator / report


def test_per_frame_mean_and_global_psnr_differ_as_expected():
    target = torch.full((2, 3, 16, 16), 0.5, dtype=torch.float64)
    pred = target.clone()
    pred[0] += 0.1  # MSE 1e-2 -> 20 dB
    pred[1] += 0.01  # MSE 1e-4 -> 40 dB
    acc = QualityAccumulator()
    acc.update(pred, target)
    report = acc.result()
    assert report.psnr_per_frame == pytest.approx([20.0, 40.0])
    assert report.psnr == pytest.approx(30.0)
    assert report.mse == pytest.approx((1e-2 + 1e-4) / 2)
    assert report.psnr_global == pytest.approx(-10 * math.log10((1e-2 + 1e-4) / 2))
    assert report.psnr_global < report.psnr


def test_accumulator_over_batches_equals_one_shot():
    target = smooth_frames(8, 45, 80)
    pred = noisy(target, 0.04)
    streamed = QualityAccumulator()
    for start, stop in [(0, 3), (3, 4), (4, 8)]:
        streamed.update(pred[start:stop], target[start:stop])
    assert len(streamed) == 8
    report = streamed.result()

    assert report.frames == 8 and (report.height, report.width) == (45, 80)
    assert report.psnr_per_frame == pytest.approx(psnr_per_frame(pred, target).tolist(), abs=1e-4)
    assert report.ssim_per_frame == pytest.approx(ssim(pred, target).tolist(), abs=1e-6)
    assert report.ms_ssim_per_frame == pytest.approx(ms_ssim(pred, target).tolist(), abs=1e-6)
    assert report.psnr == pytest.approx(psnr_per_frame(pred, target).mean().item(), abs=1e-4)
    assert report.ssim == pytest.approx(ssim(pred, target, per_frame=False).item(), abs=1e-6)
    assert report.ms_ssim == pytest.approx(ms_ssim(pred, target, per_frame=False).item(), abs=1e-6)
    global_mse = mse_per_frame(pred, target).mean().item()
    assert report.psnr_global == pytest.approx(-10 * math.log10(global_mse), abs=1e-4)

    one_shot = QualityAccumulator()
    one_shot.update(pred, target)
    _close_dicts(one_shot.result().to_dict(), report.to_dict())


def _close_dicts(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            _close_dicts(a[key], b[key])
        elif isinstance(a[key], (list, float)):
            assert a[key] == pytest.approx(b[key], abs=1e-5)
        else:
            assert a[key] == b[key]
    return True


def test_report_settings_identical_frames_json_and_table():
    frames = smooth_frames(3, 16, 16)
    acc = QualityAccumulator()
    acc.update(frames, frames.clone())
    report = acc.result()
    assert report.psnr == report.psnr_global == PSNR_CAP_DB
    assert report.ssim == pytest.approx(1.0, abs=1e-6) and report.ms_ssim == pytest.approx(1.0, abs=1e-6)
    assert report.ssim_window == 11
    assert report.ms_ssim_window == 3 and report.ms_ssim_scales == 3
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["frames"] == 3
    assert data["settings"]["ms_ssim_scales"] == 3
    assert data["settings"]["ms_ssim_weights"] == pytest.approx(list(ms_ssim_settings(16, 16).weights))
    assert len(data["per_frame"]["psnr"]) == 3 and len(data["per_frame"]["ms_ssim"]) == 3
    text = report.table()
    for word in ("PSNR", "SSIM", "MS-SSIM", "100.00", "3 frames of 16x16 (HxW)", "3 scales"):
        assert word in text
    assert len(text.splitlines()) <= 8


def test_accumulator_without_ms_ssim():
    target = smooth_frames(2, 16, 16)
    acc = QualityAccumulator(ms_ssim=False)
    acc.update(noisy(target, 0.05), target)
    report = acc.result()
    assert report.ms_ssim is None and report.ms_ssim_per_frame is None and report.ms_ssim_scales is None
    assert "MS-SSIM" not in report.table()
    json.dumps(report.to_dict(), allow_nan=False)


def test_accumulator_errors():
    with pytest.raises(InputError, match="no frames"):
        QualityAccumulator().result()
    acc = QualityAccumulator()
    acc.update(smooth_frames(1, 16, 16), smooth_frames(1, 16, 16))
    with pytest.raises(InputError, match="frame size changed"):
        acc.update(smooth_frames(1, 16, 24), smooth_frames(1, 16, 24))
    with pytest.raises(InputError, match="too small"):
        QualityAccumulator().update(torch.zeros(1, 3, 2, 8), torch.zeros(1, 3, 2, 8))
