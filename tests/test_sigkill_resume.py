"""Training is reproducible at the default thread count, for every method (docs/design.md, "Conventions").

Every run here is a fresh Python process that calls the ``nervkit`` command line without ``--threads``
(and without OMP_NUM_THREADS/MKL_NUM_THREADS), so PyTorch uses its default thread count — all cores:

* for each registered method a ``nervkit fit`` is killed with SIGKILL once its checkpoint records a
  completed epoch, then ``nervkit fit --resume`` finishes it; it must end with the same weights, bit
  for bit, and the same per-epoch history as an uninterrupted run of the same command;
* two identical NVP runs, in two different processes, must agree bit for bit (NVP's sparse-grid
  gradient used to be summed with atomic adds in a thread-dependent order; see
  :func:`nervkit.models.grids.gather_rows`).

Starting Python and PyTorch costs seconds per process, so the runs are batched: the runs that get
killed start together (one process each, as they must), the uninterrupted runs of every method share
one process that runs alongside them, and the resumes (plus the second NVP run) share another. The
runs that differ thus also ran under different scheduling — which is exactly what must not matter.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import TINY_MODELS, gradient_clip
from nervkit.io import write_video
from nervkit.models import list_methods

EPOCHS = 4
TINY = TINY_MODELS
TIMEOUT = 600  # seconds for a batch of runs, on a busy machine

#: runs the ``nervkit`` command lines in argv[1] (a JSON list) one after another in this process and
#: writes {index: exit code} to argv[2]
_RUNNER = """
import json, sys
from nervkit.cli.main import main
codes = {i: main(argv) for i, argv in enumerate(json.loads(sys.argv[1]))}
with open(sys.argv[2], "w") as f:
    json.dump(codes, f)
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("NERVKIT_DEBUG", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # the default thread count, really
        env.pop(name, None)
    return env


def _fit_args(clip: Path, out: Path, method: str) -> list[str]:
    opts = ["--model", method, *TINY[method], "--epochs", EPOCHS, "--eval-every", EPOCHS, "--checkpoint-every", 1,
            "--seed", 5, "--quiet", "--no-video"]
    return ["fit", str(clip), "-o", str(out), *map(str, opts)]


def _resume_args(out: Path) -> list[str]:
    return ["fit", "--resume", "-o", str(out), "--quiet", "--no-video"]


def _start_batch(argvs: list[list[str]], codes: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _RUNNER, json.dumps(argvs), str(codes)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env())


def _wait_batch(proc: subprocess.Popen, codes: Path) -> tuple[dict[int, int], str]:
    """({index: exit code}, stderr) of a batch of runs."""
    try:
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
        proc.wait()
    text = err.decode()
    assert proc.returncode == 0 and codes.is_file(), f"the batch of runs failed ({proc.returncode}): {text}"
    return {int(k): v for k, v in json.loads(codes.read_text()).items()}, text


def _checkpoint_epoch(path: Path) -> int:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])
    except Exception:  # noqa: BLE001 - not there yet, or replaced while we read it
        return -1


def _kill_each_after_an_epoch(procs: dict[str, subprocess.Popen], runs: dict[str, Path]) -> dict[str, str]:
    """SIGKILL each run of ``procs`` as soon as its checkpoint records a completed epoch; {method:
    what went wrong} for the runs that could not be killed that way."""
    problems: dict[str, str] = {}
    pending = dict(procs)
    mtimes: dict[str, int] = {}
    deadline = time.monotonic() + TIMEOUT
    try:
        while pending and time.monotonic() < deadline:
            for method, proc in list(pending.items()):
                ckpt = runs[method] / "checkpoint.pt"
                if proc.poll() is not None:
                    problems[method] = f"the run ended ({proc.returncode}) before it could be killed: " \
                                       f"{proc.stderr.read().decode()}"
                    del pending[method]
                elif ckpt.is_file() and ckpt.stat().st_mtime_ns != mtimes.get(method):
                    mtimes[method] = ckpt.stat().st_mtime_ns
                    if _checkpoint_epoch(ckpt) >= 1:
                        os.kill(proc.pid, signal.SIGKILL)
                        proc.wait(timeout=60)
                        del pending[method]
            time.sleep(0.005)
        for method in pending:
            problems[method] = "no checkpoint with a completed epoch in time"
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()
            proc.stderr.close()
    for method, proc in procs.items():
        if method not in problems and proc.returncode != -signal.SIGKILL:
            problems[method] = f"exit status {proc.returncode}, not SIGKILL"
    return problems


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Every method's killed-and-resumed run and uninterrupted run, plus a second plain NVP run."""
    base = tmp_path_factory.mktemp("sigkill")
    clip = write_video(gradient_clip(4), base / "clip.mkv", fps=25, lossless=True)
    methods = list_methods()
    killed = {m: base / "killed" / m for m in methods if m in TINY}
    straight = {m: base / "straight" / m for m in killed}
    again = base / "nvp_again"
    uninterrupted = _start_batch([_fit_args(clip, straight[m], m) for m in killed], base / "straight.json")
    try:
        victims = {m: subprocess.Popen([sys.executable, "-m", "nervkit", *_fit_args(clip, run, m)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env())
                   for m, run in killed.items()}
        problems = _kill_each_after_an_epoch(victims, killed)
        at_kill = {}
        for m, run in killed.items():
            if m not in problems:
                at_kill[m] = (_checkpoint_epoch(run / "checkpoint.pt"),
                              json.loads((run / "run.json").read_text())["status"],
                              (run / "history.json").exists())
        resumable = [m for m in killed if m not in problems]
        resumer = _start_batch([*[_resume_args(killed[m]) for m in resumable], _fit_args(clip, again, "nvp")],
                               base / "resumed.json")
        resume_codes, resume_err = _wait_batch(resumer, base / "resumed.json")
    except BaseException:
        uninterrupted.kill()
        uninterrupted.wait()
        raise
    straight_codes, straight_err = _wait_batch(uninterrupted, base / "straight.json")
    return {
        "killed": killed, "straight": straight, "again": again, "problems": problems, "at_kill": at_kill,
        "resumed": {m: resume_codes[i] for i, m in enumerate(resumable)}, "again_code": resume_codes[len(resumable)],
        "straight_codes": {m: straight_codes[i] for i, m in enumerate(killed)},
        "stderr": resume_err + straight_err,
    }


def _load(run: Path) -> dict:
    return torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)


def _assert_same_training(a: dict, b: dict) -> None:
    assert a["epoch"] == b["epoch"] == EPOCHS and a["iteration"] == b["iteration"] == 0
    assert a["model"].keys() == b["model"].keys()
    differing = {k: (a["model"][k].double() - b["model"][k].double()).abs().max().item()
                 for k in a["model"] if not torch.equal(a["model"][k], b["model"][k])}
    assert not differing, f"weights differ (largest |difference| per tensor): {differing}"
    assert [e["epoch"] for e in a["history"]] == list(range(1, EPOCHS + 1))
    assert _epochs(a) == _epochs(b), "per-epoch histories differ"


def _epochs(state: dict) -> list[tuple]:
    return [(e["epoch"], e["loss"], e["psnr"], e["lr"]) for e in state["history"]]


def test_every_method_has_a_tiny_configuration() -> None:
    from nervkit.models import get_method

    # nervkit's own methods (a test may register a plugin method in the same session)
    own = [m for m in list_methods() if get_method(m).model_cls.__module__.startswith("nervkit.")]
    assert sorted(TINY) == own, "give each registered method a tiny configuration in TINY"


@pytest.mark.parametrize("method", list_methods())
def test_resume_after_sigkill_ends_bit_identical_to_an_uninterrupted_run(runs, method) -> None:
    assert method in TINY, f"no tiny configuration for {method}"
    assert method not in runs["problems"], runs["problems"].get(method)
    epoch, status, history_written = runs["at_kill"][method]
    assert 1 <= epoch < EPOCHS and status == "training" and not history_written
    assert runs["straight_codes"][method] == 0 and runs["resumed"][method] == 0, runs["stderr"]
    killed, straight = runs["killed"][method], runs["straight"][method]
    assert json.loads((killed / "run.json").read_text())["status"] == "complete"
    history = json.loads((killed / "history.json").read_text())["epochs"]
    other = json.loads((straight / "history.json").read_text())["epochs"]
    assert [(e["epoch"], e["loss"]) for e in history] == [(e["epoch"], e["loss"]) for e in other]
    _assert_same_training(_load(killed), _load(straight))


def test_two_identical_nvp_runs_are_bit_identical(runs) -> None:
    assert runs["straight_codes"]["nvp"] == 0 and runs["again_code"] == 0, runs["stderr"]
    _assert_same_training(_load(runs["straight"]["nvp"]), _load(runs["again"]))
