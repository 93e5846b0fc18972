"""Training engine: losses, schedule, learning on a synthetic clip, exact resume, NaN guard."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nervkit.data import FrameStore, epoch_batches
from nervkit.errors import ConfigError, TrainingError
from nervkit.models import VideoGeometry, create_model
from nervkit.train import ReconstructionLoss, TrainConfig, Trainer, load_checkpoint, lr_factor


def synthetic_store(n: int = 8, h: int = 36, w: int = 64) -> FrameStore:
    """A smooth moving pattern (learnable by a tiny model)."""
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    frames = []
    for i in range(n):
        s = i / n
        frames.append(torch.stack([0.5 + 0.4 * torch.sin(6 * x + 6 * s), 0.5 + 0.4 * torch.cos(5 * y - 4 * s),
                                   0.5 + 0.3 * torch.sin(4 * (x + y) + 3 * s)]))
    return FrameStore.from_tensor(torch.stack(frames))


def make_trainer(store: FrameStore, tmp: Path | None = None, **overrides) -> Trainer:
    torch.manual_seed(overrides.pop("seed_model", 0))
    model = create_model("nerv", VideoGeometry(len(store), store.height, store.width), mlp_hidden=32,
                         grid_channels=16, lower_width=16)
    cfg = TrainConfig(**{"epochs": 6, "lr": 5e-3, "warmup": 0.1, "eval_every": 0, **overrides})
    return Trainer(model, store, cfg, device=torch.device("cpu"), progress=False,
                   checkpoint_path=(tmp / "ckpt.pt") if tmp else None)


def test_loss_terms_and_aliases() -> None:
    assert str(ReconstructionLoss.parse("l1+ssim")) == "0.7*l1+0.3*ssim"
    assert str(ReconstructionLoss.parse("L2")) == "1*l2"
    pred, target = torch.full((1, 3, 32, 32), 0.6), torch.full((1, 3, 32, 32), 0.5)
    assert ReconstructionLoss.parse("l2")(pred, target).item() == pytest.approx(0.01)
    assert ReconstructionLoss.parse("0.5*l1")(pred, target).item() == pytest.approx(0.05)
    mask = torch.zeros(1, 1, 32, 32)
    assert ReconstructionLoss.parse("l1")(pred, target, mask).item() == 0.0
    for bad in ("l3", "0*l1", "x*l1", ""):
        with pytest.raises(ConfigError):
            ReconstructionLoss.parse(bad)


def test_warmup_cosine_schedule() -> None:
    assert lr_factor(0.0) == pytest.approx(0.1)
    assert lr_factor(0.1) == pytest.approx(0.55)
    assert lr_factor(0.2) == pytest.approx(1.0)
    assert lr_factor(0.6) == pytest.approx(0.5)
    assert lr_factor(0.999) < 1e-4
    assert lr_factor(0.5, schedule="const") == 1.0


def test_epoch_batches_are_seeded_per_epoch_and_cover_all_frames() -> None:
    a = epoch_batches(list(range(10)), 3, epoch=4, seed=1)
    assert torch.equal(torch.cat(a), torch.cat(epoch_batches(list(range(10)), 3, epoch=4, seed=1)))
    assert sorted(torch.cat(a).tolist()) == list(range(10))
    assert not torch.equal(torch.cat(a), torch.cat(epoch_batches(list(range(10)), 3, epoch=5, seed=1)))
    r0 = epoch_batches(list(range(10)), 2, epoch=0, seed=1, rank=0, world_size=2)
    r1 = epoch_batches(list(range(10)), 2, epoch=0, seed=1, rank=1, world_size=2)
    assert len(r0) == len(r1) and not set(torch.cat(r0).tolist()) & set(torch.cat(r1).tolist())


def test_training_learns_a_synthetic_clip() -> None:
    store = synthetic_store()
    trainer = make_trainer(store, epochs=25, loss="l2")
    state = trainer.fit()
    assert len(state.history) == 25
    first, last = state.history[0], state.history[-1]
    assert last["loss"] < 0.4 * first["loss"]
    assert state.evals[-1]["psnr"] > 28.0
    assert [e["epoch"] for e in state.evals] == [6, 12, 19, 25]


def test_resume_continues_exactly(tmp_path: Path) -> None:
    store = synthetic_store()
    full = make_trainer(store, epochs=4)
    full.fit()
    part = make_trainer(store, tmp_path, epochs=4, checkpoint_every=1)
    # run two epochs only, as if killed after the epoch-2 checkpoint
    part.state.epoch = 0
    for _ in range(2):
        part._run_epoch(_NoBar())
    part.save()
    resumed = make_trainer(store, tmp_path, epochs=4, checkpoint_every=1, seed_model=99)
    resumed.load_state_dict(load_checkpoint(tmp_path / "ckpt.pt"))
    assert resumed.state.epoch == 2
    resumed.fit()
    assert len(resumed.state.history) == 4
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k


def test_mid_epoch_checkpoint_resumes_at_the_same_iteration(tmp_path: Path) -> None:
    store = synthetic_store()
    full = make_trainer(store, epochs=2)
    full.fit()
    part = make_trainer(store, tmp_path, epochs=2)
    batches = epoch_batches(list(range(8)), 1, epoch=0, seed=1)
    for it in range(3):  # three iterations of epoch 1, then a checkpoint
        part._set_lr(it / 16)
        part._step(batches[it])
        part.state.iteration = it + 1
    part.save()
    resumed = make_trainer(store, tmp_path, epochs=2, seed_model=5)
    resumed.load_state_dict(load_checkpoint(tmp_path / "ckpt.pt"))
    resumed.fit()
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k


def test_nan_loss_stops_with_clear_error_and_keeps_last_checkpoint(tmp_path: Path) -> None:
    store = synthetic_store()
    good = make_trainer(store, tmp_path, epochs=1)
    good.fit()
    before = (tmp_path / "ckpt.pt").read_bytes()
    bad = make_trainer(store, tmp_path, epochs=3, lr=1e30, warmup=0.0, lr_schedule="const")
    bad.load_state_dict(load_checkpoint(tmp_path / "ckpt.pt"))
    with pytest.raises(TrainingError, match="loss became .* last good checkpoint is kept"):
        bad.fit()
    assert (tmp_path / "ckpt.pt").read_bytes() == before


@pytest.mark.parametrize(
    "option,value", [("epochs", 0), ("lr", -1.0), ("warmup", 1.0), ("batch_size", 0), ("loss", "mse")]
)
def test_invalid_train_options(option: str, value) -> None:
    with pytest.raises(ConfigError):
        TrainConfig(**{option: value}).validate()


def test_eval_epochs_quarters_and_every() -> None:
    assert TrainConfig(epochs=100).eval_epochs() == {25, 50, 75, 100}
    assert TrainConfig(epochs=10, eval_every=4).eval_epochs() == {4, 8, 10}
    assert TrainConfig(epochs=1).eval_epochs() == {1}


class _NoBar:
    def update(self, *a, **k) -> None:
        pass


