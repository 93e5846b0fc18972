"""Global magnitude pruning (NeRV §3.3 / spec §2.4, with the fraction meaning what it says).

``fraction`` is the share of prunable weights **removed** (the official NeRV flag meant the share
kept). Prunable: every weight matrix / conv kernel (≥ 2 dims) except the modules a method lists in
``Representation.prune_exclude`` (NeRV: the output head); biases are never pruned. One global
L1-magnitude ranking over all prunable weights decides; the masks stay fixed while fine-tuning
(re-applied after every optimizer step), and the file codes them as a sparse bitmask.
"""

from __future__ import annotations

import torch
from torch.nn.utils import parametrize

from ..errors import ConfigError
from ..models import Representation


def prunable_parameters(model: Representation) -> dict[str, torch.nn.Parameter]:
    exclude = tuple(getattr(model, "prune_exclude", ()))
    return {
        name: p
        for name, p in model.named_parameters()
        if p.ndim >= 2 and not any(name == e or name.startswith(e + ".") for e in exclude)
    }


def magnitude_masks(model: Representation, fraction: float) -> dict[str, torch.Tensor]:
    """Boolean keep-masks removing the ``fraction`` of prunable weights with the smallest |w|."""
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"--prune is the fraction of weights removed and must be in [0, 1), got {fraction}")
    params = prunable_parameters(model)
    if not params:
        return {}
    magnitudes = torch.cat([p.detach().abs().flatten() for p in params.values()])
    k = int(round(fraction * magnitudes.numel()))
    if k == 0:
        return {name: torch.ones_like(p, dtype=torch.bool) for name, p in params.items()}
    threshold = magnitudes.kthvalue(k).values
    return {name: p.detach().abs() > threshold for name, p in params.items()}


@torch.no_grad()
def apply_masks(model: Representation, masks: dict[str, torch.Tensor]) -> None:
    """Zero the pruned weights in place (the latent weight when the tensor is re-parametrized, as
    during quantization-aware fine-tuning)."""
    for name, mask in masks.items():
        module_name, _, attr = name.rpartition(".")
        module = model.get_submodule(module_name)
        if parametrize.is_parametrized(module, attr):
            weight = module.parametrizations[attr].original
        else:
            weight = getattr(module, attr)
        weight.mul_(mask.to(weight.device, weight.dtype))


def sparsity(model: Representation) -> float:
    """Share of exact zeros among the prunable weights."""
    params = prunable_parameters(model)
    total = sum(p.numel() for p in params.values())
    zeros = sum(int((p == 0).sum()) for p in params.values())
    return zeros / total if total else 0.0
