"""fit → compress → decompress → eval from the CLI and the API: real .nerv files, bpp from the file,
bit-identical decoding, and clean one-line errors for damaged files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import nervkit
from helpers import cli_ok, gradient_clip, run_cli
from nervkit.io import probe_video, read_video, write_video

SMALL_MODEL = ["--mlp-hidden", "32", "--grid-channels", "16", "--lower-width", "16"]




def fails(*argv: object, words: tuple[str, ...] = (), absent: Path | None = None) -> str:
    code, out, err = run_cli(*argv)
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("nervkit"), (code, out, err)
    assert "Traceback" not in err and "internal error" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])
    if absent is not None:
        assert not absent.exists()
        assert not [p for p in absent.parent.iterdir() if p.name.startswith(f".{absent.name}.")]
    return lines[0]


@pytest.fixture(scope="module")
def compressed(tmp_path_factory) -> tuple[Path, Path, Path, dict]:
    """(clip, run, .nerv file, compress --json report), made once for the module."""
    root = tmp_path_factory.mktemp("compress")
    clip = write_video(gradient_clip(), root / "clip.mkv", lossless=True)
    run = root / "run"
    cli_ok("fit", clip, "-o", run, "--epochs", 4, "--lr", "2e-3", "--quiet", "--no-video", "--threads", 1,
       *SMALL_MODEL)
    nerv = root / "video.nerv"
    report = json.loads(cli_ok("compress", run, "-o", nerv, "--json"))
    return clip, run, nerv, report


def test_compress_reports_bpp_from_the_real_file(compressed):
    clip, run, nerv, report = compressed
    info = probe_video(clip)
    assert report["bytes"] == nerv.stat().st_size
    assert report["bpp"] == pytest.approx(nerv.stat().st_size * 8 / (info.num_frames * info.height * info.width))
    params = json.loads((run / "run.json").read_text())["parameters"]["total"]
    assert nerv.stat().st_size < params * 4  # far smaller than float32 weights
    assert nerv.read_bytes()[:8] == b"\x89NERV\r\n\x1a"


def test_reported_quality_equals_decompress_plus_eval(compressed, tmp_path):
    clip, _, nerv, report = compressed
    out = tmp_path / "dec.mkv"
    cli_ok("decompress", nerv, "-o", out, "--lossless")
    measured = json.loads(cli_ok("eval", clip, out, "--json"))
    # the report is on float frames, the file on 8-bit frames: equal up to the 8-bit rounding
    assert measured["psnr"] == pytest.approx(report["psnr"], abs=0.15)
    assert measured["ms_ssim"] == pytest.approx(report["ms_ssim"], abs=0.005)


def test_decoding_is_bit_identical_and_ranges_work(compressed, tmp_path):
    clip, _, nerv, _ = compressed
    a, b = tmp_path / "a/", tmp_path / "b/"
    cli_ok("decompress", nerv, "-o", a, "--lossless")
    cli_ok("decompress", nerv, "-o", b, "--lossless")
    fa, fb = read_video(a).frames, read_video(b).frames
    assert torch.equal(fa, fb) and fa.shape == read_video(clip).frames.shape
    cli_ok("decompress", nerv, "-o", tmp_path / "r/", "--frames", "2:5")
    assert torch.equal(read_video(tmp_path / "r/").frames, fa[2:5])
    cli_ok("decompress", nerv, "-o", tmp_path / "one/", "--frames", "6")
    assert torch.equal(read_video(tmp_path / "one/").frames, fa[6:7])


def test_api_round_trip_matches_the_cli(compressed, tmp_path):
    _, run, nerv, report = compressed
    again = nervkit.compress(run, tmp_path / "api.nerv")
    assert (tmp_path / "api.nerv").read_bytes() == nerv.read_bytes()  # deterministic encoder
    assert again["psnr"] == report["psnr"]
    nervkit.decompress(nerv, tmp_path / "api/", lossless=True)
    assert len(list((tmp_path / "api").glob("frame_*.png"))) == 8


def test_inspect_breakdown_adds_up(compressed):
    _, _, nerv, _ = compressed
    data = json.loads(cli_ok("inspect", nerv, "--json"))
    assert data["method"] == "nerv" and data["frames"] == 8 and data["size"] == [36, 60]
    assert data["quantization"] == {"bits": 8, "embed_bits": 6}
    total = sum(s["bytes"] for s in data["sections"]) + data["container_overhead_bytes"]
    assert total == nerv.stat().st_size
    weights = [s for s in data["sections"] if s["kind"] == "tensor"]
    assert weights and all(s["values"] > 0 for s in weights)
    text = cli_ok("inspect", nerv)
    assert "bits/value" in text and "stem.0.weight" in text


@pytest.mark.parametrize("damage", ["truncate", "flip", "magic", "empty", "version"])
def test_damaged_files_give_one_line_errors_and_no_output(compressed, tmp_path, damage):
    _, _, nerv, _ = compressed
    data = bytearray(nerv.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[len(data) // 3] ^= 0x40
    elif damage == "magic":
        data[:4] = b"RIFF"
    elif damage == "empty":
        data = bytearray()
    elif damage == "version":
        data[8:10] = (99).to_bytes(2, "little")
    bad = tmp_path / "bad.nerv"
    bad.write_bytes(bytes(data))
    fails("decompress", bad, "-o", tmp_path / "out.mp4", absent=tmp_path / "out.mp4")
    fails("inspect", bad)


def test_other_bad_inputs(compressed, tmp_path):
    _, run, nerv, _ = compressed
    fails("decompress", tmp_path, "-o", tmp_path / "o.mp4", absent=tmp_path / "o.mp4")  # a folder
    fails("decompress", tmp_path / "missing.nerv", "-o", tmp_path / "o.mp4", absent=tmp_path / "o.mp4")
    fails("decompress", nerv, "-o", tmp_path / "o.mp4", "--frames", "50:60", absent=tmp_path / "o.mp4")
    fails("compress", run, "-o", tmp_path / "x.nerv", "--bits", "0", absent=tmp_path / "x.nerv")
    fails("compress", tmp_path / "norun", "-o", tmp_path / "x.nerv", absent=tmp_path / "x.nerv")
    fails("compress", run, "-o", tmp_path, words=("folder",))


def test_pruning_with_finetuning_and_qat(compressed, tmp_path):
    _, run, nerv, plain = compressed
    pruned = json.loads(cli_ok("compress", run, "-o", tmp_path / "p.nerv", "--prune", "0.5", "--finetune-epochs",
                           1, "--qat-epochs", 1, "--quiet", "--json"))
    assert pruned["bytes"] < 0.75 * plain["bytes"]
    assert abs(pruned["sparsity"] - 0.5) < 0.02
    data = json.loads(cli_ok("inspect", tmp_path / "p.nerv", "--json"))
    assert any(s["kind"] == "sparse" for s in data["sections"])
    # the decoded network really has the zeros
    from nervkit.compress.model_codec import read_nerv

    model = read_nerv(tmp_path / "p.nerv").build_model()
    assert (model.stem[0].weight == 0).float().mean() > 0.3
    fails("compress", run, "-o", tmp_path / "x.nerv", "--prune", "1.5", words=("--prune",),
          absent=tmp_path / "x.nerv")
    fails("compress", run, "-o", tmp_path / "x.nerv", "--finetune-epochs", "2", absent=tmp_path / "x.nerv")
