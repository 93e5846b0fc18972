"""The method registry: one entry per method, with its config class and named presets.

>>> from nervkit.models import create_model, list_methods
>>> list_methods()
['dnerv', 'enerv', 'hnerv', 'nerv']
>>> model = create_model("nerv", VideoGeometry(132, 180, 320), params=1_500_000)

Register a new method with :func:`register_method` on its module class (one file + this call).
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import BitstreamError, ConfigError, NervkitError
from ..resources import available_memory_bytes, format_bytes
from .base import MethodConfig, ParameterCounts, Representation
from .config import VideoGeometry, config_from_dict, replace_config, validate_choices
from .sizing import BudgetTooLargeError, MAX_PARAM_BUDGET, check_param_budget

#: a budget the solved model misses by more than this factor (it is smaller) cannot be met: some
#: solvers clamp silently at their widest setting (NVP's sparse grid at one vertex per pixel)
BUDGET_SHORTFALL = 0.5
#: copies of every parameter while training with Adam/AdamW: weights, gradients and the two moments
TRAINING_COPIES = 4


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

    def unresolved_config(
        self,
        *,
        preset: str | None = None,
        params: int | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> MethodConfig:
        """Preset (or default, or the budget base) → user overrides, checked but not yet resolved."""
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
        validate_choices(config)
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
) -> Callable[[type[Representation]], type[Representation]]:
    """Class decorator that registers a Representation subclass under ``name``.

    ``train_defaults``: TrainConfig values of the method's own recipe (e.g. HNeRV's L2 loss and
    lr 1e-3); ``nervkit.fit`` uses them for the training options the user did not set.
    """

    def decorate(model_cls: type[Representation]) -> type[Representation]:
        if name in _REGISTRY:
            raise ValueError(f"method {name!r} registered twice")
        model_cls.method = name
        _REGISTRY[name] = MethodSpec(name, config_cls, model_cls, description, dict(presets or {}),
                                     default_preset, paper, dict(budget_base or {}),
                                     dict(train_defaults or {}))
        return model_cls

    return decorate


def list_methods() -> list[str]:
    """Names of all registered methods."""
    return sorted(_REGISTRY)


def get_method(name: str) -> MethodSpec:
    """The registered method ``name`` (ConfigError with suggestions if unknown)."""
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


def count_parameters(spec: MethodSpec, config: MethodConfig, geometry: VideoGeometry) -> int:
    """Official parameter count of ``config`` without allocating weights (meta device)."""
    return count_parameter_kinds(spec, config, geometry).official


def count_parameter_kinds(spec: MethodSpec, config: MethodConfig, geometry: VideoGeometry) -> ParameterCounts:
    """:class:`~nervkit.models.base.ParameterCounts` of ``config`` (official, total, parts) on the meta
    device."""
    with torch.device("meta"):
        model = spec.model_cls(config, geometry)
    return model.parameter_counts()


class _TooManyModules(Exception):
    pass


@contextmanager
def _module_limit(limit: int | None) -> Iterator[None]:
    """Abort a model construction that registers more than ``limit`` submodules, parameters and
    buffers in all (a crafted config asking for millions of layers) before it has spent minutes and
    gigabytes on Python objects. Uses PyTorch's global registration hooks, only while it is active."""
    if limit is None:
        yield
        return
    registered = 0

    def hook(module: torch.nn.Module, name: str, value: Any) -> None:
        nonlocal registered
        registered += 1
        if registered > limit:
            raise _TooManyModules(registered)

    hooks = torch.nn.modules.module
    handles = [hooks.register_module_module_registration_hook(hook),
               hooks.register_module_parameter_registration_hook(hook),
               hooks.register_module_buffer_registration_hook(hook)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def build_meta_model(method: str | MethodSpec, config: MethodConfig | Mapping[str, Any],
                     geometry: VideoGeometry, *, error: type[NervkitError] = ConfigError,
                     max_modules: int | None = None) -> Representation:
    """``method`` built on the meta device: every shape, no storage, no initialisation.

    ``config``: a resolved config or its dict (as stored in run.json / a .nerv header). Anything that
    fails (an unknown method, an invalid config, a model that cannot be built for ``geometry``, more
    than ``max_modules`` submodules) is raised as a one-line ``error``."""
    try:
        spec = method if isinstance(method, MethodSpec) else get_method(method)
    except ConfigError as exc:
        raise error(str(exc)) from None
    try:
        cfg = config_from_dict(spec.config_cls, dict(config)) if isinstance(config, Mapping) else config
        # warnings.catch_warnings: a degenerate config (a zero width) makes PyTorch warn on stderr
        with _module_limit(max_modules), torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return spec.model_cls(cfg, geometry)
    except _TooManyModules:
        raise error(f"the {spec.name} config asks for more than {max_modules:,} layers and tensors") from None
    except NervkitError as exc:
        if isinstance(exc, error):
            raise
        raise error(f"cannot build the {spec.name} model: {exc}") from None
    except (RuntimeError, ValueError, TypeError, OverflowError, ZeroDivisionError, AttributeError,
            IndexError, KeyError, MemoryError) as exc:
        raise error(f"cannot build the {spec.name} model ({type(exc).__name__}: "
                    f"{' '.join(str(exc).split())[:200]})") from None


@dataclass(frozen=True)
class ModelMemory:
    """What a model needs in memory (:func:`model_memory`)."""

    method: str
    parameters: int  #: values in parameters (trained, with gradients)
    buffers: int  #: values in buffers (stored, not trained: e.g. HNeRV's embeddings)
    weight_bytes: int  #: bytes of parameters + buffers (the model as loaded)
    bytes: int  #: bytes needed: weights, plus gradients and Adam's two moments when training


def model_memory(model: Representation, *, training: bool) -> ModelMemory:
    """Bytes that ``model`` (usually a meta-device one, :func:`build_meta_model`) needs once real:
    parameters and buffers at their dtypes, and, when ``training``, each parameter
    :data:`TRAINING_COPIES` times (weights, gradients, Adam's two moments). Activations are not
    counted (they depend on the batch)."""
    params = list(model.parameters())
    buffers = list(model.buffers())
    param_bytes = sum(p.numel() * p.element_size() for p in params)
    buffer_bytes = sum(b.numel() * b.element_size() for b in buffers)
    copies = TRAINING_COPIES if training else 1
    return ModelMemory(model.method, sum(p.numel() for p in params), sum(b.numel() for b in buffers),
                       param_bytes + buffer_bytes, copies * param_bytes + buffer_bytes)


def _device_kind(device: str | torch.device | None) -> torch.device | None:
    """The CUDA device ``device`` names (``auto`` = CUDA when present), else None (host memory)."""
    if device is None:
        return None
    if str(device) == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        return None
    return dev if dev.type == "cuda" and torch.cuda.is_available() else None


def check_model_memory(method: str | MethodSpec, config: MethodConfig | Mapping[str, Any],
                       geometry: VideoGeometry, *, training: bool, device: str | torch.device | None = None,
                       limit: int | None = None, extra_bytes: int = 0,
                       error: type[NervkitError] = ConfigError) -> ModelMemory:
    """Refuse, before anything is allocated, a model that does not fit in memory.

    Builds ``method`` with ``config`` (resolved, or its stored dict) for ``geometry`` on the meta device,
    counts its parameters and buffers (:func:`model_memory`: ×4 for the parameters when ``training``:
    weights, gradients, Adam's two moments) and compares the bytes, plus ``extra_bytes`` (e.g. a batch
    of decoded frames), with ``limit`` (default :func:`nervkit.resources.available_memory_bytes`:
    MemAvailable, the cgroup limit, RLIMIT_AS / RLIMIT_DATA). On a CUDA ``device`` (``"auto"`` = CUDA
    when present) the model is still built in host memory first, so host memory must hold the weights
    and the GPU's free memory the rest. Raises ``error`` (ConfigError by default; BitstreamError for
    files) with one line; returns the :class:`ModelMemory` estimate when it fits.

    >>> spec = get_method("nerv")
    >>> config = spec.build_config(geometry, params=budget)
    >>> check_model_memory(spec, config, geometry, training=True, device=train_cfg.device)
    """
    model = build_meta_model(method, config, geometry, error=error)
    need = model_memory(model, training=training)
    gpu = _device_kind(device)
    extra = max(0, int(extra_bytes))
    host_bytes = need.weight_bytes if gpu is not None else need.bytes + extra
    action = "training it" if training else "loading it"
    detail = " (weights, gradients and Adam's two moments)" if training else ""
    subject = ("the file's " if issubclass(error, BitstreamError) else "the ") + f"{need.method} model"
    stored = f" and {need.buffers:,} buffer values" if need.buffers else ""
    size = f"{subject} has {need.parameters:,} parameters{stored} ({format_bytes(need.weight_bytes)})"
    available = available_memory_bytes() if limit is None else int(limit)
    if host_bytes > available:
        raise error(f"{size}: {action} needs about {format_bytes(host_bytes)}{detail}, but only "
                    f"{format_bytes(available)} of memory is available")
    if gpu is not None:
        free = torch.cuda.mem_get_info(gpu)[0] if limit is None else int(limit)
        if need.bytes + extra > free:
            raise error(f"{size}: {action} on {gpu} needs about {format_bytes(need.bytes + extra)}{detail}, "
                        f"but only {format_bytes(free)} of its memory is free")
    return need


def preset_config(name: str, preset: str) -> dict[str, Any]:
    """The raw option values of a named preset."""
    spec = get_method(name)
    if preset not in spec.presets:
        raise ConfigError(f"unknown preset {preset!r} for {name}; choose from {', '.join(spec.presets)}")
    return dict(spec.presets[preset])


__all__ = [
    "MethodSpec",
    "ModelMemory",
    "build_meta_model",
    "check_model_memory",
    "count_parameter_kinds",
    "count_parameters",
    "create_model",
    "get_method",
    "list_methods",
    "model_memory",
    "preset_config",
    "rebuild_model",
    "register_method",
    "replace_config",
]
