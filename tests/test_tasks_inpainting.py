"""Inpainting: mask geometry, user masks, the masked loss, inside-mask metrics, both protocols."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import nervkit
from helpers import gradient_clip, H, N, one_line_error, run_cli, TINY_NERV, W
from nervkit.data.masks import central_mask, disperse_mask, disperse_side, load_mask, make_mask
from nervkit.errors import ConfigError, InputError
from nervkit.io import write_video
from nervkit.metrics import psnr_per_frame, ssim
from nervkit.metrics.masked import RegionAccumulator, masked_ssim_per_frame
from nervkit.train.losses import ReconstructionLoss

TINY = {"nerv": {"model_options": TINY_NERV}, "hnerv": {"params": "20k"}}




@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_video(gradient_clip(), tmp_path_factory.mktemp("inpaint") / "clip.mkv", fps=25, lossless=True)


def _boxes(holes: torch.Tensor) -> list[tuple[int, int, int, int]]:
    """(top, left, height, width) of each connected square, found row-major from its top-left corner."""
    m = holes[0, 0].numpy().copy()
    boxes = []
    for y, x in zip(*np.nonzero(m)):
        if m[y, x]:
            h = int(np.argmin(np.append(m[y:, x], False)))
            w = int(np.argmin(np.append(m[y, x:], False)))
            boxes.append((int(y), int(x), h, w))
            m[y : y + h, x : x + w] = False
    return sorted(boxes)


def test_disperse_squares_scaled_to_the_frame() -> None:
    assert disperse_side(960, 1920) == 100 and disperse_side(180, 320) == 18 and disperse_side(H, W) == 3
    # 180x320: side 18 centred at (H/2, W/2), (H/4, W/4), (H/4, 3W/4), (3H/4, W/4), (3H/4, 3W/4)
    boxes = _boxes(disperse_mask(180, 320))
    assert boxes == sorted([(90 - 9, 160 - 9, 18, 18), (45 - 9, 80 - 9, 18, 18), (45 - 9, 240 - 9, 18, 18),
                            (135 - 9, 80 - 9, 18, 18), (135 - 9, 240 - 9, 18, 18)])
    # 36x60: side 3 (odd: rows cy-1 .. cy+1), centres (18, 30), (9, 15), (9, 45), (27, 15), (27, 45)
    boxes = _boxes(disperse_mask(H, W))
    assert boxes == sorted([(17, 29, 3, 3), (8, 14, 3, 3), (8, 44, 3, 3), (26, 14, 3, 3), (26, 44, 3, 3)])
    assert int(disperse_mask(H, W).sum()) == 45
    # HNeRV's bunny_inpaint_50: explicit side
    assert [b[2:] for b in _boxes(make_mask("disperse:50", 1, 720, 1280))] == [(50, 50)] * 5
    # the area fraction is the paper's (5 squares of 100^2 on 960x1920)
    assert float(disperse_mask(960, 1920).float().mean()) == pytest.approx(5 * 100**2 / (960 * 1920))


def test_central_rectangle_is_a_quarter_by_a_quarter() -> None:
    assert _boxes(central_mask(H, W)) == [(13, 22, 9, 15)]
    assert _boxes(central_mask(180, 320)) == [(67, 120, 45, 80)]
    assert make_mask("central", N, H, W).shape == (1, 1, H, W)


def test_user_masks_image_and_video(tmp_path: Path) -> None:
    image = np.zeros((H, W, 3), np.uint8)
    image[5:10, 7:20] = 255
    Image.fromarray(image).save(tmp_path / "mask.png")
    holes = make_mask(str(tmp_path / "mask.png"), N, H, W)
    assert holes.shape == (1, 1, H, W) and _boxes(holes) == [(5, 7, 5, 13)]
    Image.fromarray((image // 255)).save(tmp_path / "binary.png")  # a 0/1 mask: nonzero = hole
    assert torch.equal(make_mask(str(tmp_path / "binary.png"), N, H, W), holes)
    frames = []
    for i in range(N):
        f = np.zeros((H, W, 3), np.uint8)
        f[i : i + 4, 10:20] = 255
        frames.append(f)
    video = write_video(frames, tmp_path / "masks.mkv", fps=25, lossless=True)
    holes = load_mask(video, N, H, W)
    assert holes.shape == (N, 1, H, W)
    assert [_boxes(holes[i : i + 1]) for i in (0, 5)] == [[(0, 10, 4, 10)], [(5, 10, 4, 10)]]
    with pytest.raises(InputError, match="36x60"):
        make_mask(str(tmp_path / "mask.png"), N, 72, 128)
    with pytest.raises(InputError, match="frames"):
        load_mask(video, N + 1, H, W)
    with pytest.raises(InputError, match="no such mask file"):
        make_mask(str(tmp_path / "missing.png"), N, H, W)
    with pytest.raises(ConfigError):
        make_mask("disperse:0", N, H, W)


def test_masked_loss_has_no_gradient_inside_the_hole() -> None:
    torch.manual_seed(0)
    pred = torch.rand(2, 3, H, W, requires_grad=True)
    target = torch.rand(2, 3, H, W)
    holes = central_mask(H, W)
    weights = (~holes).float().expand(2, -1, -1, -1)
    for spec in ("l2", "l1+ssim"):
        pred.grad = None
        ReconstructionLoss.parse(spec)(pred, target, weights).backward()
        inside = pred.grad.masked_select(holes.expand_as(pred.grad))
        assert inside.abs().max() == 0 and pred.grad.abs().max() > 0


@pytest.mark.parametrize("method", ["nerv", "hnerv"])
def test_training_ignores_the_content_of_the_holes(method: str, clip: Path, tmp_path: Path) -> None:
    """Garbage inside the holes trains exactly the same weights as the clean content there."""
    holes = central_mask(H, W)[0, 0].numpy()
    rng = np.random.default_rng(0)
    garbled = [np.where(holes[..., None], rng.integers(0, 256, f.shape, dtype=np.uint8), f) for f in gradient_clip()]
    other_clip = write_video(garbled, tmp_path / "garbled.mkv", fps=25, lossless=True)
    runs = [nervkit.fit(src, out=tmp_path / name, model=method, epochs=2, progress=False, write_video=False,
                        mask="central", threads=1, **TINY[method])
            for src, name in ((clip, "clean"), (other_clip, "garbled"))]
    a, b = (r.model.state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    section = runs[0].tasks["inpainting"]
    assert section["protocol"] == "masked-training" and section["mask"] == "central"
    assert section["hole_fraction"] == pytest.approx(9 * 15 / (H * W))
    assert section["inside_mask"]["frames"] == N and section["inside_mask"]["values"] == N * 3 * 9 * 15
    metrics = json.loads((tmp_path / "clean" / "metrics.json").read_text())
    assert metrics["inpainting"]["inside_mask"]["psnr"] == pytest.approx(section["inside_mask"]["psnr"])
    assert metrics["psnr"] == pytest.approx(section["whole_frame"]["psnr"])
    assert json.loads((tmp_path / "clean" / "run.json").read_text())["data"]["mask"] == "central"


def test_inside_mask_psnr_and_ssim() -> None:
    torch.manual_seed(1)
    target = torch.rand(2, 3, H, W) * 0.5 + 0.25
    holes = central_mask(H, W)
    pred = torch.where(holes, target + 0.1, target)  # error 0.1 inside the hole only
    acc = RegionAccumulator()
    acc.update(pred, target, holes)
    result = acc.result()
    assert result["psnr"] == pytest.approx(20.0) and result["psnr_global"] == pytest.approx(20.0)
    assert result["frames"] == 2 and result["values"] == 2 * 3 * 9 * 15
    assert result["ssim"] < 1
    everywhere = torch.ones(1, 1, H, W, dtype=torch.bool)
    noisy = (target + 0.05 * torch.randn_like(target)).clamp(0, 1)
    acc = RegionAccumulator()
    acc.update(noisy, target, everywhere)
    assert acc.result()["per_frame"]["psnr"] == pytest.approx(psnr_per_frame(noisy, target).tolist(), abs=1e-5)
    assert masked_ssim_per_frame(noisy, target, everywhere).float() == pytest.approx(ssim(noisy, target), abs=1e-5)
    outside = RegionAccumulator()
    outside.update(pred, target, ~holes)
    assert outside.result()["psnr"] == 100.0  # no error outside the hole: the cap


@pytest.mark.parametrize("method", ["nerv", "hnerv"])
def test_inpaint_command_masked_inputs(method: str, clip: Path, tmp_path: Path) -> None:
    run = nervkit.fit(clip, out=tmp_path / "run", model=method, epochs=2, progress=False, write_video=False,
                      threads=1, **TINY[method])
    before = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    code, out, err = run_cli("inpaint", tmp_path / "run", "--mask", "disperse", "--json", "-o", tmp_path / "p.mkv",
                             "--lossless")
    assert code == 0, err
    result = json.loads(out)
    assert result["inside_mask"]["frames"] == N and result["inside_mask"]["psnr"] is not None
    if method == "nerv":  # index-based: the masked input cannot matter
        assert result["protocol"] == "index" and "plain decode" in result["note"]
        assert result["whole_frame"]["psnr"] == pytest.approx(run.metrics.psnr)
    else:  # the embeddings come from the masked frames
        assert result["protocol"] == "masked-input" and "note" not in result
        assert result["whole_frame"]["psnr"] != pytest.approx(run.metrics.psnr, abs=1e-9)
    assert (tmp_path / "p.mkv").is_file()
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == before  # the run is not changed


def test_bad_masks_are_one_line_errors(clip: Path, tmp_path: Path) -> None:
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "small.png")
    fit = ("--params", "20k", "--epochs", 1, "--quiet", "--no-video")
    one_line_error(run_cli("fit", clip, "-o", tmp_path / "run", "--mask", tmp_path / "small.png", *fit),
                   "20x20", "36x60")
    assert not (tmp_path / "run").exists()
    one_line_error(run_cli("fit", clip, "-o", tmp_path / "run", "--mask", tmp_path / "nope.png", *fit), "nope.png")
    assert not (tmp_path / "run").exists()
    one_line_error(run_cli("fit", clip, "-o", tmp_path / "run", "--mask", "disperse:x", *fit), "disperse")
    code, _, err = run_cli("fit", clip, "-o", tmp_path / "run", *fit, "--threads", 1)
    assert code == 0, err
    one_line_error(run_cli("inpaint", tmp_path / "run", "--mask", tmp_path / "small.png"), "20x20")
    one_line_error(run_cli("inpaint", tmp_path / "nothing", "--mask", "central"), "nothing")


def test_trainer_applies_the_loss_mask() -> None:
    """Trainer-level: with the loss mask, what the *target* holds inside the holes changes nothing."""
    from nervkit.data import FrameStore
    from nervkit.models import VideoGeometry, create_model
    from nervkit.train import TrainConfig, Trainer

    clean = torch.from_numpy(np.stack(gradient_clip())).permute(0, 3, 1, 2).contiguous()
    holes = central_mask(H, W)
    garbled = clean.masked_fill(holes.expand(N, 3, -1, -1), 255)
    weights = []
    for frames, mask in ((clean, holes), (garbled, holes), (garbled, None)):
        torch.manual_seed(0)
        model = create_model("nerv", VideoGeometry(N, H, W), **TINY_NERV)
        cfg = TrainConfig(epochs=2, batch_size=2, device="cpu")
        Trainer(model, FrameStore.from_tensor(frames), cfg, device=torch.device("cpu"), progress=False,
                loss_mask=None if mask is None else (~mask).float()).fit()
        weights.append(model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[1][k], weights[2][k]) for k in weights[1])  # unmasked: it matters
