"""The method registry: one entry per method, with its config class and named presets.

>>> from nervkit.models import create_model, list_methods
>>> list_methods()
['dnerv', 'enerv', 'hnerv', 'nerv', 'nvp']
>>> model = create_model("nerv", VideoGeometry(132, 180, 320), params=1_500_000)

Register a new method with :func:`register_method` on its module class (one file + this call).
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import ConfigError
from .base import MethodConfig, ParameterCounts, Representation
from .config import VideoGeometry, config_from_dict, replace_config, validate_options
from .sizing import BudgetTooLargeError, MAX_PARAM_BUDGET, check_param_budget

#: a budget the solved model misses by more than this factor (it is smaller) cannot be met: some
#: solvers clamp silently at their widest setting (NVP's sparse grid at one vertex per pixel)
BUDGET_SHORTFALL = 0.5


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: its name, config dataclass, module class and presets."""

    name: str
    config_cls: type
    model_cls: type[Representation]
    description: str
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    default_preset: str | None = None
    paper: str = ""
    budget_base: dict[str, Any] = field(default_factory=dict)
    #: the method's training recipe (TrainConfig fields), applied for the options the user did not set
    train_defaults: dict[str, Any] = field(default_factory=dict)
    #: the method's compression recipe (CompressConfig fields, e.g. HiNeRV's pruning score, Quant-Noise and
    #: quantizer), applied by ``nervkit compress`` for the settings the user did not give
    compress_defaults: dict[str, Any] = field(default_factory=dict)

    def unresolved_config(
        self,
        *,
        preset: str | None = None,
        params: int | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> MethodConfig:
        """Preset (or default, or the budget base) → user overrides, checked against the option rules
        (:func:`~nervkit.models.config.validate_options`) but not yet resolved."""
        if preset is not None and params is not None:
            raise ConfigError("give either a preset or a parameter budget (--params), not both")
        if params is not None:
            check_param_budget(params)
        # a budget starts from the method's budget base options; otherwise from a preset
        base: dict[str, Any] = dict(self.budget_base) if params is not None else {}
        name = preset if preset is not None else (None if params is not None else self.default_preset)
        if name is not None:
            if name not in self.presets:
                raise ConfigError(
                    f"unknown preset {name!r} for {self.name}; choose from {', '.join(self.presets)}"
                )
            base.update(self.presets[name])
        base.update(overrides or {})
        config = config_from_dict(self.config_cls, base)
        validate_options(config)
        return config

    def build_config(
        self,
        geometry: VideoGeometry,
        *,
        preset: str | None = None,
        params: int | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> MethodConfig:
        """The config resolved for this video (derived sizes, parameter budget met).

        A budget above the largest model the method can build for this video (its solver's widest
        setting) is a one-line ConfigError naming that largest model, as is one above
        :data:`~nervkit.models.sizing.MAX_PARAM_BUDGET` (also through ``model_size``)."""
        config = self.unresolved_config(preset=preset, params=params, overrides=overrides)
        model_size = getattr(config, "model_size", None)  # HNeRV / D-NeRV: a budget in millions
        too_big = isinstance(model_size, (int, float)) and not model_size * 1e6 <= MAX_PARAM_BUDGET
        if params is None and too_big:
            raise ConfigError(f"--model-size {model_size:g} (millions of parameters) is absurd; nervkit "
                              f"accepts at most {MAX_PARAM_BUDGET / 1e6:,.0f}")
        try:
            resolved = config.resolve(geometry, params, frozenset(overrides or {}))
        except BudgetTooLargeError as exc:
            raise ConfigError(self._unreachable(exc.target, exc.largest, geometry)) from None
        if params is not None:
            counts = count_parameter_kinds(self, resolved, geometry)
            reached = max(counts.official, counts.total)
            if reached < BUDGET_SHORTFALL * params:
                raise ConfigError(self._unreachable(params, reached, geometry))
        return resolved

    def _unreachable(self, target: int, largest: int, geometry: VideoGeometry) -> str:
        return (f"a budget of {target:,} parameters is more than {self.name} can use for "
                f"{geometry.num_frames} frames of {geometry.height}x{geometry.width}: the largest "
                f"{self.name} model for this video has about {largest:,} parameters; give a smaller budget")


_REGISTRY: dict[str, MethodSpec] = {}


def register_method(
    name: str,
    config_cls: type,
    *,
    description: str,
    presets: dict[str, dict[str, Any]] | None = None,
    default_preset: str | None = None,
    paper: str = "",
    budget_base: dict[str, Any] | None = None,
    train_defaults: dict[str, Any] | None = None,
    compress_defaults: dict[str, Any] | None = None,
) -> Callable[[type[Representation]], type[Representation]]:
    """Class decorator that registers a Representation subclass under ``name``.

    ``train_defaults``: TrainConfig values of the method's own recipe (e.g. HNeRV's L2 loss and
    lr 1e-3); ``nervkit.fit`` uses them for the training options the user did not set.
    ``compress_defaults``: CompressConfig values of the method's compression recipe (e.g. HiNeRV's
    ``{"prune_score": "layer", "quantizer": "symmetric", "qat_noise": 0.9}``); ``nervkit compress`` uses
    them for the settings the user did not give (checked there, as any setting).
    """

    def decorate(model_cls: type[Representation]) -> type[Representation]:
        if name in _REGISTRY:
            raise ValueError(f"method {name!r} registered twice")
        model_cls.method = name
        _REGISTRY[name] = MethodSpec(name, config_cls, model_cls, description, dict(presets or {}),
                                     default_preset, paper, dict(budget_base or {}),
                                     dict(train_defaults or {}), dict(compress_defaults or {}))
        return model_cls

    return decorate


#: the entry-point group through which installed packages add methods (docs/methods.md)
ENTRY_POINT_GROUP = "nervkit.methods"
_plugins_loaded = False


def load_plugins() -> list[str]:
    """Import the methods that installed packages declare in the ``nervkit.methods`` entry-point group
    (each entry point names a module or object whose import registers a method with
    :func:`register_method`); once per process. A plugin that fails to import is reported on stderr
    and skipped: it cannot break the built-in methods. Returns the names of the entry points loaded."""
    global _plugins_loaded
    if _plugins_loaded:
        return []
    _plugins_loaded = True
    from importlib.metadata import entry_points

    loaded = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry.load()
        except Exception as exc:  # noqa: BLE001 - a third party's import error, reported and skipped
            print(f"nervkit: warning: the method plugin {entry.name!r} ({entry.value}) failed to load: "
                  f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}", file=sys.stderr)
            continue
        loaded.append(entry.name)
    return loaded


def list_methods() -> list[str]:
    """Names of all registered methods (built-in, and installed plugins: :func:`load_plugins`)."""
    load_plugins()
    return sorted(_REGISTRY)


def get_method(name: str) -> MethodSpec:
    """The registered method ``name`` (ConfigError with suggestions if unknown)."""
    load_plugins()
    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        close = difflib.get_close_matches(name.lower(), list(_REGISTRY), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown model {name!r}{hint}; available: {', '.join(list_methods())}") from None


def create_model(
    name: str,
    geometry: VideoGeometry,
    *,
    preset: str | None = None,
    params: int | None = None,
    **overrides: Any,
) -> Representation:
    """Build method ``name`` for a video of ``geometry`` (the timm-style single entry point)."""
    spec = get_method(name)
    config = spec.build_config(geometry, preset=preset, params=params, overrides=overrides)
    return spec.model_cls(config, geometry)


def rebuild_model(name: str, config: dict[str, Any], geometry: VideoGeometry) -> Representation:
    """Rebuild a model from a stored (already resolved) config dict — no video needed."""
    spec = get_method(name)
    cfg = config_from_dict(spec.config_cls, config)
    return spec.model_cls(cfg, geometry)


def count_parameters(spec: MethodSpec | str, config: MethodConfig, geometry: VideoGeometry) -> int:
    """Official parameter count of ``config`` without allocating weights (meta device); ``spec`` is a
    registered method or its name (the budget solvers count their trials with it)."""
    return count_parameter_kinds(spec, config, geometry).official


def count_parameter_kinds(spec: MethodSpec | str, config: MethodConfig,
                          geometry: VideoGeometry) -> ParameterCounts:
    """:class:`~nervkit.models.base.ParameterCounts` of ``config`` (official, total, parts) on the meta
    device."""
    model_cls = (get_method(spec) if isinstance(spec, str) else spec).model_cls
    with torch.device("meta"):
        model = model_cls(config, geometry)
    return model.parameter_counts()


def preset_config(name: str, preset: str) -> dict[str, Any]:
    """The raw option values of a named preset."""
    spec = get_method(name)
    if preset not in spec.presets:
        raise ConfigError(f"unknown preset {preset!r} for {name}; choose from {', '.join(spec.presets)}")
    return dict(spec.presets[preset])


__all__ = [
    "MethodSpec",
    "count_parameter_kinds",
    "count_parameters",
    "create_model",
    "get_method",
    "list_methods",
    "preset_config",
    "rebuild_model",
    "register_method",
    "replace_config",
]
