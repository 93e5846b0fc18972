"""``nervkit inspect`` of a D-NeRV file shows its key-frames apart from the model: codec and quality, the
number of key-frames, their bitstream bytes (in all and per key-frame) and what storing them costs, and
a byte breakdown (header + model + key-frames + container) that adds up to the file size. A tiny
D-NeRV is fitted through the CLI on two videos cut from the bundled Bunny clip and compressed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import cli_ok

from nervkit.compress.model_codec import read_nerv
from nervkit.io import FrameRange, intra, read_video

BUNNY = Path(__file__).resolve().parents[1] / "src" / "nervkit" / "assets" / "bigbuckbunny.mp4"
#: frames 0:17 cut into two videos of 9 and 8 frames, clips of 8: key-frames 0, 8 | 9, 16
KEY_FRAMES = [0, 8, 9, 16]


@pytest.fixture(scope="module")
def nerv(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("inspect_key_frames")
    run = folder / "run"
    cli_ok("fit", BUNNY, "--model", "d-nerv", "--frames", "0:17", "--segment-frames", 9, "--size", "36x64",
           "--params", "60k", "--epochs", 1, "--batch-size", 2, "-o", run, "--quiet", "--no-video", "--threads", 1)
    cli_ok("compress", run, "-o", folder / "r.nerv", "--no-eval")
    return folder / "r.nerv"


def test_inspect_json_shows_the_key_frames_apart(nerv: Path) -> None:
    data = json.loads(cli_ok("inspect", nerv, "--json"))
    lengths = read_nerv(nerv).tensors["keyframe_lengths"].tolist()
    keys = data["key_frames"]
    assert data["method"] == "d-nerv" and data["config"]["keyframe_codec"] == "av1"
    assert (keys["codec"], keys["quality"], keys["quality_name"]) == ("av1", 32, "crf")  # -1: the default
    assert keys["count"] == len(KEY_FRAMES) == len(lengths)
    assert keys["bytes_per_key_frame"] == lengths and keys["bytes"] == sum(lengths) > 0
    assert keys["mean_bytes_per_key_frame"] == pytest.approx(sum(lengths) / len(lengths))
    assert keys["bits_per_key_frame_pixel"] == pytest.approx(8 * sum(lengths) / (len(lengths) * 36 * 64))
    # the bitstreams are the codec's own: coding the same key-frames again gives the same bytes
    frames = read_video(BUNNY, frames=FrameRange.parse("0:17"), size=(36, 64)).frames
    assert [len(s) for s in intra.encode_images(frames[KEY_FRAMES], "av1")] == lengths

    sections = {s["name"]: s for s in data["sections"]}
    key_sections = ("keyframe_bitstream", "keyframe_lengths")
    assert {sections[n]["group"] for n in key_sections} == {"key_frames"}
    assert keys["stored_bytes"] == sum(sections[n]["bytes"] for n in key_sections)
    assert keys["storage_overhead_bytes"] == keys["stored_bytes"] - keys["bytes"] > 0
    model = sum(s["bytes"] for n, s in sections.items() if n not in (*key_sections, "header"))
    parts = data["parts"]
    assert parts == {"header": sections["header"]["bytes"], "model": model, "key_frames": keys["stored_bytes"],
                     "container_overhead": data["container_overhead_bytes"]}
    assert data["model_bytes"] == model > keys["stored_bytes"]
    assert sum(parts.values()) == data["bytes"] == nerv.stat().st_size
    pixels = 17 * 36 * 64
    assert data["model_bpp"] == pytest.approx(model * 8 / pixels)
    assert keys["video_bpp"] == pytest.approx(keys["stored_bytes"] * 8 / pixels)


def test_inspect_text_shows_the_key_frames_apart(nerv: Path) -> None:
    data = json.loads(cli_ok("inspect", nerv, "--json"))
    keys, parts = data["key_frames"], data["parts"]
    text = cli_ok("inspect", nerv)
    lines = text.splitlines()
    line = next(x for x in lines if x.startswith("bytes:"))
    assert (f"header {parts['header']:,} + model {parts['model']:,} + key-frames {parts['key_frames']:,} + "
            f"container {parts['container_overhead']:,} = {nerv.stat().st_size:,}") in line
    line = next(x for x in lines if x.startswith("key-frames:"))
    assert line.startswith(f"key-frames: 4 x av1 crf 32: {keys['bytes']:,} bytes of bitstreams"), line
    per = next(x for x in lines if "bytes per key-frame:" in x)
    assert per.split(":", 1)[1].strip() == ", ".join(f"{n:,}" for n in keys["bytes_per_key_frame"])
    assert any(f"stored in {keys['stored_bytes']:,} bytes" in x for x in lines)
    assert "keyframe_bitstream" in text  # the section table is still there


def test_files_without_key_frames_have_none(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cli_ok("fit", BUNNY, "--frames", "0:4", "--size", "36x64", "--params", "20k", "--epochs", 1, "-o", run,
           "--quiet", "--no-video", "--threads", 1)
    cli_ok("compress", run, "-o", tmp_path / "n.nerv", "--no-eval")
    data = json.loads(cli_ok("inspect", tmp_path / "n.nerv", "--json"))
    assert data["key_frames"] is None and data["parts"]["key_frames"] == 0
    assert sum(data["parts"].values()) == data["bytes"]
    text = cli_ok("inspect", tmp_path / "n.nerv")
    assert "key-frames" not in text and "bytes:   header" in text
