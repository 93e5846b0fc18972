"""NVP: official sizes, the grid lookups against the spec's formulas, budget sizing, pixel sampling,
time/scale rendering and the stored form."""

from __future__ import annotations

import math

import pytest
import torch

from helpers import meta_model
from nervkit.data import FrameStore
from nervkit.data.pixels import PixelSampler
from nervkit.errors import ConfigError
from nervkit.models import PixelBatch, VideoGeometry, create_model
from nervkit.models.grids import MultiResPlane, SparseVolume, plane_levels, tcnn_resolution

UVG = VideoGeometry(600, 1080, 1920)


@pytest.mark.parametrize("preset,total,keyframes", [("nvp-s", 135_807_267, 27_696_672),
                                                    ("nvp-l", 271_547_715, 55_393_344)])
def test_presets_have_the_official_parameter_counts(preset: str, total: int, keyframes: int) -> None:
    counts = meta_model("nvp", UVG, preset=preset).parameter_counts()
    assert counts.official == total and counts.total == total
    assert counts.parts["keyframes"] == keyframes
    assert counts.parts["modulator"] + counts.parts["synthesizer"] == (110_595 if preset == "nvp-s" else 154_371)


def test_keyframe_resolutions_follow_tcnn() -> None:
    """Spec §2.2(a): R_l = ⌈16·1.35^l − 1⌉ + 1, Σ R_l² = 4,616,112 per plane."""
    res = [tcnn_resolution(16, 1.35, lv)[1] for lv in range(16)]
    assert res == [16, 22, 30, 40, 54, 72, 97, 131, 177, 239, 322, 435, 587, 792, 1069, 1443]
    assert sum(r * r for r in res) == 4_616_112
    fit = plane_levels(16, 16, 1.35, (6, 40))  # capped at the axis length, stops when both are capped
    assert [(lv.res_a, lv.res_b) for lv in fit] == [(6, 16), (6, 22), (6, 30), (6, 40)]


def _reference_lookup(plane: MultiResPlane, uv: torch.Tensor, wrap: bool) -> torch.Tensor:
    """Spec §2.2(a) literally: p = u·s + ½, 4 corners, flat index (i_a + R_a·i_b), clamped or mod R_a·R_b."""
    out = []
    for lv, img in zip(plane.levels, plane.level_images()):
        flat_table = img.reshape(plane.features, -1)
        pos = uv * torch.tensor([lv.scale_a, lv.scale_b]) + 0.5
        i0 = pos.floor().long()
        frac = pos - i0
        acc = 0
        for da, db in ((0, 0), (1, 0), (0, 1), (1, 1)):
            ia, ib = i0[:, 0] + da, i0[:, 1] + db
            if wrap:
                index = (ia + lv.res_a * ib) % lv.vertices
            else:
                index = ia.clamp(max=lv.res_a - 1) + lv.res_a * ib.clamp(max=lv.res_b - 1)
            w = (frac[:, 0] if da else 1 - frac[:, 0]) * (frac[:, 1] if db else 1 - frac[:, 1])
            acc = acc + flat_table[:, index].t() * w[:, None]
        out.append(acc)
    return torch.cat(out, 1)


@pytest.mark.parametrize("border", ["clamp", "wrap"])
def test_plane_lookup_matches_the_spec_formula(border: str) -> None:
    torch.manual_seed(0)
    plane = MultiResPlane(plane_levels(6, 16, 1.35, None), 3, border, init_range=1.0)
    uv = torch.rand(500, 2)
    uv[:20] = 1.0  # the upper border, where wrap and clamp differ
    with torch.no_grad():
        got = plane(uv)
        assert got.shape == (500, 18)
        assert torch.allclose(got, _reference_lookup(plane, uv, border == "wrap"), atol=1e-4)
        other = _reference_lookup(plane, uv, border != "wrap")
    assert (got[:20] - other[:20]).abs().max() > 0.1  # the border really is read differently
    inner = (uv < 0.9).all(1)
    assert torch.allclose(got[inner], other[inner], atol=1e-4)


def test_sparse_lookup_reads_the_centred_window_in_order() -> None:
    vol = SparseVolume(frames=4, rows=5, cols=6, features=2, init_range=1.0)
    grid = vol.grid.detach()
    t, x, y = 1 / 3, 0.5, 0.0  # slice 1, row 2, column 0 (the left border is clamped)
    with torch.no_grad():
        got = vol(torch.tensor([[t, x, y]]))[0].view(9, 2)
    expected = [grid[1, 2 + a, max(b, 0)] for a in (-1, 0, 1) for b in (-1, 0, 1)]
    assert torch.equal(got, torch.stack(expected))
    with torch.no_grad():  # the linear temporal path blends the two slices around (S − 1)t
        half = vol(torch.tensor([[0.5, x, 0.4]]), linear_time=True)[0].view(9, 2)
    n = math.floor(0.4 * 5 + 0.5)
    assert torch.allclose(half[4], (grid[1, 2, n] + grid[2, 2, n]) / 2)


def _lookup_gradients(module: torch.nn.Module, inputs: torch.Tensor, **kwargs: bool) -> list[torch.Tensor]:
    module.zero_grad(set_to_none=True)
    out = module(inputs, **kwargs)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return [p.grad.clone() for p in module.parameters()]


@pytest.mark.parametrize("case", ["sparse", "sparse-linear-time", "sparse-upsampled", "plane-wrap", "plane-clamp"])
def test_lookup_gradients_do_not_depend_on_the_threads(case: str) -> None:
    """Many samples read the same vertices, so a grid's gradient sums duplicates, and float addition
    is not associative: the sum must run in an order that threads do not change (training is
    reproducible, docs/design.md "Conventions"; :func:`~nervkit.models.grids.gather_rows`). Repeated
    backward passes with several threads are bit-identical to each other and to one thread's."""
    torch.manual_seed(0)
    txy = torch.rand(20_000, 3)  # 20,000 × 9 reads × 2 features: far above the 32,768 updates from
    # which PyTorch's CPU index_put_(accumulate=True) splits the work over threads with atomic adds
    if case.startswith("sparse"):
        module: torch.nn.Module = SparseVolume(6, 9, 11, 2, upsample=case.endswith("upsampled"), init_range=1.0)
        inputs, kwargs = txy, {"linear_time": case.endswith("time")}
    else:
        module = MultiResPlane(plane_levels(4, 4, 1.5, None), 2, case.split("-")[1], init_range=1.0)
        inputs, kwargs = txy[:, 1:], {}
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        serial = _lookup_gradients(module, inputs, **kwargs)
        torch.set_num_threads(max(4, threads))
        for _ in range(5):
            for a, b in zip(serial, _lookup_gradients(module, inputs, **kwargs), strict=True):
                assert torch.equal(a, b), (a - b).abs().max()
    finally:
        torch.set_num_threads(threads)


def test_budget_sizing_meets_the_budget_and_fits_the_video() -> None:
    geometry = VideoGeometry(132, 180, 320)
    for budget in (300_000, 1_500_000, 4_000_000):
        model = meta_model("nvp", geometry, params=budget)
        assert abs(model.parameter_counts().official - budget) / budget < 0.03
        c = model.config
        assert c.planes == "fit" and c.sparse_frames == 132
        assert abs(c.sparse_rows / c.sparse_cols - 180 / 320) < 0.1
    with pytest.raises(ConfigError, match="too small"):
        meta_model("nvp", geometry, params=2_000)
    with pytest.raises(ConfigError, match="--features must be >= 1, got 0"):  # was a ModelError
        create_model("nvp", VideoGeometry(4, 20, 30), params=50_000, features=0)


def test_pixel_samples_are_seeded_and_carry_targets_and_weights() -> None:
    frames = torch.randint(0, 256, (5, 3, 7, 9), dtype=torch.uint8)
    store = FrameStore(frames, 25.0, list(range(5)), (7, 9))
    mask = torch.zeros(1, 1, 7, 9)
    mask[..., :3, :] = 1
    sampler = PixelSampler(store, [0, 2, 4], 100, seed=3, loss_mask=mask)
    assert sampler.batches_per_epoch == math.ceil(3 * 63 / 100)
    a, b, c = sampler.batch(1, 0), sampler.batch(1, 0), sampler.batch(1, 1)
    assert torch.equal(a.frames, b.frames) and torch.equal(a.rows, b.rows) and not torch.equal(a.cols, c.cols)
    assert set(a.frames.tolist()) <= {0, 2, 4}
    assert torch.equal(a.target, frames[a.frames, :, a.rows, a.cols].float() / 255)
    assert torch.equal(a.weight, (a.rows < 3).float())


def _small(geometry: VideoGeometry) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("nvp", geometry, params=40_000)


def test_positions_and_scales_render_consistently() -> None:
    geometry = VideoGeometry(5, 12, 20)
    model = _small(geometry).eval()
    with torch.no_grad():
        frames = model.decode(torch.tensor([1, 2]))
        assert torch.equal(model.decode_at(torch.tensor([1.0, 2.0])), frames)
        mid = model.decode_at(torch.tensor([1.5]))
        assert not torch.equal(mid[0], frames[0]) and not torch.equal(mid[0], frames[1])
        assert torch.allclose(model.decode_scaled(torch.tensor([1, 2]), 1), frames)
        big = model.decode_scaled(torch.tensor([2]), 3)
        assert big.shape == (1, 3, 36, 60)
        # the ×3 grid's corners are the same coordinates as the fitted grid's corners
        assert torch.allclose(big[0, :, 0, 0], frames[1, :, 0, 0], atol=1e-5)
        assert torch.allclose(big[0, :, -1, -1], frames[1, :, -1, -1], atol=1e-5)
        # a pixel batch gives what the rendered frame has at those pixels
        batch = PixelBatch(torch.tensor([1, 2]), torch.tensor([3, 11]), torch.tensor([0, 19]), torch.zeros(2, 3))
        got = model(batch)
        assert torch.allclose(got[0], frames[0, :, 3, 0], atol=1e-5)
        assert torch.allclose(got[1], frames[1, :, 11, 19], atol=1e-5)
        small_tiles = create_model("nvp", geometry, params=40_000, render_pixels=7)
        small_tiles.load_state_dict(model.state_dict())
        assert torch.allclose(small_tiles.decode(torch.tensor([1, 2])), frames, atol=1e-6)


def test_stored_form_round_trips_and_held_out_slices_are_filled() -> None:
    geometry = VideoGeometry(5, 12, 20)
    model = _small(geometry)
    groups = {g.name: g for g in model.stored_groups()}
    assert groups["keyframes"].kind == "latent_image" and groups["sparse"].kind == "latent_video"
    assert groups["synthesizer_input"].min_bits == 16
    vol = groups["sparse"].tensors["sparse.volumes"]
    assert vol.shape == (model.config.sparse_features, 5, model.config.sparse_rows, model.config.sparse_cols)
    rebuilt = create_model("nvp", geometry, params=40_000)
    rebuilt.load_stored({k: v.clone() for g in groups.values() for k, v in g.tensors.items()})
    with torch.no_grad():
        assert torch.equal(rebuilt.decode(torch.tensor([0, 4])), model.decode(torch.tensor([0, 4])))
        model.fill_untrained_frames([0, 3, 4])
    grid = model.sparse.grid.detach()
    assert torch.allclose(grid[1], torch.lerp(grid[0], grid[3], 1 / 3))
    assert torch.allclose(grid[2], torch.lerp(grid[0], grid[3], 2 / 3))
    with pytest.raises(ValueError, match="missing"):
        rebuilt.load_stored({})
