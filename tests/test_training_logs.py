"""Observable training runs: the per-epoch JSON-lines file (written as training goes, continued without
duplicates on resume), plain progress lines when stderr is not a terminal, and optional TensorBoard."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nervkit.data import FrameStore
from nervkit.errors import ConfigError
from nervkit.models import VideoGeometry, create_model
from nervkit.train import TrainConfig, Trainer, load_checkpoint
from nervkit.train.progress import epoch_line, format_eta

SRC = Path(__file__).resolve().parents[1] / "src"


def tiny_store(n: int = 4, h: int = 36, w: int = 64) -> FrameStore:
    g = torch.Generator().manual_seed(0)
    return FrameStore.from_tensor(torch.rand(n, 3, h, w, generator=g))


def tiny_trainer(store: FrameStore, tmp: Path | None = None, *, after_step=None, epoch_log=None,
                 tensorboard_dir=None, progress: bool = False, **overrides) -> Trainer:
    torch.manual_seed(0)
    model = create_model("nerv", VideoGeometry(len(store), store.height, store.width), mlp_hidden=16,
                         grid_channels=8, lower_width=8)
    cfg = TrainConfig(**{"epochs": 3, "lr": 5e-3, "warmup": 0.1, "batch_size": 2, "loss": "l2",
                         "checkpoint_seconds": 1e9, **overrides})
    return Trainer(model, store, cfg, device=torch.device("cpu"), progress=progress, after_step=after_step,
                   checkpoint_path=(tmp / "ckpt.pt") if tmp else None, epoch_log=epoch_log,
                   tensorboard_dir=tensorboard_dir)


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_epoch_log_grows_while_training(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "epochs.jsonl"
    seen: list[int] = []  # lines in the file at every optimizer step (2 steps per epoch)
    trainer = tiny_trainer(tiny_store(), epoch_log=log, after_step=lambda: seen.append(len(read_lines(log))),
                           eval_every=2)
    state = trainer.fit()
    assert seen == [0, 0, 1, 1, 2, 2]  # each epoch's line is there before the next epoch's first step
    lines = read_lines(log)
    assert [e["epoch"] for e in lines] == [1, 2, 3]
    for line, record in zip(lines, state.history):
        assert {k: line[k] for k in record} == record
        assert line["elapsed"] > 0 and line["seconds"] > 0
    assert "eval_psnr" not in lines[0]
    evals = {e["epoch"]: e for e in state.evals}
    for line in lines[1:]:  # eval_every=2: epochs 2 and 3 (the last) evaluate
        assert line["eval_psnr"] == evals[line["epoch"]]["psnr"]
        assert line["eval_ms_ssim"] == evals[line["epoch"]]["ms_ssim"]


class _Killed(Exception):
    pass


def test_resumed_run_continues_the_epoch_log_without_duplicates(tmp_path: Path) -> None:
    store, log = tiny_store(), tmp_path / "epochs.jsonl"
    steps = []

    def die_in_epoch_4() -> None:  # 2 steps per epoch: step 7 is in epoch 4
        steps.append(1)
        if len(steps) == 7:
            raise _Killed

    first = tiny_trainer(store, tmp_path, epochs=5, checkpoint_every=2, epoch_log=log, after_step=die_in_epoch_4)
    with pytest.raises(_Killed):
        first.fit()
    # epoch 3 was logged, but the last checkpoint holds epoch 2; a killed writer left half a line
    assert [e["epoch"] for e in read_lines(log)] == [1, 2, 3]
    with open(log, "a") as f:
        f.write('{"epoch": 4, "lo')
    before = log.read_text().splitlines()[:2]
    resumed = tiny_trainer(store, tmp_path, epochs=5, checkpoint_every=2, epoch_log=log)
    resumed.load_state_dict(load_checkpoint(tmp_path / "ckpt.pt"))
    assert resumed.state.epoch == 2
    state = resumed.fit()
    lines = read_lines(log)
    assert [e["epoch"] for e in lines] == [1, 2, 3, 4, 5]
    assert log.read_text().splitlines()[:2] == before
    assert [e["loss"] for e in lines] == [e["loss"] for e in state.history]
    # a fresh run into the same file starts it over
    tiny_trainer(store, epochs=1, epoch_log=log).fit()
    assert [e["epoch"] for e in read_lines(log)] == [1]


def test_progress_lines() -> None:
    assert format_eta(45) == "45s" and format_eta(19 * 60) == "19m" and format_eta(7500) == "2h05m"
    assert (epoch_line(3, 100, 0.1234, 24.31, 4.2e-4, 12.3, 19 * 60)
            == "epoch 3/100  loss 0.1234  psnr 24.31 dB  lr 4.2e-04  12.3 s/epoch  eta 19m")


_FIT = """
import sys, torch
sys.path.insert(0, sys.argv[1])
from test_training_logs import tiny_store, tiny_trainer
tiny_trainer(tiny_store(), progress=True, eval_every=3).fit()
print("--quiet--", file=sys.stderr, flush=True)
tiny_trainer(tiny_store(), progress=False).fit()
"""


def test_plain_progress_lines_when_stderr_is_not_a_terminal() -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-c", _FIT, str(Path(__file__).parent)], capture_output=True, text=True,
                          timeout=300, env=env, check=False)  # stderr is a pipe
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr
    shown, quiet = proc.stderr.split("--quiet--\n")
    assert quiet == ""  # progress=False (--quiet) prints nothing
    lines = shown.splitlines()
    pattern = r"epoch (\d)/3  loss \d\.\d{4}  psnr \d+\.\d\d dB  lr \d\.\de-\d\d  \d+\.\d s/epoch  eta \d+s"
    assert [int(re.fullmatch(pattern, line).group(1)) for line in lines[:3]] == [1, 2, 3], lines
    assert re.fullmatch(r"epoch 3: PSNR \d+\.\d\d dB, MS-SSIM \d\.\d{4}", lines[3]), lines
    assert len(lines) == 4


def _hide_tensorboard(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("tensorboard", "torch.utils.tensorboard"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails, find_spec finds nothing


def test_tensorboard_missing_is_a_clear_error_before_training(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _hide_tensorboard(monkeypatch)
    with pytest.raises(ConfigError, match=r"^--log tensorboard needs .*: pip install tensorboard$"):
        TrainConfig(log="tensorboard").validate()
    with pytest.raises(ConfigError, match="pip install tensorboard"):
        tiny_trainer(tiny_store(), tmp_path, log="tensorboard")
    assert list(tmp_path.iterdir()) == []  # nothing trained, nothing written
    with pytest.raises(ConfigError, match="--log must be one of none, tensorboard"):
        TrainConfig(log="wandb").validate()


def test_tensorboard_event_files(tmp_path: Path) -> None:
    # tensorboard is a test dependency (pyproject [test]): the real writer and reader run here
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = tiny_trainer(tiny_store(), tmp_path, log="tensorboard", eval_every=3)
    trainer.fit()
    folder = tmp_path / "tensorboard"  # beside the checkpoint
    events = EventAccumulator(str(folder))
    events.Reload()
    assert [s.step for s in events.Scalars("train/loss")] == [1, 2, 3]
    assert [s.step for s in events.Scalars("eval/psnr")] == [3]
    assert {"train/psnr", "train/lr", "eval/ms_ssim"} <= set(events.Tags()["scalars"])
