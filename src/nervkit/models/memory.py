"""What a model needs in memory, known before it exists: built on the meta device, counted, compared
with what the machine has (:mod:`nervkit.resources`). Used by ``nervkit fit`` (a budget the machine
cannot train is refused before any allocation) and by the ``.nerv`` decoder (a crafted header cannot
make it allocate)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import BitstreamError, ConfigError, NervkitError
from ..resources import available_memory_bytes, format_bytes
from .base import MethodConfig, Representation
from .config import VideoGeometry, config_from_dict
from .registry import MethodSpec, get_method

#: copies of every parameter while training with Adam/AdamW: weights, gradients and the two moments
TRAINING_COPIES = 4


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
