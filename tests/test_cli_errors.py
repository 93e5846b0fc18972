"""Bad input to the ``nervkit`` command line: exit status 2, exactly one ``nervkit…`` line on stderr
naming the problem, no traceback, and nothing left behind at the output path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from helpers import H, N, W, gradient_clip, run_cli, write_audio_only, write_bayer_video  # noqa: F401
from nervkit.io import write_video



def run_process(*argv: object) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NERVKIT_DEBUG"}
    proc = subprocess.run([sys.executable, "-m", "nervkit", *map(str, argv)], capture_output=True, text=True,
                          timeout=120, env=env)
    return proc.returncode, proc.stdout, proc.stderr


def check_error(result: tuple[int, str, str], *words: str) -> str:
    code, out, err = result
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), err
    assert lines[0].startswith("nervkit"), lines[0]
    assert "internal error" not in lines[0], lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def fails(*argv: object, words: tuple[str, ...] = (), absent: Path | None = None,
          process: bool = False) -> str:
    """Run ``nervkit ARGV`` (in-process, or as a subprocess); it must fail cleanly, leaving ``absent``
    absent."""
    if absent is not None:
        assert not absent.exists()
    line = check_error(run_process(*argv) if process else run_cli(*argv), *words)
    if absent is not None:
        assert not absent.exists(), f"{absent} was left behind after: {line}"
        leftovers = [p.name for p in absent.parent.iterdir() if p.name.startswith(f".{absent.name}.")]
        assert not leftovers, leftovers
    return line


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_video(gradient_clip(), tmp_path_factory.mktemp("cli_err") / "clip.mkv", fps=25, lossless=True)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, clip) -> Path:
    run = tmp_path_factory.mktemp("cli_err_runs") / "run"
    code, _, err = run_cli("fit", clip, "-o", run, "--params", "20k", "--epochs", 1, "--quiet", "--no-video",
                        "--threads", 1)
    assert code == 0, err
    return run


FIT = ("--params", "20k", "--epochs", "1", "--quiet")


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


# inputs -------------------------------------------------------------------------------------------------
def test_missing_input_file(tmp_path):
    missing = tmp_path / "nope.mp4"
    fails("fit", missing, "-o", tmp_path / "run", *FIT, words=(str(missing), "no such file"),
          absent=tmp_path / "run", process=True)


def test_text_file_as_video(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("this is not a video\n" * 50)
    fails("fit", notes, "-o", tmp_path / "run", *FIT, words=(str(notes), "not a video"), absent=tmp_path / "run")


def test_random_bytes_mp4(tmp_path):
    junk = tmp_path / "random.mp4"
    junk.write_bytes(np.random.default_rng(1).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    fails("fit", junk, "-o", tmp_path / "run", *FIT, words=(str(junk),), absent=tmp_path / "run", process=True)


def test_video_without_frames(tmp_path):
    y4m = tmp_path / "empty.y4m"
    with av.open(str(y4m), "w") as container:
        stream = container.add_stream("rawvideo", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 36, "yuv420p"
        container.start_encoding()
    fails("fit", y4m, "-o", tmp_path / "run", *FIT, words=(str(y4m), "no frames"), absent=tmp_path / "run")

    audio = write_audio_only(tmp_path / "audio.mkv")
    fails("fit", audio, "-o", tmp_path / "run", *FIT, words=(str(audio), "no video stream"),
          absent=tmp_path / "run")


def test_truncated_mp4(tmp_path, io_clip, io_encode):
    rng = np.random.default_rng(0)
    frames = [np.clip(f.astype(int) + rng.integers(-20, 20, f.shape), 0, 255).astype(np.uint8)
              for f in io_clip(40, 36, 64)]
    for name, options in (("end.mp4", None), ("front.mp4", {"movflags": "+faststart"})):
        full = io_encode(tmp_path / name, frames, "libx264", "yuv420p", container_options=options)
        cut = tmp_path / f"cut_{name}"
        data = full.read_bytes()
        cut.write_bytes(data[: len(data) // 2])
        fails("fit", cut, "-o", tmp_path / "run", *FIT, words=(str(cut), "truncated or corrupt"),
              absent=tmp_path / "run")


def test_unsupported_pixel_format(tmp_path):
    path = write_bayer_video(tmp_path / "bayer.nut")
    fails("fit", path, "-o", tmp_path / "run", *FIT, words=("unsupported pixel format bayer_rggb8", str(path)),
          absent=tmp_path / "run")


def test_frames_too_small_for_the_model(tmp_path, clip):
    fails("fit", clip, "-o", tmp_path / "run", *FIT, "--size", "8x8", words=("8x8", "too small"),
          absent=tmp_path / "run")
    fails("fit", clip, "-o", tmp_path / "run", "--epochs", "1", "--quiet", "--strides", "5,2,2,2,2",
          words=("36x60", "5,2,2,2,2"), absent=tmp_path / "run")


# options ------------------------------------------------------------------------------------------------
BAD_OPTIONS = [
    (["--epochs", "0"], ("--epochs",)),
    (["--epochs", "abc"], ("epochs", "abc")),
    (["--lr", "-1"], ("--lr",)),
    (["--size", "0x5"], ("0x5",)),
    (["--size", "banana"], ("banana",)),
    (["--frames", "5:2"], ("5:2",)),
    (["--frames", "100:200"], ("100", "8 frames")),
    (["--loss", "foo"], ("foo",)),
    (["--model", "nope"], ("nope",)),
    (["--preset", "XXL"], ("XXL",)),
    (["--params", "abc"], ("--params", "abc")),
    (["--preset", "S", "--params", "1M"], ("preset", "--params")),
    (["--activation", "tanhh"], ("tanhh",)),
]


@pytest.mark.parametrize("options, words", BAD_OPTIONS, ids=[" ".join(o) for o, _ in BAD_OPTIONS])
def test_nonsense_options(tmp_path, clip, options, words):
    base = ["--epochs", "1", "--quiet"] if "--epochs" not in options else ["--quiet"]
    if "--params" not in options and "--preset" not in options:
        base += ["--params", "20k"]
    fails("fit", clip, "-o", tmp_path / "run", *base, *options, words=words, absent=tmp_path / "run")


def test_nonsense_option_in_a_subprocess(tmp_path, clip):
    fails("fit", clip, "-o", tmp_path / "run", "--epochs", "0", "--quiet", words=("--epochs",),
          absent=tmp_path / "run", process=True)


# run folders --------------------------------------------------------------------------------------------
def test_output_folder_that_already_holds_a_run(tmp_path, small_run, clip):
    before = snapshot(small_run)
    fails("fit", clip, "-o", small_run, *FIT, words=(str(small_run), "already holds a run", "--resume"))
    assert snapshot(small_run) == before


def test_decode_of_a_folder_that_is_not_a_run(tmp_path):
    folder = tmp_path / "notarun"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    fails("decode", folder, "-o", tmp_path / "out.mkv", "--lossless", words=(str(folder), "not a nervkit run"),
          absent=tmp_path / "out.mkv")
    fails("decode", tmp_path / "missing", "-o", tmp_path / "out.mkv", words=("no such run folder",),
          absent=tmp_path / "out.mkv")


@pytest.fixture
def corrupt_run(tmp_path, small_run) -> Path:
    run = tmp_path / "corrupt"
    shutil.copytree(small_run, run)
    (run / "checkpoint.pt").write_bytes(np.random.default_rng(2).integers(0, 256, 5000, np.uint8).tobytes())
    return run


def test_decode_of_a_run_with_a_corrupt_checkpoint(tmp_path, corrupt_run):
    ckpt = corrupt_run / "checkpoint.pt"
    fails("decode", corrupt_run, "-o", tmp_path / "out.mkv", "--lossless", words=(str(ckpt), "corrupt"),
          absent=tmp_path / "out.mkv")
    fails("decode", corrupt_run, "-o", tmp_path / "frames/", words=(str(ckpt), "corrupt"),
          absent=tmp_path / "frames")
    fails("decode", corrupt_run, "-o", tmp_path / "out.mp4", words=(str(ckpt), "corrupt"),
          absent=tmp_path / "out.mp4", process=True)


def test_decode_of_a_checkpoint_that_does_not_match_its_model(tmp_path, small_run):
    run = tmp_path / "mismatch"
    shutil.copytree(small_run, run)
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    key = next(iter(state["model"]))
    state["model"][key] = torch.zeros(3, 3)  # a readable checkpoint with a wrongly shaped tensor
    torch.save(state, run / "checkpoint.pt")
    fails("decode", run, "-o", tmp_path / "out.mp4", words=("checkpoint does not match",),
          absent=tmp_path / "out.mp4")


def test_failed_decode_keeps_an_existing_output(tmp_path, corrupt_run, clip):
    out = tmp_path / "out.mp4"
    write_video(gradient_clip(2), out)
    data = out.read_bytes()
    fails("decode", corrupt_run, "-o", out, words=("corrupt",))
    assert out.read_bytes() == data


def test_decode_with_a_bad_frame_range(tmp_path, small_run):
    fails("decode", small_run, "-o", tmp_path / "out.mkv", "--frames", "20:30", words=("20",),
          absent=tmp_path / "out.mkv")


def test_info_of_a_missing_folder(tmp_path):
    fails("info", tmp_path / "missing", words=(str(tmp_path / "missing"),))
    fails("info", tmp_path / "missing", "--json", words=("no such run folder",))


def test_resume_of_a_folder_without_a_run(tmp_path):
    fails("fit", "--resume", "-o", tmp_path / "nothing", words=(str(tmp_path / "nothing"),),
          absent=tmp_path / "nothing")


# eval ---------------------------------------------------------------------------------------------------
def test_eval_of_videos_that_differ(tmp_path, clip):
    shorter = write_video(gradient_clip(5), tmp_path / "short.mkv", lossless=True)
    smaller = write_video(gradient_clip(N, 36, 64), tmp_path / "small.mkv", lossless=True)
    fails("eval", clip, shorter, "-o", tmp_path / "r.json", words=("8", "5"), absent=tmp_path / "r.json")
    fails("eval", clip, smaller, "-o", tmp_path / "r.json", words=("36x60", "36x64"), absent=tmp_path / "r.json")
    fails("eval", clip, tmp_path / "missing.mkv", words=(str(tmp_path / "missing.mkv"),))
