"""Collections of videos in one run (issue #14, for every method): finding the videos (files, a folder
of videos, --list), bringing them to one size (--size, the UVG --tile protocol), cutting them
(--frames, --segment-frames), neighbours that never cross videos, per-video metrics and outputs,
decompress --video, fit -c of a collection's run.json, and the bad inputs — on real encoded clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import cli_ok, gradient_clip, one_line_error, run_cli
from nervkit.data import FrameStore
from nervkit.data.collection import find_videos, load_collection
from nervkit.errors import ConfigError, InputError
from nervkit.io import FrameRange, read_video, write_video

TINY = ["--mlp-hidden", "16", "--grid-channels", "8", "--lower-width", "8", "--threads", "1", "--quiet"]


def _clip(n: int, h: int, w: int, shift: int) -> list[np.ndarray]:
    return [np.roll(f, shift, axis=1) for f in gradient_clip(n, h, w)]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """A folder of three real videos: two 72x128 (mkv, mp4) and one 36x64."""
    folder = tmp_path_factory.mktemp("collection") / "videos"
    folder.mkdir()
    write_video(_clip(6, 72, 128, 0), folder / "a.mkv", fps=25, lossless=True)
    write_video(_clip(5, 72, 128, 17), folder / "b.mkv", fps=10, lossless=True)
    write_video(_clip(4, 36, 64, 5), folder.parent / "small.mkv", fps=25, lossless=True)
    return folder


def test_finding_videos_in_folders_and_list_files(videos, tmp_path):
    found = find_videos([videos])
    assert [(Path(s.path).name, s.name) for s in found] == [("a.mkv", "a"), ("b.mkv", "b")]
    listing = tmp_path / "list.txt"
    listing.write_text(f"# the collection\n{videos}/b.mkv  second video\n\n{videos / 'a.mkv'}\n")
    assert [s.name for s in find_videos([], listing)] == ["second video", "a"]
    assert [s.name for s in find_videos([videos / "a.mkv", videos / "a.mkv"])] == ["a", "a-2"]
    listing.write_text(f"{videos}/a.mkv\nmissing.mkv\n")
    with pytest.raises(InputError, match="line 2: no such file or folder: missing.mkv"):
        find_videos([], listing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="empty folder"):
        find_videos([empty])
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "a.mkv").write_bytes((videos / "a.mkv").read_bytes())
    write_video(_clip(1, 36, 64, 0), mixed / "frames")  # a PNG folder...
    for png in (mixed / "frames").glob("*.png"):
        png.rename(mixed / png.name)  # ...whose images now sit beside the video
    with pytest.raises(InputError, match="both image frames and video files"):
        find_videos([mixed])


def test_tiles_sizes_ranges_and_segments(videos):
    sources = find_videos([videos])
    tiles = load_collection(sources, tile=(36, 64), frames=FrameRange(0, 4))
    assert tiles.names == ("a-01", "a-02", "a-03", "a-04", "b-01", "b-02", "b-03", "b-04")
    assert tiles.segments == (4,) * 8 and tiles.video_fps[:4] == (25.0,) * 4 and tiles.video_fps[4] == 10.0
    full = read_video(videos / "b.mkv").frames  # (N, 3, 72, 128) uint8
    # b-03 is the bottom-left tile (row-major): frames 0..3 of b, rows 36..71, columns 0..63
    assert torch.equal(tiles.frames[24:28], full[:4, :, 36:72, 0:64])
    resized = load_collection(sources, size=(36, 64), segment_frames=4)
    assert resized.names == ("a-s01", "a-s02", "b-s01", "b-s02") and resized.segments == (4, 2, 4, 1)
    with pytest.raises(ConfigError, match="--tile 80x64 is larger than the 72x128 frames"):
        load_collection(sources, tile=(80, 64))
    with pytest.raises(ConfigError, match="different frame sizes"):
        load_collection(find_videos([videos, videos.parent / "small.mkv"]))
    small_tiles = load_collection(sources, tile=(36, 64), size=(18, 32), frames=FrameRange(0, 2))
    assert small_tiles.frames.shape == (16, 3, 18, 32)  # tiles cut at 36x64, then resized


def test_neighbours_never_cross_a_video_boundary():
    frames = torch.arange(5, dtype=torch.uint8).view(5, 1, 1, 1).expand(5, 3, 2, 2).contiguous()
    store = FrameStore(frames, 25.0, segments=(3, 2), names=("x", "y"))
    pairs = (store.neighbours([0, 2, 3, 4]) * 255).round()[:, :, 0, 0, 0]
    # frame 2 ends video x (its next is itself); frame 3 starts video y (its previous is itself)
    assert pairs.tolist() == [[0, 1], [1, 2], [3, 4], [3, 4]]


def test_a_collection_through_the_cli(videos, tmp_path):
    run = tmp_path / "run"
    out = cli_ok("fit", videos, "--tile", "36x64", "--frames", "0:4", "--epochs", 2, "-o", run, *TINY)
    assert "8 videos: mean over the videos PSNR" in out
    meta = json.loads((run / "run.json").read_text())
    assert meta["geometry"]["segments"] == [4] * 8 and [v["name"] for v in meta["videos"]][:2] == ["a-01", "a-02"]
    metrics = json.loads((run / "metrics.json").read_text())["videos"]
    assert metrics["count"] == 8 and len(metrics["per_video"]) == 8
    assert sorted(p.name for p in (run / "decoded").iterdir()) == [f"{v}-0{i}.mp4" for v in "ab" for i in range(1, 5)]
    nerv = tmp_path / "c.nerv"
    cli_ok("compress", run, "-o", nerv, "--no-eval")
    cli_ok("decompress", nerv, "--video", "b-02", "--frames", "1:3", "-o", tmp_path / "one", "--lossless")
    one = read_video(tmp_path / "one").frames
    cli_ok("decompress", nerv, "--frames", "21:23", "-o", tmp_path / "same", "--lossless")  # b-02 starts at 20
    assert one.shape[0] == 2 and torch.equal(one, read_video(tmp_path / "same").frames)
    cli_ok("decode", run, "--video", 5, "-o", tmp_path / "d", "--lossless")
    assert len(list((tmp_path / "d").glob("frame_*.png"))) == 4
    one_line_error(run_cli("decompress", nerv, "--video", "c-01", "-o", tmp_path / "x.mkv"), "--video c-01",
                   "no such video")
    assert not (tmp_path / "x.mkv").exists()
    # the run.json of a collection fits the same collection again
    cli_ok("fit", "-c", run / "run.json", "-o", tmp_path / "again", "--quiet", "--no-video")
    again = json.loads((tmp_path / "again" / "run.json").read_text())
    assert again["videos"] == meta["videos"] and again["geometry"] == meta["geometry"]


def test_bad_collections_are_one_line_errors(videos, tmp_path):
    small = videos.parent / "small.mkv"
    cases = [
        (["fit", videos, small], "different frame sizes"),
        (["fit", videos, "--tile", "80x200"], "larger than"),
        (["fit", "--list", tmp_path / "none.txt"], "no such file"),
        (["fit", tmp_path / "empty"], "no image frames"),
        (["fit", videos, tmp_path / "empty"], "empty folder"),
    ]
    (tmp_path / "empty").mkdir()
    for argv, words in cases:
        one_line_error(run_cli(*argv, "-o", tmp_path / "r", "--epochs", 1, *TINY), words)
        assert not (tmp_path / "r").exists(), argv
