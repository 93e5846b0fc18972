"""``nervkit bench rd``: a real (tiny) rate–distortion comparison — NeRV fitted and compressed into
.nerv files, x264/x265 through ffmpeg — and what it writes: per-series JSON, summary, table, plot."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from helpers import H, N, W, gradient_clip, run_cli
from nervkit.bench import read_results
from nervkit.bench.rd import RDConfig, run_rd_benchmark, variants
from nervkit.bench.rd_report import bd_table
from nervkit.bench.results import RDResults
from nervkit.compress.model_codec import ENCODER_REVISION
from nervkit.errors import ConfigError
from nervkit.io import read_video, write_video

SERIES = {"x264", "x265", "nerv", "nerv-prune20", "nerv-qat", "nerv-prune20-qat"}
CONFIG = RDConfig(methods=("nerv", "x264", "x265"), params=("10k", "20k"), epochs=3, finetune_epochs=1,
                  qat_epochs=1, device="cpu")


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("rd")
    clip = write_video(gradient_clip(), root / "clip.mkv", lossless=True)
    out = root / "out"
    summary = run_rd_benchmark(clip, out, CONFIG, progress=False, log=lambda _m: None)
    return clip, out, summary


def test_outputs_and_series(bench):
    _, out, summary = bench
    assert summary["schema"] == "nervkit-rd-summary/1"
    assert set(summary["series"]) == SERIES
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(summary))
    for name in SERIES:
        rd = read_results(out / "results" / f"{name}.json")
        assert rd.to_dict() == summary["series"][name]
        assert len(rd) == (2 if name.startswith("nerv") else len(rd.results["quality"]))
    assert (out / "rd.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "rd.md").read_text()
    for name in SERIES:
        assert f"| {name} |" in table
    assert "BD against x265" in table and "empirical entropy" in table


def test_neural_points_are_measured_from_the_files(bench):
    clip, out, summary = bench
    pixels = N * H * W
    for variant in variants(CONFIG):
        results = summary["series"][variant.series("nerv")]["results"]
        for i, params in enumerate(CONFIG.params):
            nerv = out / "files" / f"nerv-{params}{variant.suffix}.nerv"
            assert results["bpp"][i] == pytest.approx(nerv.stat().st_size * 8 / pixels)
            run = json.loads((out / "runs" / f"nerv-{params}" / "run.json").read_text())
            assert results["params"][i] == run["parameters"]["official"]
            assert results["encoding_time"][i] >= run["train_seconds"]
    plain, pruned = summary["series"]["nerv"]["results"], summary["series"]["nerv-prune20"]["results"]
    assert all(s == pytest.approx(0.2, abs=0.01) for s in pruned["sparsity"])
    assert all(p < q for p, q in zip(pruned["bpp"], plain["bpp"]))  # the mask coding pays off


def test_quality_is_that_of_the_decoded_file(bench, tmp_path):
    """The RD point's PSNR is what decompress + eval measure on the 8-bit decoded video."""
    clip, out, summary = bench
    decoded = tmp_path / "d.mkv"
    assert run_cli("decompress", out / "files" / "nerv-20k-qat.nerv", "-o", decoded, "--lossless",
                   "--device", "cpu")[0] == 0
    code, text, err = run_cli("eval", clip, decoded, "--json")
    assert code == 0, err
    assert json.loads(text)["psnr"] == pytest.approx(summary["series"]["nerv-qat"]["results"]["psnr-rgb"][1],
                                                     abs=1e-9)


def test_codec_points_and_bd_rates(bench):
    _, _, summary = bench
    x265 = summary["series"]["x265"]["results"]
    assert x265["quality"] == [20, 24, 28, 32, 36, 40]
    assert all(b > 0 for b in x265["bpp"]) and all(v is not None for v in x265["vmaf"])
    assert x265["psnr-rgb"] == sorted(x265["psnr-rgb"], reverse=True)  # higher CRF, lower quality
    bd = summary["bd"]
    assert set(bd) == SERIES - {"x265"}
    assert math.isfinite(bd["x264"]["bd_rate_psnr"]) and bd["x264"]["note"] is None
    for name in SERIES - {"x264", "x265"}:  # 3 epochs at 20k parameters: far below the codecs
        row = bd[name]
        assert row["bd_rate_psnr"] is None and "do not overlap" in row["note"]


def test_entropy_coder_beats_huffman_and_nears_the_entropy(bench):
    _, out, summary = bench
    eff = summary["coding_efficiency"]
    assert eff["values"] > 10_000
    assert eff["ans_bits_per_value"] <= eff["huffman_bits_per_value"]
    assert eff["ans_with_histogram_bits_per_value"] <= eff["huffman_with_table_bits_per_value"]
    assert 1.0 <= eff["ans_over_entropy"] < 1.01
    assert summary["breakdown"]["bytes"] == (out / "files" / "nerv-20k.nerv").stat().st_size


def test_a_second_run_reuses_finished_work(bench):
    clip, out, summary = bench
    watched = [out / "runs" / "nerv-10k" / "checkpoint.pt", out / "files" / "nerv-20k-prune20.nerv",
               out / "results" / "x265.json"]
    before = [p.stat().st_mtime_ns for p in watched]
    logs: list[str] = []
    again = run_rd_benchmark(clip, out, CONFIG, progress=False, log=logs.append)
    assert [p.stat().st_mtime_ns for p in watched] == before
    assert any("reusing the finished fit" in m for m in logs) and any("reusing" in m and "x265" in m for m in logs)
    # the same points (meta records the machine and the minute the summary was written, so not compared)
    assert again["series"]["nerv-qat"]["results"] == summary["series"]["nerv-qat"]["results"]


def test_files_of_an_older_encoder_revision_are_encoded_again(bench):
    clip, out, summary = bench
    stale, fresh = out / "files" / "nerv-20k-prune20.nerv", out / "files" / "nerv-10k.nerv"
    cache = json.loads(stale.with_suffix(".json").read_text())
    assert cache["settings"]["encoder_revision"] == ENCODER_REVISION
    cache["settings"]["encoder_revision"] = ENCODER_REVISION - 1  # as written by the previous quantizer
    stale.with_suffix(".json").write_text(json.dumps(cache))
    before = {p: p.stat().st_mtime_ns for p in (stale, fresh)}
    again = run_rd_benchmark(clip, out, CONFIG, progress=False, log=lambda _m: None)
    assert stale.stat().st_mtime_ns != before[stale] and fresh.stat().st_mtime_ns == before[fresh]
    assert json.loads(stale.with_suffix(".json").read_text())["settings"]["encoder_revision"] == ENCODER_REVISION
    for metric in ("bpp", "psnr-rgb"):  # the same fit and encoder again: the same file and quality
        assert again["series"]["nerv-prune20"]["results"][metric] == summary["series"]["nerv-prune20"]["results"][metric]


def test_a_fit_with_other_settings_is_not_reused(bench):
    clip, out, _ = bench
    with pytest.raises(ConfigError, match="other settings"):
        run_rd_benchmark(clip, out, RDConfig(methods=("nerv",), params=("10k",), epochs=4, anchor="nerv",
                                             device="cpu"), progress=False, log=lambda _m: None)


def test_bd_table_on_synthetic_curves():
    rates = [0.1, 0.2, 0.4, 0.8]
    anchor = RDResults("a", results={"bpp": rates, "psnr-rgb": [30.0, 33.0, 36.0, 39.0]})
    half = RDResults("b", results={"bpp": [r / 2 for r in rates], "psnr-rgb": [30.0, 33.0, 36.0, 39.0]})
    far = RDResults("c", results={"bpp": rates, "psnr-rgb": [10.0, 11.0, 12.0, 13.0]})
    table = bd_table({"a": anchor, "b": half, "c": far}, "a")
    assert table["b"]["bd_rate_psnr"] == pytest.approx(-50.0)
    assert table["b"]["bd_rate_ms_ssim"] is None and "no ms-ssim-rgb" in table["b"]["note"]
    assert table["c"]["bd_rate_psnr"] is None and "do not overlap" in table["c"]["note"]
    assert table["c"]["bd_psnr"] == pytest.approx(11.5 - 34.5)  # mean gap over the same rates


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--methods", "nerv,h266"], ("unknown method", "h266")),
        (["--methods", "x264", "--anchor", "x265"], ("--anchor x265",)),
        (["--methods", "nerv", "--prune", "1.5"], ("--prune",)),
        (["--methods", "nerv", "--params", "lots"], ("lots",)),
        (["--methods", "x264", "--vmaf", "maybe"], ("--vmaf",)),
        (["--methods", "nerv", "--rd-lambdas", "0.1,-1"], ("--rd-lambdas",)),
        (["--methods", "nerv", "--rate-lambdas", "nan"], ("--rate-lambdas",)),
        (["--methods", "nerv", "--rd-lambdas", "0.1", "--rd-epochs", "0"], ("--rd-epochs",)),
    ],
)
def test_cli_bad_options_fail_in_one_line(tmp_path, argv, words):
    clip = write_video(gradient_clip(n=2), tmp_path / "c.mkv", lossless=True)
    code, out, err = run_cli("bench", "rd", clip, "-o", tmp_path / "o", *argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("nervkit: error:"), (code, err)
    for w in words:
        assert w in lines[0]
    assert not (tmp_path / "o").exists()


def test_cli_without_input_fails(tmp_path):
    code, _, err = run_cli("bench", "rd", "-o", tmp_path / "o")
    assert code == 2 and "no input" in err


def test_cli_codecs_only(tmp_path):
    frames = np.stack(gradient_clip(n=4))
    clip = write_video(frames, tmp_path / "c.mkv", lossless=True)
    code, out, err = run_cli("bench", "rd", clip, "--methods", "x264,x265", "--vmaf", "false", "--quiet",
                             "-o", tmp_path / "o")
    assert code == 0, err
    assert "BD-rate (PSNR) of x264 vs x265" in out
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["series"]["x264"]["results"]["vmaf"] == [None] * 5
    assert len(read_video(clip)) == 4


def test_a_list_of_lambdas_gives_rate_trained_curves(tmp_path):
    """--rd-lambdas: every fit also rate fine-tuned at each λ (one series, its RD front); --rate-lambdas: one
    fit per size and λ trained for rate from the start. Every point is a real file that the rate training's
    estimate matches."""
    clip = write_video(gradient_clip(), tmp_path / "clip.mkv", lossless=True)
    config = RDConfig(methods=("nerv",), params=("10k", "20k"), epochs=3, prune=0.0, qat_epochs=0, vmaf=False,
                      rd_lambdas=(0.1, 1.0), rd_epochs=1, rate_lambdas=(0.3,), device="cpu")
    summary = run_rd_benchmark(clip, tmp_path / "out", config, progress=False, log=lambda _m: None)
    assert set(summary["series"]) == {"nerv", "nerv-rd", "nerv-rdfit"}
    files = tmp_path / "out" / "files"
    assert {p.name for p in files.glob("*.nerv")} == {
        "nerv-10k.nerv", "nerv-20k.nerv", "nerv-10k-rd0.1.nerv", "nerv-10k-rd1.nerv", "nerv-20k-rd0.1.nerv",
        "nerv-20k-rd1.nerv", "nerv-10k-rdfit0.3.nerv", "nerv-20k-rdfit0.3.nerv"}
    for name in ("nerv-rd", "nerv-rdfit"):
        results = summary["series"][name]["results"]
        assert 1 <= len(results["bpp"]) and results["bpp"] == sorted(results["bpp"])  # the front, by rate
        assert all(abs(b / e - 1) < 0.01 for b, e in zip(results["bpp"], results["estimated_bpp"]))
    assert all(p < q for p, q in zip(summary["series"]["nerv-rd"]["results"]["psnr-rgb"],
                                     summary["series"]["nerv-rd"]["results"]["psnr-rgb"][1:]))
