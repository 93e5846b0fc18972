"""Global one-shot pruning (NeRV §3.3 / spec §2.4, with the fraction meaning what it says).

``fraction`` is the share of prunable weights **removed** (the official NeRV flag meant the share
kept). Prunable: every weight matrix / conv kernel (≥ 2 dims) except the modules a method lists in
``Representation.prune_exclude`` (NeRV: the output head; grids and encoders where a method lists them);
biases are never pruned. One global ranking over all prunable weights decides, by a score per weight:

* ``magnitude`` (default): ``|w|``, L1-magnitude pruning as in NeRV;
* ``layer``: ``|w| / sqrt(n)``, ``n`` the number of non-zero weights of the weight's tensor (HiNeRV:
  Kwan et al., NeurIPS 2023, and the official ``compression/prune_utils.py`` with ``--prune-weight 0.5``).
  A weight of a large layer must be larger to survive, so large layers lose more than small ones, whose
  few weights each matter more.

The weights with the ``round(fraction · N)`` smallest scores (and any tied with the last of them) are
removed; the masks stay fixed while fine-tuning (re-applied after every optimizer step), and the file codes
them as a sparse bitmask (min/max quantizer) or as exact zero codes (symmetric quantizer, :mod:`.quantize`).
"""

from __future__ import annotations

import math

import torch
from torch.nn.utils import parametrize

from ..errors import ConfigError
from ..models import Representation
from .config import PRUNE_SCORES


def prunable_parameters(model: Representation) -> dict[str, torch.nn.Parameter]:
    exclude = tuple(getattr(model, "prune_exclude", ()))
    return {
        name: p
        for name, p in model.named_parameters()
        if p.ndim >= 2 and not any(name == e or name.startswith(e + ".") for e in exclude)
    }


def prune_scores(params: dict[str, torch.Tensor], score: str = "magnitude") -> dict[str, torch.Tensor]:
    """The score of every weight of ``params`` (module docstring): ``magnitude`` = |w|, ``layer`` =
    |w| / sqrt(non-zero weights of its tensor); float32, the weight's shape."""
    if score not in PRUNE_SCORES:
        raise ConfigError(f"--prune-score must be one of {', '.join(PRUNE_SCORES)}; got {score!r}")
    out = {}
    for name, p in params.items():
        magnitude = p.detach().abs().float()
        if score == "layer":
            magnitude = magnitude / math.sqrt(max(int(torch.count_nonzero(p)), 1))
        out[name] = magnitude
    return out


def prune_masks(model: Representation, fraction: float, score: str = "magnitude") -> dict[str, torch.Tensor]:
    """Boolean keep-masks removing the ``fraction`` of prunable weights with the smallest ``score``
    (``magnitude`` or ``layer``, module docstring), ranked globally over all prunable tensors."""
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"--prune is the fraction of weights removed and must be in [0, 1), got {fraction}")
    params = prunable_parameters(model)
    if not params:
        return {}
    scores = prune_scores(params, score)
    flat = torch.cat([s.flatten() for s in scores.values()])
    k = int(round(fraction * flat.numel()))
    if k == 0:
        return {name: torch.ones_like(p, dtype=torch.bool) for name, p in params.items()}
    threshold = flat.kthvalue(k).values
    return {name: s > threshold for name, s in scores.items()}


def magnitude_masks(model: Representation, fraction: float) -> dict[str, torch.Tensor]:
    """Boolean keep-masks removing the ``fraction`` of prunable weights with the smallest |w|."""
    return prune_masks(model, fraction, "magnitude")


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
