"""Never lose a user's data: the reproductions of ../shared/reviews/hostile-inputs-2026-11.md as tests.

F1–F5, F7, F11–F16 (outputs, locks, OS errors, options, the Python API); F6 and F10 are in
test_hostile_nerv.py, F8 in test_io_truncated.py, F9 in test_sigkill_resume.py. Every case runs the real
command on real files: a finished tiny run, its ``.nerv`` file, real read-only and full file systems
(tmpfs mounted in a private mount namespace), real concurrent processes and real SIGKILLs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import nervkit
from helpers import cli_ok, gradient_clip, one_line_error, run_cli
from nervkit.errors import NervkitError
from nervkit.io import write_video
from nervkit.io.atomic import sweep_stale_temporaries

TINY = ["--mlp-hidden", "32", "--grid-channels", "16", "--lower-width", "16", "--threads", "1", "--quiet",
        "--no-video"]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (recursively, hidden ones too) with its content hash."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def hidden_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".nervkit-" in p.name and ".partial" in p.name)


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NERVKIT_DEBUG", None)
    return env


def nervkit_process(*argv: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nervkit", *map(str, argv)], capture_output=True, text=True,
                          env=subprocess_env(), cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def clip(work: Path) -> Path:
    return write_video(gradient_clip(), work / "clip.mkv", fps=25, lossless=True)


@pytest.fixture(scope="module")
def run(work: Path, clip: Path) -> Path:
    run = work / "runs" / "v"
    cli_ok("fit", clip, "-o", run, "--epochs", 1, *TINY)
    return run


@pytest.fixture(scope="module")
def nerv(work: Path, run: Path) -> Path:
    path = work / "v.nerv"
    cli_ok("compress", run, "-o", path, "--no-eval")
    return path


@pytest.fixture
def keep(tmp_path: Path, clip: Path) -> Path:
    """A folder of the user's: notes, a sub-folder holding a copy of the source video."""
    folder = tmp_path / "keep"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("important\n")
    shutil.copy(clip, folder / "sub" / "clip.mkv")
    return folder


# F1 + "a test writes into folders holding unrelated files, for every command that writes" -------------
def writing_commands(run: Path, nerv: Path, clip: Path) -> dict[str, tuple[list, str]]:
    """Each writing command: (argv without -o, the output name it writes inside a folder)."""
    return {
        "decode": (["decode", run, "--lossless"], "out.mkv"),
        "decompress": (["decompress", nerv, "--lossless"], "out.mkv"),
        "interpolate": (["interpolate", run, "--factor", 2], "out.mp4"),
        "inpaint": (["inpaint", run, "--mask", "central"], "out.mkv"),
        "eval": (["eval", clip, clip], "report.json"),
        "compress": (["compress", run, "--no-eval"], "out.nerv"),
        "fit": (["fit", clip, "--epochs", 1, *TINY], "run"),
    }


@pytest.mark.parametrize("command", ["decode", "decompress", "interpolate", "inpaint", "eval", "compress", "fit"])
def test_unrelated_files_survive_every_writing_command(command, run, nerv, clip, keep):
    argv, name = writing_commands(run, nerv, clip)[command]
    before = snapshot(keep)
    # the folder itself as the output: refused (PNG frames, a run) or not a file (eval, compress)
    one_line_error(run_cli(*argv, "-o", str(keep) + "/"), str(keep))
    assert snapshot(keep) == before
    # a new file (or run folder) inside it: written, and everything else is untouched
    cli_ok(*argv, "-o", keep / name)
    assert (keep / name).exists()
    after = snapshot(keep)
    assert {k: v for k, v in after.items() if not k.startswith(name)} == before
    assert hidden_leftovers(keep) == []


@pytest.mark.parametrize("command", ["decode", "decompress", "interpolate", "inpaint"])
def test_png_folder_output_refuses_a_non_empty_folder_and_replaces_its_own(command, run, nerv, clip, keep,
                                                                            tmp_path):
    argv, _ = writing_commands(run, nerv, clip)[command]
    before = snapshot(keep)
    one_line_error(run_cli(*argv, "-o", keep), "not empty", "notes.txt")
    assert snapshot(keep) == before
    frames = tmp_path / "frames"
    cli_ok(*argv, "-o", str(frames) + "/")
    first = sorted(p.name for p in frames.glob("frame_*.png"))
    assert first and (frames / ".nervkit-frames").is_file()
    cli_ok(*argv, "-o", str(frames) + "/")  # nervkit's own frame folder: replaced by the new frames
    assert sorted(p.name for p in frames.glob("frame_*.png")) == first
    (frames / "mine.txt").write_text("added by the user")
    one_line_error(run_cli(*argv, "-o", frames), "not empty", "mine.txt")
    assert (frames / "mine.txt").read_text() == "added by the user"
    assert hidden_leftovers(tmp_path) == []


def test_decode_into_the_run_folder_or_the_source_folder_is_refused(run, clip, tmp_path):
    before = snapshot(run)
    for target in (run, str(run) + "/", run / "frames", run / "decoded.mkv", run / "checkpoint.pt"):
        one_line_error(run_cli("decode", run, "-o", target), "run folder")
        assert snapshot(run) == before
    one_line_error(run_cli("decode", run, "-o", clip.parent), "not empty")  # holds the source video
    assert clip.is_file()
    cli_ok("decode", run, "-o", tmp_path / "x.mkv", "--lossless")  # the run still decodes


# F2 / F3: an output is never one of the command's inputs --------------------------------------------------
def test_compress_cannot_overwrite_the_runs_checkpoint(run, tmp_path):
    before = snapshot(run)
    line = one_line_error(run_cli("compress", run, "-o", run / "checkpoint.pt"), "inside the run folder")
    assert "checkpoint.pt" in line and snapshot(run) == before
    assert nervkit.info(run)["status"] == "complete"
    cli_ok("decode", run, "-o", tmp_path / "still.mkv")


def test_eval_cannot_overwrite_its_inputs(clip, tmp_path):
    ref = tmp_path / "ref.mkv"
    shutil.copy(clip, ref)
    digest = hashlib.sha256(ref.read_bytes()).hexdigest()
    link = tmp_path / "link.mkv"
    link.symlink_to(ref)
    hard = tmp_path / "hard.mkv"
    os.link(ref, hard)
    for out in (ref, link, hard):
        one_line_error(run_cli("eval", ref, clip, "-o", out), "input")
        one_line_error(run_cli("eval", clip, ref, "-o", out), "input")
    assert hashlib.sha256(ref.read_bytes()).hexdigest() == digest
    folder = tmp_path / "existing"
    folder.mkdir()
    one_line_error(run_cli("eval", ref, clip, "-o", folder), "folder")  # P19: was IsADirectoryError
    cli_ok("eval", ref, clip, "-o", tmp_path / "report.json")
    assert json.loads((tmp_path / "report.json").read_text())["psnr"] is not None


def test_decompress_and_interpolate_cannot_overwrite_the_nerv_file(nerv, tmp_path):
    digest = hashlib.sha256(nerv.read_bytes()).hexdigest()
    one_line_error(run_cli("decompress", nerv, "-o", nerv), "input")
    one_line_error(run_cli("interpolate", nerv, "-o", nerv), "input")
    assert hashlib.sha256(nerv.read_bytes()).hexdigest() == digest


# F4: a regular file never becomes a folder ---------------------------------------------------------------
def test_a_file_is_never_turned_into_a_frame_folder(run, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hi\n")
    one_line_error(run_cli("decode", run, "-o", str(notes) + "/"), "is a file")
    assert notes.read_text() == "hi\n" and hidden_leftovers(tmp_path) == []


def test_the_current_folder_is_never_replaced(run, nerv, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    for target in (".", "./", ".."):
        one_line_error(run_cli("decode", run, "-o", target), "current folder")
        one_line_error(run_cli("decompress", nerv, "-o", target), "current folder")  # P18: was EBUSY
    assert list(empty.iterdir()) == []


# F5: one process at a time changes a run folder ----------------------------------------------------------
def test_a_locked_run_folder_is_refused_and_a_stale_lock_is_recovered(run, clip, tmp_path):
    from nervkit.runs import RunDir

    target = tmp_path / "r"
    target.mkdir()
    with RunDir.at(target).lock("a test holding the lock"):
        line = one_line_error(run_cli("fit", clip, "-o", target, "--epochs", 1, *TINY), "in use", str(os.getpid()))
        assert "a test holding the lock" in line
    assert list(target.iterdir()) == []  # released, and the refused fit left nothing
    # a lock left by a process that no longer runs (SIGKILL) is recovered
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (target / ".nervkit-lock").write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename,
                                                      "command": "nervkit fit", "started": "then"}))
    cli_ok("fit", clip, "-o", target, "--epochs", 1, *TINY)
    assert not (target / ".nervkit-lock").exists() and json.loads((target / "run.json").read_text())["status"] == \
        "complete"


def test_two_fits_started_together_on_one_folder_never_both_succeed(clip, tmp_path):
    out = tmp_path / "x"
    common = ["fit", clip, "-o", out, "--epochs", 3, "--params", "20k", "--threads", 1, "--quiet", "--no-video"]
    procs = [subprocess.Popen([sys.executable, "-m", "nervkit", *map(str, common), "--model", model],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
             for model in ("nerv", "hnerv")]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    winners = [i for i, (code, _, _) in enumerate(results) if code == 0]
    assert len(winners) == 1, results
    loser = results[1 - winners[0]]
    assert loser[0] == 2 and loser[2].startswith("nervkit: error:") and len(loser[2].splitlines()) == 1, loser
    assert json.loads((out / "run.json").read_text())["method"] == ("nerv", "hnerv")[winners[0]]
    assert nervkit.load(out).model.method == ("nerv", "hnerv")[winners[0]]


# F7: temporaries of killed writes are swept at the next write to the same place -----------------------------
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_of_killed_processes_are_removed(run, tmp_path):
    pid = _dead_pid()
    stale_file = tmp_path / f".out.mkv.nervkit-{pid}-abc123.partial.mkv"
    stale_file.write_bytes(b"x" * 1000)
    stale_dir = tmp_path / f".frames.nervkit-{pid}-def456.partial"
    stale_dir.mkdir()
    (stale_dir / "frame_00000.png").write_bytes(b"png")
    alive = tmp_path / f".out.mkv.nervkit-{os.getpid()}-ghi789.partial.mkv"  # a live writer's: kept
    alive.write_bytes(b"y")
    other = tmp_path / f".notes.txt.nervkit-{pid}-jkl012.partial"  # another destination's: kept
    other.write_bytes(b"z")
    cli_ok("decode", run, "-o", tmp_path / "out.mkv")
    cli_ok("decode", run, "-o", tmp_path / "frames")
    assert not stale_file.exists() and not stale_dir.exists()
    assert alive.exists() and other.exists()
    assert sweep_stale_temporaries(tmp_path / "notes.txt") == [other]


def test_sigkill_during_a_write_leaves_nothing_after_the_next_write(run, tmp_path):
    out = tmp_path / "slow.mkv"
    proc = subprocess.Popen([sys.executable, "-m", "nervkit", "interpolate", str(run), "--factor", "1000",
                             "--lossless", "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=subprocess_env())
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            partial = [p for p in tmp_path.iterdir() if p.name.startswith(".slow.mkv.nervkit-")]
            if partial and partial[0].stat().st_size > 0:
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    assert not out.exists() and hidden_leftovers(tmp_path)  # what SIGKILL leaves
    cli_ok("interpolate", run, "--factor", 2, "-o", out)
    assert out.is_file() and hidden_leftovers(tmp_path) == []


# F11: the checkpoint must be the run's own --------------------------------------------------------------
def test_a_checkpoint_from_another_run_is_refused(run, clip, tmp_path):
    other = tmp_path / "other"
    cli_ok("fit", clip, "-o", other, "--model", "hnerv", "--frames", "0:2", "--params", "50k", "--epochs", 1,
           "--threads", 1, "--quiet", "--no-video")
    mixed = tmp_path / "mixed"
    shutil.copytree(run, mixed)
    shutil.copy(other / "checkpoint.pt", mixed / "checkpoint.pt")
    for argv in (["decode", mixed, "-o", tmp_path / "x.mkv"], ["info", mixed],
                 ["compress", mixed, "-o", tmp_path / "x.nerv"], ["fit", "--resume", "-o", mixed]):
        one_line_error(run_cli(*argv), "belongs to another run", "hnerv")
    assert not (tmp_path / "x.mkv").exists() and not (tmp_path / "x.nerv").exists()
    # the same method and size but another run: told apart by the run id
    twin = tmp_path / "twin"
    cli_ok("fit", clip, "-o", twin, "--epochs", 1, "--seed", 2, *TINY)
    shutil.copy(twin / "checkpoint.pt", mixed / "checkpoint.pt")
    one_line_error(run_cli("decode", mixed, "-o", tmp_path / "x.mkv"), "belongs to another run")


# F12: OS errors a user can act on are one-line errors naming the path ------------------------------------------
def in_private_mounts(cases: dict[str, list], cwd: Path) -> dict[str, dict]:
    """Run each ``nervkit`` argv of ``cases`` (in order, in one process) in a private mount namespace in
    which ``ro/`` is a read-only tmpfs and ``small/`` a 16 KiB tmpfs: real EROFS and ENOSPC, no
    privileges needed beyond a user namespace. An argv item ``("fill", n)`` first writes n bytes to
    small/fill (``("fill", 0)`` removes it). Returns {case: {code, err, listing}}."""
    (cwd / "ro").mkdir(exist_ok=True)
    (cwd / "small").mkdir(exist_ok=True)
    script = cwd / "cases.py"
    script.write_text(
        "import contextlib, io, json, os, sys\n"
        "from nervkit.cli.main import main\n"
        f"cases = {json.dumps({k: [a if not isinstance(a, Path) else str(a) for a in v] for k, v in cases.items()})}\n"
        "results = {}\n"
        "for name, argv in cases.items():\n"
        "    if argv and isinstance(argv[0], list):\n"
        "        size = argv.pop(0)[1]\n"
        "        if size: open('small/fill', 'wb').write(bytes(size))\n"
        "        elif os.path.exists('small/fill'): os.remove('small/fill')\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):\n"
        "        code = main([str(a) for a in argv])\n"
        "    listing = sorted(os.listdir('ro')) + sorted(os.listdir('small'))\n"
        "    results[name] = {'code': code, 'err': err.getvalue(), 'listing': listing,\n"
        "                     'run': sorted(os.listdir('small/run')) if os.path.isdir('small/run') else None}\n"
        "json.dump(results, open('results.json', 'w'))\n")
    setup = "mount -t tmpfs -o ro,size=16k tmpfs ro && mount -t tmpfs -o size=16k tmpfs small && "
    wrapper = ["unshare", "-rm"] if os.geteuid() != 0 else ["unshare", "-m"]
    result = subprocess.run([*wrapper, "sh", "-c", setup + f"{sys.executable} cases.py"], capture_output=True,
                            text=True, cwd=cwd, env=subprocess_env(), timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads((cwd / "results.json").read_text())


def test_read_only_and_full_destinations_are_clean_errors(run, nerv, clip, tmp_path):
    cases = {
        "fit_ro": ["fit", clip, "-o", "ro/run", "--epochs", 1, *TINY],
        "decode_ro": ["decode", run, "-o", "ro/x.mkv"],
        "compress_ro": ["compress", run, "-o", "ro/x.nerv", "--no-eval"],
        "eval_ro": ["eval", clip, clip, "-o", "ro/e.json"],
        "decode_full": ["decode", run, "-o", "small/frames/"],
        "compress_full": [["fill", 10000], "compress", run, "-o", "small/x.nerv", "--no-eval"],
        "eval_full": [["fill", 16384], "eval", clip, clip, "-o", "small/e.json"],
        "fitlock_full": ["fit", clip, "-o", "small/run0", "--epochs", 1, *TINY],  # not even the lock fits
        # a checkpoint that does not fit: run.json is written, the checkpoint is not
        "fit_full": [["fill", 0], "fit", clip, "-o", "small/run", "--epochs", 1, "--params", "200k", "--threads", 1,
                     "--quiet", "--no-video"],
    }
    results = in_private_mounts(cases, tmp_path)
    expect = {"ro": "read-only file system", "full": "no space left"}
    for name, result in results.items():
        err = result["err"]
        assert result["code"] == 2, (name, err)
        assert len(err.splitlines()) == 1 and err.startswith("nervkit: error:"), (name, err)
        assert "internal error" not in err and expect[name.split("_")[1]] in err, (name, err)
        assert "ro/" in err or "small/" in err, (name, err)
        assert not [n for n in result["listing"] if ".partial" in n], (name, result)  # no temporaries left
    assert "checkpoint.pt" in results["fit_full"]["err"]
    assert "run0" not in results["fit_full"]["listing"]  # the refused fit removed the folder it made
    # resumable once there is space again: run.json (and the epoch log) written, no partial checkpoint
    assert "run.json" in results["fit_full"]["run"] and "checkpoint.pt" not in results["fit_full"]["run"]


def test_absurd_option_values_are_clean_errors(run, nerv, clip, tmp_path):
    one_line_error(run_cli("fit", clip, "-o", tmp_path / "r", "--lr", "1e308"), "--lr")
    one_line_error(run_cli("interpolate", run, "--factor", "1000000000000", "-o", tmp_path / "i.mp4"), "--factor")
    assert not (tmp_path / "r").exists() and not (tmp_path / "i.mp4").exists()
    corrupt = tmp_path / "corrupt"
    shutil.copytree(run, corrupt)
    (corrupt / "history.json").write_text("{not json")
    assert "training:" in cli_ok("info", corrupt)  # the checkpoint holds the same history
    meta = json.loads((corrupt / "run.json").read_text())
    del meta["config"]
    (corrupt / "run.json").write_text(json.dumps(meta))
    for argv in (["info", corrupt], ["decode", corrupt, "-o", tmp_path / "d.mkv"]):
        one_line_error(run_cli(*argv), "run.json", "config")


# F13: an invalid --device fails before anything is written ------------------------------------------------
def test_compress_checks_the_device_before_writing(run, tmp_path):
    out = tmp_path / "v.nerv"
    one_line_error(run_cli("compress", run, "-o", out, "--device", "tpu"), "tpu")
    assert not out.exists()
    if not torch.cuda.is_available():
        one_line_error(run_cli("compress", run, "-o", out, "--device", "cuda"), "cuda")
        assert not out.exists()
    one_line_error(run_cli("decompress", tmp_path / "none.nerv", "-o", tmp_path / "x.mkv", "--device", "tpu"),
                   "tpu")


# F14: lossless outputs are byte-reproducible ----------------------------------------------------------------
def test_lossless_outputs_are_byte_identical_run_to_run(run, nerv, tmp_path):
    for i in (1, 2):
        cli_ok("decompress", nerv, "-o", tmp_path / f"a{i}.mkv", "--lossless")
        cli_ok("decode", run, "-o", tmp_path / f"b{i}.mkv", "--lossless")
        cli_ok("decode", run, "-o", tmp_path / f"c{i}.mp4")
    for stem in "abc":
        suffix = ".mp4" if stem == "c" else ".mkv"
        assert (tmp_path / f"{stem}1{suffix}").read_bytes() == (tmp_path / f"{stem}2{suffix}").read_bytes(), stem


# F15: --resume refuses options it would ignore ---------------------------------------------------------------
def test_resume_refuses_a_model_or_a_video(run, clip):
    one_line_error(run_cli("fit", "--resume", "--model", "hnerv", "-o", run), "--model hnerv", "nerv")
    one_line_error(run_cli("fit", clip, "--resume", "-o", run), "VIDEO")
    one_line_error(run_cli("fit", "--sample", "--resume", "-o", run), "--sample")
    cli_ok("fit", "--resume", "--model", "nerv", "-o", run, "--quiet", "--no-video")  # its own method: fine


# F16: the Python API raises only nervkit's errors and never coerces silently ------------------------------------
def test_python_api_rejects_bad_arguments_with_nervkit_errors(run, clip, tmp_path):
    fitted = nervkit.load(run)
    bad_calls = [
        lambda: fitted.decode("3"),
        lambda: fitted.decode([0.5]),
        lambda: fitted.decode(1.0),
        lambda: fitted.decode(torch.tensor([0.5])),
        lambda: fitted.decode([True]),
        lambda: fitted.decode(None),
        lambda: nervkit.compress(run, tmp_path / "x.nerv", bits=8.5),
        lambda: nervkit.compress(run, tmp_path / "x.nerv", bits="8"),
        lambda: nervkit.compress(run, tmp_path / "x.nerv", prune="0.2"),
        lambda: nervkit.compress(run, 42),
        lambda: nervkit.fit(clip, out=tmp_path / "f", size=(36.7, 64), epochs=1),
        lambda: nervkit.fit(clip, out=tmp_path / "f", size="36x", epochs=1),
        lambda: nervkit.evaluate(clip, clip, frames=4),
        lambda: nervkit.decode(run, tmp_path / "d.mkv", crf=12.5),
        lambda: nervkit.decode(run, tmp_path / "d.mkv", frames=[0, 1]),
        lambda: nervkit.interpolate(run, 2.5, tmp_path / "i.mkv"),
        lambda: nervkit.decompress(tmp_path / "none.nerv", tmp_path / "d.mkv", scale="2"),
        lambda: nervkit.load(42),
        lambda: nervkit.info(None),
        lambda: nervkit.inspect(3),
        lambda: nervkit.fit(clip, out=tmp_path / "f", model=3, epochs=1),
        lambda: nervkit.fit(clip, out=tmp_path / "f", train=3),
        lambda: nervkit.fit(clip, out=tmp_path / "f", model_options=[1]),
        lambda: nervkit.fit(clip, out=tmp_path / "f", noise_seed="a"),
        lambda: nervkit.decode(run, tmp_path / "d.mkv", device=3),
    ]
    for i, call in enumerate(bad_calls):
        with pytest.raises(NervkitError):
            call()
    assert not (tmp_path / "x.nerv").exists() and not (tmp_path / "f").exists()
    with pytest.raises(NervkitError, match="decode_at"):
        fitted.decode([0.5])
    # the CLI's text forms work in the API too
    assert nervkit.evaluate(clip, clip, frames="0:4", size="36x60").frames == 4
    assert torch.equal(fitted.decode(torch.tensor([1, 2])), fitted.decode([1, 2]))


# remarks of the report: an unfinished run is compressed with a note; -o FILE for a run names the problem ---
def test_compressing_an_unfinished_run_says_so(run, tmp_path):
    unfinished = tmp_path / "unfinished"
    shutil.copytree(run, unfinished)
    meta = json.loads((unfinished / "run.json").read_text())
    meta["status"] = "training"
    (unfinished / "run.json").write_text(json.dumps(meta))
    code, out, err = run_cli("compress", unfinished, "-o", tmp_path / "u.nerv", "--no-eval")
    assert code == 0 and (tmp_path / "u.nerv").is_file()
    assert err.startswith("nervkit: note: the run is not complete") and "--resume" in err
    code, _, err = run_cli("compress", run, "-o", tmp_path / "c.nerv", "--no-eval")
    assert code == 0 and err == ""


def test_fit_into_an_existing_file_says_it_is_a_file(clip, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me\n")
    one_line_error(run_cli("fit", clip, "-o", notes, "--epochs", 1, *TINY), "is a file")
    assert notes.read_text() == "keep me\n"
