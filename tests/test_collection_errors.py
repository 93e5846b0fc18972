"""Bad collections through the CLI (issue #14): every case is exit 2, one ``nervkit: error:`` line on
stderr, no traceback, and no run folder or output left behind — a list file naming a missing video (or a
folder that is not one video), a folder mixing frames and videos, ``decompress --video`` / ``decode
--video`` naming no video of the file or run; and D-NeRV on videos shorter than one clip, which is
accepted (padded and masked out of the loss, as the official code does) rather than refused.
(The cases of tests/test_collections.py: different sizes without --size, --tile larger than the
frames, a missing list file, empty folders.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import cli_ok, gradient_clip, one_line_error, run_cli

from nervkit.io import read_video, write_video

TINY = ["--mlp-hidden", "16", "--grid-channels", "8", "--lower-width", "8", "--threads", "1", "--quiet"]
#: a tiny D-NeRV (about 20 k parameters, a small stem) for fits of a few seconds
TINY_DNERV = ["--model", "d-nerv", "--params", "20k", "--batch-size", "2", "--threads", "1", "--quiet"]


def _clip(n: int, shift: int, h: int = 36, w: int = 64) -> list[np.ndarray]:
    return [np.roll(f, shift, axis=1) for f in gradient_clip(n, h, w)]


def _png_frames(folder: Path, n: int) -> None:
    """``n`` PNG frames written straight into ``folder`` (which may hold other files)."""
    tmp = folder / ".frames-tmp"
    write_video(_clip(n, 3), tmp)
    for png in tmp.glob("*.png"):
        png.rename(folder / png.name)
    shutil.rmtree(tmp)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """A folder with two real 36x64 videos (6 and 5 frames), a folder of frames, a folder of videos, a
    folder mixing frames and a video, and an empty folder."""
    root = tmp_path_factory.mktemp("collection-errors")
    folder = root / "videos"
    folder.mkdir()
    write_video(_clip(6, 0), folder / "a.mkv", fps=25, lossless=True)
    write_video(_clip(5, 17), folder / "b.mkv", fps=25, lossless=True)
    (root / "frames").mkdir()
    _png_frames(root / "frames", 3)
    (root / "mixed").mkdir()
    shutil.copy(folder / "a.mkv", root / "mixed" / "a.mkv")
    _png_frames(root / "mixed", 2)
    (root / "empty").mkdir()
    return folder


@pytest.fixture(scope="module")
def fitted(videos, tmp_path_factory) -> tuple[Path, Path]:
    """A tiny NeRV run over the two videos and its .nerv file."""
    root = tmp_path_factory.mktemp("collection-fit")
    run, nerv = root / "run", root / "c.nerv"
    cli_ok("fit", videos, "--epochs", 1, "--no-video", "-o", run, *TINY)
    cli_ok("compress", run, "-o", nerv, "--no-eval")
    return run, nerv


def _refused(argv: list[object], out: Path, *words: str) -> str:
    """``nervkit ARGV -o OUT`` is a one-line error naming ``words`` and leaves nothing at ``out``."""
    line = one_line_error(run_cli(*argv, "-o", out), *words)
    assert not out.exists(), (argv, sorted(p.name for p in out.parent.iterdir()))
    return line


def _leftovers(folder: Path) -> list[str]:
    """Temporaries a command might have left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if "nervkit-" in p.name or p.name.endswith(".partial"))


# -- --list ------------------------------------------------------------------------------------------------
def test_a_list_naming_a_missing_video_names_the_file_and_the_line(videos, tmp_path):
    listing = tmp_path / "videos.txt"
    listing.write_text(f"# two videos\n{videos / 'a.mkv'} first\n\nnope.mkv second\n")
    line = _refused(["fit", "--list", listing, "--epochs", 1, *TINY], tmp_path / "run", "line 4",
                    "no such file or folder: nope.mkv", str(listing))
    assert "Traceback" not in line
    listing.write_text(f"{videos / 'a.mkv'}\n{videos / 'gone.mkv'}\n")  # an absolute path
    _refused(["fit", "--list", listing, "--epochs", 1, *TINY], tmp_path / "run", "line 2",
             str(videos / "gone.mkv"))
    # the same with D-NeRV: refused before its key-frame codec or any run folder
    _refused(["fit", "--list", listing, "--epochs", 1, *TINY_DNERV], tmp_path / "run", "line 2", "gone.mkv")
    assert _leftovers(tmp_path) == []


def test_a_list_line_is_one_video(videos, tmp_path):
    """A line names a video file or a folder of frames: a folder of videos, a folder mixing frames and
    videos, or an empty folder is refused naming the line (a mixed folder used to be read as its frames,
    the video silently left out)."""
    root = videos.parent
    cases = [("videos", "folder of video files"), ("mixed", "both image frames and video files"),
             ("empty", "empty folder")]
    for folder, words in cases:
        listing = root / f"{folder}.list"
        listing.write_text(f"videos/a.mkv\n{folder}  the {folder}\n")
        _refused(["fit", "--list", listing, "--epochs", 1, *TINY], tmp_path / "run", "line 2", folder, words)
    listing = root / "frames.list"  # a folder of frames is one video
    listing.write_text("frames\n")
    cli_ok("fit", "--list", listing, "--size", "36x64", "--epochs", 1, "--no-video", "-o", tmp_path / "ok", *TINY)
    meta = json.loads((tmp_path / "ok" / "run.json").read_text())
    assert [v["name"] for v in meta["videos"]] == ["frames"] and meta["geometry"]["segments"] == [3]


# -- a folder of frames and videos -----------------------------------------------------------------------
def test_a_folder_mixing_frames_and_videos_is_refused(videos, tmp_path):
    mixed = videos.parent / "mixed"
    for argv in (["fit", mixed, *TINY], ["fit", videos / "a.mkv", mixed, *TINY],
                 ["fit", videos, mixed, "--size", "36x64", *TINY], ["fit", mixed, *TINY_DNERV]):
        line = _refused([*argv, "--epochs", 1], tmp_path / "run", str(mixed),
                        "both image frames and video files")
        assert "not a mix" in line
    assert _leftovers(tmp_path) == []


# -- decompress / decode --video -------------------------------------------------------------------------
@pytest.mark.parametrize("video", ["c", "a-01", "2", "99", "-1", "1.5"])
def test_video_naming_no_video_lists_the_videos(fitted, tmp_path, video):
    run, nerv = fitted
    for command, source in (("decompress", nerv), ("decode", run)):
        for out in (tmp_path / "x.mkv", tmp_path / "frames", tmp_path / "x.mp4"):
            line = _refused([command, source, "--video", video, *(["--lossless"] if out.suffix != ".mp4" else [])],
                            out, f"--video {video}", "no such video", "holds 2", "0..1: a, b")
            assert line.count("\n") == 0
    assert _leftovers(tmp_path) == [] and _leftovers(run) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_video_by_name_or_index_still_decodes(fitted, tmp_path):
    run, nerv = fitted
    cli_ok("decompress", nerv, "--video", "b", "-o", tmp_path / "b.mkv", "--lossless")
    cli_ok("decompress", nerv, "--video", 1, "-o", tmp_path / "b1.mkv", "--lossless")
    b = read_video(tmp_path / "b.mkv").frames
    assert b.shape[0] == 5 and (b == read_video(tmp_path / "b1.mkv").frames).all()
    cli_ok("decode", run, "--video", 1, "-o", tmp_path / "run-b", "--lossless")  # the float model: PNGs
    assert len(list((tmp_path / "run-b").glob("frame_*.png"))) == 5


# -- D-NeRV on videos shorter than one clip ----------------------------------------------------------------
def test_d_nerv_pads_videos_shorter_than_one_clip(videos, tmp_path):
    """The official code (dataset.py, spec §1.1) pads a clip past its video's end with the last frame and
    masks those frames out of the loss, so a video shorter than --clip-length is not bad input: here 5
    frames and 1 frame with clips of 8 fit, score and decode alone. A one-frame video, where the official
    relative time (f - 1)/(L - 1) divides by zero, gets t = 0 (nervkit.data.clips)."""
    one = tmp_path / "one.mkv"
    write_video(_clip(1, 9), one, fps=25, lossless=True)
    run = tmp_path / "run"
    out = cli_ok("fit", videos / "b.mkv", one, "--epochs", 1, "--no-video", "-o", run, *TINY_DNERV)
    assert "2 videos" in out
    meta = json.loads((run / "run.json").read_text())
    assert meta["geometry"]["segments"] == [5, 1] and meta["config"]["clip_length"] == 8
    per_video = json.loads((run / "metrics.json").read_text())["videos"]["per_video"]
    assert len(per_video) == 2 and all(np.isfinite(v["psnr"]) for v in per_video)
    nerv = tmp_path / "d.nerv"
    cli_ok("compress", run, "-o", nerv, "--no-eval")
    cli_ok("decompress", nerv, "--video", "one", "-o", tmp_path / "one-decoded.mkv", "--lossless")
    assert read_video(tmp_path / "one-decoded.mkv").frames.shape[0] == 1
    # what is refused is a clip length out of range, at config resolution: no run folder
    for value, words in ((0, "--clip-length"), (257, "--clip-length")):
        _refused(["fit", videos / "b.mkv", "--clip-length", value, "--epochs", 1, *TINY_DNERV], tmp_path / "bad",
                 words)
