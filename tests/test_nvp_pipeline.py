"""NVP through the CLI: fit on pixel samples, compress with real JPEG/HEVC coding of the latent
grids, decompress (bit-identical, any scale), interpolate, inpaint, the 3:1 split, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import nervkit
from helpers import assert_decodes_identically, cli_ok, gradient_clip, one_line_error, run_cli
from nervkit.io import probe_video, write_video

FIT = ["--model", "nvp", "--params", "60k", "--pixels-per-batch", 4096, "--threads", 1, "--quiet", "--no-video"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_video(gradient_clip(), tmp_path_factory.mktemp("nvp") / "clip.mkv", lossless=True)


@pytest.fixture(scope="module")
def fitted(clip: Path) -> Path:
    run = clip.parent / "run"
    cli_ok("fit", clip, "-o", run, "--epochs", 8, *FIT)
    return run


def test_fit_trains_on_pixels_with_the_nvp_recipe(fitted: Path) -> None:
    meta = json.loads((fitted / "run.json").read_text())
    assert meta["method"] == "nvp" and meta["train"]["optimizer"] == "adamw" and meta["train"]["loss"] == "l2"
    assert meta["train"]["lr"] == 1e-2 and meta["train"]["weight_decay"] == 1e-3
    history = json.loads((fitted / "history.json").read_text())
    psnr = [e["psnr"] for e in history["evals"]]
    assert psnr[-1] > 30 and psnr[-1] > psnr[0] + 3  # a smooth clip is learned, and learning goes on


def test_compress_codes_the_grids_with_jpeg_and_hevc(fitted: Path, tmp_path: Path) -> None:
    nerv = tmp_path / "clip.nerv"
    report = json.loads(cli_ok("compress", fitted, "-o", nerv, "--json", "--hevc-crf", 18))
    assert report["bytes"] == nerv.stat().st_size and report["bpp"] == pytest.approx(report["bytes"] * 8 / (8 * 36 * 60))
    fit_psnr = json.loads((fitted / "metrics.json").read_text())["psnr"]
    assert report["psnr"] > fit_psnr - 1.5  # 8-bit grids + codecs cost little
    sections = {s["name"]: s for s in nervkit.inspect(nerv)["sections"]}
    assert sections["sparse.volumes"]["kind"] == "hevc"
    assert all(s["kind"] == "jpeg" for n, s in sections.items() if n.startswith("keyframes."))
    as_weights = tmp_path / "weights.nerv"
    other = json.loads(cli_ok("compress", fitted, "-o", as_weights, "--json", "--latent-codec", "weights"))
    assert other["psnr"] == pytest.approx(report["psnr"], abs=1.5)
    assert {s["kind"] for s in nervkit.inspect(as_weights)["sections"]} <= {"header", "tensor", "sparse"}
    coarse = json.loads(cli_ok("compress", fitted, "-o", tmp_path / "coarse.nerv", "--json", "--jpeg-quality", 20,
                               "--hevc-crf", 40))
    assert coarse["bytes"] < 0.8 * report["bytes"]  # (quality barely moves on this smooth, barely-fitted clip)
    assert_decodes_identically(nerv, tmp_path / "png", 8)


def test_decompress_renders_any_scale_and_interpolates(fitted: Path, tmp_path: Path) -> None:
    nerv = tmp_path / "clip.nerv"
    cli_ok("compress", fitted, "-o", nerv, "--no-eval")
    cli_ok("decompress", nerv, "-o", tmp_path / "x2.mkv", "--scale", 2, "--lossless")
    info = probe_video(tmp_path / "x2.mkv")
    assert (info.height, info.width, info.num_frames) == (72, 120, 8)
    cli_ok("interpolate", nerv, "--factor", 3, "-o", tmp_path / "x3.mkv", "--lossless")
    assert probe_video(tmp_path / "x3.mkv").num_frames == 8 + 7 * 2
    one_line_error(run_cli("decompress", nerv, "-o", tmp_path / "bad.mkv", "--scale", 0), "--scale")
    assert not (tmp_path / "bad.mkv").exists()


def test_scale_needs_a_coordinate_based_method(clip: Path, tmp_path: Path) -> None:
    run = tmp_path / "nerv"
    cli_ok("fit", clip, "-o", run, "--epochs", 1, "--params", "20k", "--threads", 1, "--quiet", "--no-video")
    cli_ok("compress", run, "-o", tmp_path / "nerv.nerv", "--no-eval")
    one_line_error(run_cli("decompress", tmp_path / "nerv.nerv", "-o", tmp_path / "x2.mkv", "--scale", 2),
                   "coordinate-based")


def test_inpainting_fills_the_holes_from_the_rest(clip: Path, tmp_path: Path) -> None:
    run = tmp_path / "inpaint"
    cli_ok("fit", clip, "-o", run, "--epochs", 8, "--mask", "central", *FIT)
    inside = json.loads((run / "metrics.json").read_text())["inpainting"]["inside_mask"]["psnr"]
    # the masked input is black in the holes: ~8 dB there on this clip; the fill is far better
    assert inside > 18


def test_held_out_frames_decode_between_their_neighbours(clip: Path, tmp_path: Path) -> None:
    run = tmp_path / "split"
    cli_ok("fit", clip, "-o", run, "--epochs", 8, "--train-frames", "3:1", *FIT)
    interp = json.loads((run / "metrics.json").read_text())["interpolation"]
    assert interp["heldout_indices"] == [3, 7]
    assert interp["heldout"]["psnr"] > 22 and interp["train"]["psnr"] > interp["heldout"]["psnr"]


def test_an_interrupted_fit_resumes(clip: Path, tmp_path: Path) -> None:
    run = tmp_path / "resume"
    cli_ok("fit", clip, "-o", run, "--epochs", 2, "--checkpoint-every", 1, *FIT)
    state = json.loads((run / "history.json").read_text())
    assert len(state["epochs"]) == 2
    code, _, err = run_cli("fit", clip, "-o", run, "--epochs", 2, *FIT)
    assert code == 2 and "--resume" in err
    cli_ok("fit", "-o", run, "--resume", "--quiet", "--no-video")  # finished: nothing left to do


def test_a_bpp_budget_sizes_the_model(clip: Path, tmp_path: Path) -> None:
    """--params 28bpp: parameters whose 8-bit values take 28 bits per pixel (the papers' quantized-only
    rate); the file, with its grids JPEG/HEVC-coded, is smaller than that."""
    run = tmp_path / "bpp"
    cli_ok("fit", clip, "-o", run, "--epochs", 1, *[a if a != "60k" else "28bpp" for a in FIT])
    meta = json.loads((run / "run.json").read_text())
    assert meta["bpp_budget"] == 28 and meta["params_budget"] == round(28 * 8 * 36 * 60 / 8)
    assert abs(meta["parameters"]["official"] - meta["params_budget"]) < 0.03 * meta["params_budget"]
    report = json.loads(cli_ok("compress", run, "-o", tmp_path / "bpp.nerv", "--json", "--no-eval"))
    assert report["bpp"] < 28
    bad = ["--model", "nvp", "--params", "0bpp", "--epochs", 1, "--quiet", "--no-video"]
    one_line_error(run_cli("fit", clip, "-o", tmp_path / "bad", *bad), "bpp")
    assert not (tmp_path / "bad").exists()


def test_a_scale_too_small_for_one_pixel_is_a_clean_error(fitted: Path, tmp_path: Path) -> None:
    """Hostile-input D15: --scale 0.01 of a 36x60 fit used to fail inside torch.cat (internal error)."""
    nerv = tmp_path / "clip.nerv"
    cli_ok("compress", fitted, "-o", nerv, "--no-eval")
    line = one_line_error(run_cli("decompress", nerv, "-o", tmp_path / "x.mkv", "--scale", "0.01"), "--scale")
    assert "at least" in line and not (tmp_path / "x.mkv").exists()
