"""Bjøntegaard deltas on analytic curves, and the RD plot and results file."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nervkit.bench import BDRateWarning, RDResults, bd_psnr, bd_rate, plot_rd, read_results, write_results
from nervkit.errors import ConfigError, InputError

RATE = np.array([0.01, 0.025, 0.06, 0.15, 0.4])
PSNR = np.array([27.0, 29.6, 32.1, 34.4, 36.0])
METHODS = ["pchip", "cubic"]


@pytest.mark.parametrize("method", METHODS)
def test_identical_curves_give_zero(method):
    assert bd_rate(RATE, PSNR, RATE, PSNR, method=method) == pytest.approx(0, abs=1e-9)
    assert bd_psnr(RATE, PSNR, RATE, PSNR, method=method) == pytest.approx(0, abs=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_half_the_rate_everywhere_is_minus_50_percent(method):
    assert bd_rate(RATE, PSNR, RATE / 2, PSNR, method=method) == pytest.approx(-50, abs=1e-9)
    assert bd_rate(RATE / 2, PSNR, RATE, PSNR, method=method) == pytest.approx(100, abs=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_one_db_shift_on_a_log_linear_curve(method):
    slope = 4.0  # PSNR = 40 + slope * ln(rate)
    rate = np.array([0.02, 0.05, 0.1, 0.3])
    psnr = 40 + slope * np.log(rate)
    assert bd_psnr(rate, psnr, rate, psnr + 1, method=method) == pytest.approx(1.0, abs=1e-9)
    # the same quality needs ln(rate) smaller by 1/slope
    expected = (math.exp(-1 / slope) - 1) * 100
    assert bd_rate(rate, psnr, rate, psnr + 1, method=method) == pytest.approx(expected, abs=1e-9)


def test_order_of_points_does_not_matter():
    order = [3, 0, 4, 1, 2]
    test_rate, test_psnr = RATE * 0.8, PSNR + np.array([0.1, 0.3, 0.2, 0.0, 0.1])
    expected = bd_rate(RATE, PSNR, test_rate, test_psnr)
    assert bd_rate(RATE[order], PSNR[order], test_rate[::-1], test_psnr[::-1]) == pytest.approx(expected)
    assert -40 < expected < -15


def test_pchip_and_cubic_agree_on_smooth_curves():
    test_rate, test_psnr = RATE * 0.7, PSNR + 0.2 * np.sin(np.arange(5))
    a = bd_rate(RATE, PSNR, test_rate, test_psnr, method="pchip")
    b = bd_rate(RATE, PSNR, test_rate, test_psnr, method="cubic")
    assert a == pytest.approx(b, abs=3)


def test_partial_overlap_uses_the_common_range():
    # a log-linear curve is reproduced exactly by both interpolations, so a test curve covering only
    # the upper part of the quality range at half the rate is exactly -50 % over the common range
    rate = np.array([0.01, 0.02, 0.05, 0.1, 0.3])
    psnr = 40 + 4 * np.log(rate)
    for method in METHODS:
        assert bd_rate(rate, psnr, rate[2:] / 2, psnr[2:], method=method) == pytest.approx(-50, abs=1e-9)


def test_non_overlapping_ranges_give_nan_with_a_reason():
    with pytest.warns(BDRateWarning, match="do not overlap"):
        assert math.isnan(bd_rate(RATE, PSNR, RATE, PSNR + 20))
    with pytest.raises(ConfigError, match="do not overlap"):
        bd_psnr(RATE, PSNR, RATE * 100, PSNR, strict=True)


def test_bad_curves_are_config_errors():
    with pytest.raises(ConfigError, match="at least 2"):
        bd_rate([0.1], [30], RATE, PSNR)
    with pytest.raises(ConfigError, match="positive"):
        bd_rate([0.1, 0], [30, 31], RATE, PSNR)
    with pytest.raises(ConfigError, match="repeated"):
        bd_rate([0.1, 0.2], [30, 30], RATE, PSNR)
    with pytest.raises(ConfigError, match="unknown"):
        bd_rate(RATE, PSNR, RATE, PSNR, method="linear")


def test_plot_rd_writes_a_png(tmp_path):
    curves = {
        "x265": [{"bpp": float(r), "psnr-rgb": float(p), "ms-ssim-rgb": 0.9 + r / 10} for r, p in zip(RATE, PSNR)],
        "nerv": RDResults.from_points("nerv", [{"bpp": 0.05, "psnr-rgb": 30.0}, {"bpp": 0.1, "psnr-rgb": 32.0}]),
    }
    path = plot_rd(curves, tmp_path / "rd" / "plot.png", log_x=True, title="test")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert [p.name for p in path.parent.iterdir()] == ["plot.png"]  # no temporary left behind


def test_results_schema_is_checked(tmp_path):
    rd = RDResults("m", "d", {"bpp": [0.1, 0.2], "psnr-rgb": [30.0, 32.0], "vmaf": [None, 80.0]})
    back = read_results(write_results(tmp_path / "m.json", rd))
    assert back.results["vmaf"] == [None, 80.0] and back.points()[1]["psnr-rgb"] == 32.0
    with pytest.raises(InputError, match="expected 2"):
        RDResults("m", "", {"bpp": [0.1, 0.2], "psnr-rgb": [30.0]})
    with pytest.raises(InputError, match="no 'psnr-rgb'"):
        RDResults("m", "", {"bpp": [0.1]})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="cannot read"):
        read_results(tmp_path / "bad.json")
