"""`nervkit bench plot`: overlaying nervkit and CompressAI RD files, reference curves, series styles."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nervkit.bench.plot import load_curves, plot_overlay, reference_names, series_style
from nervkit.bench.results import RDResults, write_results
from nervkit.cli.main import main


def _png_ok(path):
    from matplotlib.image import imread

    image = imread(str(path))
    assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50
    flat = image.reshape(-1, image.shape[-1])
    assert len(np.unique(flat, axis=0)) > 10  # not blank


@pytest.fixture
def files(tmp_path):
    a = RDResults("nerv", results={"bpp": [0.1, 0.2, 0.4], "psnr-rgb": [28.0, 30.0, 32.0],
                                   "ms-ssim-rgb": [0.90, 0.93, 0.95], "psnr-float": [29.0, 31.0, 33.0]})
    b = RDResults("nerv-rd", results={"bpp": [0.08, 0.15], "psnr-rgb": [28.5, 30.5], "ms-ssim-rgb": [None, 0.94]})
    c = {"name": "bmshj2018-factorized", "description": "CompressAI",
         "results": {"bpp": [0.12, 0.3, 0.5], "psnr": [27.0, 29.5, 31.0], "ms-ssim": [0.89, 0.92, 0.94]}}
    paths = [write_results(tmp_path / "a.json", a), write_results(tmp_path / "b.json", b), tmp_path / "c.json"]
    paths[2].write_text(json.dumps(c))
    return paths


def test_overlay_cli_writes_png(files, tmp_path, capsys):
    out = tmp_path / "rd.png"
    assert main(["bench", "plot", *map(str, files), "-o", str(out), "--title", "test",
                 "--reference", "hinerv-uvg"]) == 0
    _png_ok(out)
    assert main(["bench", "plot", *map(str, files), "-o", str(tmp_path / "ms.png"), "--metric", "ms-ssim"]) == 0
    _png_ok(tmp_path / "ms.png")


def test_curves_of_both_formats(files):
    assert set(load_curves(files[0])) == {"nerv", "nerv float"}
    assert load_curves(files[1], "ms-ssim") == {"nerv-rd": [(0.15, 0.94)]}
    assert load_curves(files[2])["bmshj2018-factorized"][0] == (0.12, 27.0)
    # CompressAI's newer keys
    assert load_curves(files[2], "ms-ssim")["bmshj2018-factorized"][-1] == (0.5, 0.94)


def test_series_style():
    assert series_style("nerv")["color"] == series_style("nerv-rd")["color"] == series_style("nerv-1.5M-qat")["color"]
    assert series_style("nerv")["color"] != series_style("hnerv")["color"]
    assert series_style("x265")["color"] != series_style("x264")["color"] != series_style("nerv")["color"]
    assert series_style("nerv")["marker"] != series_style("nerv-qat")["marker"]
    assert series_style("nerv float")["linestyle"] == "--"
    assert series_style("nerv")["linestyle"] == "-"


def test_reference_curves(tmp_path):
    assert "hinerv-uvg" in reference_names()
    for name in reference_names():
        from nervkit.bench.plot import reference_path

        data = json.loads(reference_path(name).read_text())
        assert data["source"]
        curves = load_curves(reference_path(name))
        assert len(next(iter(curves.values()))) >= 2
    hinerv = load_curves(reference_path("hinerv-uvg"))
    assert next(iter(hinerv.values()))[0] == (0.015, 34.80)
    assert load_curves(reference_path("nvp-uvg")) == {"NVP (paper, UVG)": [(0.21, 36.46), (0.412, 37.47)]}
    assert series_style("NeRV (NVP paper, UVG)")["color"] == series_style("nerv")["color"]  # NeRV's, not NVP's
    _png_ok(plot_overlay([], tmp_path / "ref.png", references=["hinerv-uvg"], metric="ms-ssim"))


@pytest.mark.parametrize("kind", ["missing", "not-json", "no-curves", "reference"])
def test_bad_input_is_one_line_error(kind, files, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    args = [str(files[0])]
    if kind == "missing":
        args.append(str(tmp_path / "nope.json"))
    elif kind == "not-json":
        bad.write_text("not json {")
        args.append(str(bad))
    elif kind == "no-curves":
        bad.write_text(json.dumps({"name": "x", "results": {"bpp": [0.1]}}))
        args.append(str(bad))
    else:
        args += ["--reference", "no-such-paper"]
    out = tmp_path / "rd.png"
    assert main(["bench", "plot", *args, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nervkit: error:") and "\n" not in err
    assert not out.exists()
    assert not list(tmp_path.glob("*.png*"))
