"""Models: registry, presets with the official parameter counts, sizing, every method's contract."""

from __future__ import annotations

import pytest
import torch

from nervkit.errors import ConfigError, ModelError
from nervkit.models import (
    FrameBatch,
    VideoGeometry,
    count_parameters,
    create_model,
    get_method,
    list_methods,
    rebuild_model,
)
from nervkit.models.blocks import PositionalEncoding
from nervkit.models.config import config_to_dict
from nervkit.models.sizing import derive_layout, layout_for, parse_param_count

BUNNY_720P = VideoGeometry(132, 720, 1280)
BUNNY_SMALL = VideoGeometry(132, 180, 320)
TINY = VideoGeometry(6, 36, 64)


@pytest.mark.parametrize("preset,expected", [("S", 3_201_905), ("M", 6_282_001), ("L", 12_524_563)])
def test_nerv_presets_match_official_counts_at_720p(preset: str, expected: int) -> None:
    spec = get_method("nerv")
    config = spec.build_config(BUNNY_720P, preset=preset)
    assert config.strides == (5, 2, 2, 2, 2) and (config.grid_height, config.grid_width) == (9, 16)
    assert count_parameters(spec, config, BUNNY_720P) == expected


def test_nerv_l_with_80_levels_and_gelu_matches_enerv_baseline() -> None:
    spec = get_method("nerv")
    config = spec.build_config(BUNNY_720P, preset="L", overrides={"pe_levels": 80, "activation": "gelu"})
    assert count_parameters(spec, config, BUNNY_720P) == 12_565_523


def test_nerv_budget_reproduces_official_small_bunny_configs() -> None:
    model = create_model("nerv", BUNNY_SMALL, params=1_500_000)
    assert (model.config.grid_channels, model.config.mlp_hidden, model.config.lower_width) == (18, 512, 32)
    assert model.config.strides == (5, 2, 2)
    assert model.parameter_counts().official == 1_502_473
    # the official 0.3 M baseline (grid width 3) is reachable with explicit options
    small = create_model("nerv", BUNNY_SMALL, grid_channels=3, lower_width=32)
    assert small.parameter_counts().official == 305_863


def test_small_budgets_keep_a_usable_grid_width() -> None:
    model = create_model("nerv", VideoGeometry(8, 36, 64), params=25_000)
    assert model.config.grid_channels >= 6
    assert abs(model.parameter_counts().official - 25_000) / 25_000 < 0.1


@pytest.mark.parametrize("budget", [50_000, 200_000, 3_000_000])
def test_nerv_budget_is_met_closely(budget: int) -> None:
    model = create_model("nerv", BUNNY_SMALL, params=budget)
    assert abs(model.parameter_counts().official - budget) / budget < 0.08


@pytest.mark.parametrize(
    "size,strides,grid",
    [((720, 1280), (5, 2, 2, 2, 2), (9, 16)), ((1080, 1920), (5, 3, 2, 2, 2), (9, 16)),
     ((180, 320), (5, 2, 2), (9, 16)), ((90, 160), (5, 2), (9, 16))],
)
def test_derived_layout_matches_official_choices(size, strides, grid) -> None:
    layout = derive_layout(*size)
    assert layout.strides == strides and (layout.grid_height, layout.grid_width) == grid


@pytest.mark.parametrize("size", [(100, 37), (480, 854), (17, 333), (64, 64), (241, 241)])
def test_derived_layout_covers_any_size_with_bounded_padding(size) -> None:
    layout = derive_layout(*size)
    oh, ow = layout.output_size
    assert size[0] <= oh <= 1.5 * size[0] and size[1] <= ow <= 1.5 * size[1]


def test_too_small_frames_and_misfit_strides_are_model_errors() -> None:
    with pytest.raises(ModelError, match="too small"):
        derive_layout(8, 8)
    with pytest.raises(ModelError, match="too small for strides"):
        layout_for(40, 40, (5, 2, 2, 2, 2), None)
    with pytest.raises(ModelError, match="smaller than"):
        layout_for(180, 320, (5, 2, 2), (4, 4))


def test_unknown_names_and_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown model 'nerf'.*did you mean 'nerv'"):
        get_method("nerf")
    with pytest.raises(ConfigError, match="unknown preset"):
        create_model("nerv", TINY, preset="XXL")
    with pytest.raises(ConfigError, match="activation"):
        create_model("nerv", TINY, activation="tanhh")
    with pytest.raises(ConfigError, match="unknown option"):
        create_model("nerv", TINY, widht=3)
    with pytest.raises(ConfigError, match="either a preset or"):
        create_model("nerv", TINY, preset="S", params=100_000)
    for text in ("abc", "-1M", "10"):
        with pytest.raises(ConfigError):
            parse_param_count(text)
    assert parse_param_count("1.5M") == 1_500_000 and parse_param_count("300k") == 300_000


def test_positional_encoding_orderings() -> None:
    t = torch.tensor([0.25])
    inter = PositionalEncoding(1.25, 3, "interleaved")(t)[0]
    concat = PositionalEncoding(1.25, 3, "concatenated")(t)[0]
    angles = torch.tensor([1.25**j * torch.pi * 0.25 for j in range(3)])
    assert torch.allclose(inter[0::2], torch.sin(angles)) and torch.allclose(inter[1::2], torch.cos(angles))
    assert torch.allclose(concat[:3], torch.sin(angles)) and torch.allclose(concat[3:], torch.cos(angles))
    assert PositionalEncoding(0, 3)(t).shape == (1, 1)


@pytest.mark.parametrize("method", list_methods())
def test_every_method_meets_the_contract(method: str) -> None:
    """timm-style: every registered method trains, decodes at the true size and rebuilds from its
    stored config + state alone."""
    torch.manual_seed(0)
    geometry = VideoGeometry(6, 36, 60)  # not a multiple of any stride: exercises pad + crop
    # DNeRV also stores a 2x36x60 difference embedding per frame at this size
    model = create_model(method, geometry, params=60_000 if method == "dnerv" else 20_000)
    frames = torch.rand(2, 3, 36, 60)
    batch = FrameBatch(torch.tensor([0, 5]), frames)
    if model.needs_neighbours:  # previous and next frame of each (here: any frames of the right size)
        batch.neighbours = torch.rand(2, 2, 3, 36, 60)
    pred = model(batch)
    assert pred.shape[-2:] == model.output_size and pred.shape[:2] == (2, 3)
    loss = (model.crop(pred) - frames).square().mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    decoded = model.decode_frames([0, 3, 5])
    assert decoded.shape == (3, 3, 36, 60) and decoded.min() >= 0 and decoded.max() <= 1
    rebuilt = rebuild_model(method, config_to_dict(model.config), geometry)
    rebuilt.load_state_dict(model.state_dict())
    assert torch.equal(rebuilt.decode_frames([0, 3, 5]), decoded)
    groups = model.stored_groups()
    stored = sum(t.numel() for g in groups for t in g.tensors.values())
    assert stored == model.parameter_counts().total  # "total" counts every stored value


def test_decoding_is_deterministic() -> None:
    torch.manual_seed(3)
    model = create_model("nerv", TINY, params=30_000)
    a = model.decode_frames(list(range(6)))
    b = model.decode_frames(list(range(6)))
    assert torch.equal(a, b)


def test_budget_keeps_the_options_the_user_set() -> None:
    model = create_model("nerv", VideoGeometry(8, 36, 64), params=20_000, mlp_hidden=32, lower_width=16)
    assert (model.config.mlp_hidden, model.config.lower_width) == (32, 16)
    with pytest.raises(ConfigError, match="--grid-channels and --params"):
        create_model("nerv", VideoGeometry(8, 36, 64), params=20_000, grid_channels=16)


# -- option rules, the resolve template, unique names (issue #13) -----------------------------------
def test_option_rules_are_one_config_error_naming_the_cli_option() -> None:
    from dataclasses import dataclass

    from nervkit.models.config import option, validate_options

    @dataclass(frozen=True)
    class Rules:
        kernel_min: int = option(1, "", min=1, odd=True)
        kernel_max: int = option(5, "", min="kernel_min", odd=True)
        scale: float = option(1.0, "", positive=True, max=4)
        window: tuple[int, ...] = option((3, 3), "", length=2, min=1)

    validate_options(Rules())
    for changes, message in [({"kernel_max": 4}, "--kernel-max must be odd, got 4"),
                             ({"kernel_min": 0}, "--kernel-min must be >= 1, got 0"),
                             ({"kernel_min": 7}, r"--kernel-max must be >= --kernel-min \(7\), got 5"),
                             ({"scale": float("nan")}, "--scale must be positive, got nan"),
                             ({"scale": 5.0}, "--scale must be <= 4, got 5.0"),
                             ({"window": (3,)}, "--window takes 2 values, got 3"),
                             ({"window": (3, 0)}, r"--window must be >= 1 \(each value\), got 3,0")]:
        with pytest.raises(ConfigError, match=f"^{message}$"):
            validate_options(Rules(**changes))
    # the methods declare theirs: an option mistake is a ConfigError for every method, exit code 2
    for method, options, flag in [("nerv", {"pe_levels": 0}, "--pe-levels"),
                                  ("enerv", {"heads": 0}, "--heads"),
                                  ("hnerv", {"reduction": 0.0}, "--reduction"),
                                  ("dnerv", {"fusion_kernel": 2}, "--fusion-kernel"),
                                  ("nvp", {"growth": 0.5}, "--growth")]:
        with pytest.raises(ConfigError, match=f"^{flag} must be") as caught:
            create_model(method, TINY, **options)
        assert caught.value.exit_code == 2


def test_resolve_is_one_template_and_modules_refuse_unresolved_configs() -> None:
    from nervkit.models.nerv import NeRV, NeRVConfig

    for method, option in [("nerv", "grid_channels"), ("enerv", "grid_channels"), ("hnerv", "channels"),
                           ("hnerv", "model_size"), ("dnerv", "channels"), ("nvp", "sparse_rows")]:
        assert option in get_method(method).config_cls.size_options
        flag = "--" + option.replace("_", "-")
        with pytest.raises(ConfigError, match=f"^{flag} and --params both set the model size"):
            get_method(method).build_config(TINY, params=50_000, overrides={option: 8})
    unset = r"\(--grid-height, --grid-width, --strides still to be derived\)"
    with pytest.raises(ModelError, match=f"NeRV config is not resolved {unset}"):
        NeRV(NeRVConfig(), TINY)
    resolved = NeRVConfig().resolve(TINY)
    assert NeRV(resolved, TINY).output_size == (36, 64)


def test_no_two_classes_or_functions_share_a_name_across_models() -> None:
    import ast
    from collections import Counter
    from pathlib import Path

    import nervkit.models

    names: Counter[str] = Counter()
    for path in Path(nervkit.models.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        names.update(node.name for node in tree.body if isinstance(node, (ast.ClassDef, ast.FunctionDef)))
    assert [name for name, count in names.items() if count > 1] == []
