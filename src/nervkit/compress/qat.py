"""Quantization-aware fine-tuning: train through the exact quantizer the file will use.

Every stored float tensor is re-parametrized as ``w ↦ Q(w)`` where Q is the file's own rule
(:func:`~.quantize.fake_quantize`: the same per-tensor / per-channel choice, levels and float32
arithmetic; pruned tensors keep their zeros and quantize only the non-zeros, as
:mod:`.sparse_codec` does). The backward pass is the straight-through estimator (identity), so the
latent float weights learn to sit where quantization hurts least. After fine-tuning the latent weights
are kept; compressing them reproduces exactly the weights the network was trained with.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..models import Representation
from .quantize import fake_quantize


class FileQuantizer(nn.Module):
    """Parametrization: the value a tensor will have after the file's quantization."""

    def __init__(self, bits: int, sparse_threshold: float) -> None:
        super().__init__()
        self.bits, self.sparse_threshold = bits, sparse_threshold

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if w.ndim >= 2 and float((w == 0).float().mean()) >= self.sparse_threshold:
            keep = w != 0
            out = torch.zeros_like(w)
            out[keep] = fake_quantize(w[keep], self.bits, per_channel=False)
            return out
        return fake_quantize(w, self.bits)


@contextlib.contextmanager
def quantization_aware(model: Representation, *, bits: int, embed_bits: int,
                       sparse_threshold: float) -> Iterator[Representation]:
    """Within the context, every stored parameter of ``model`` is seen through the file's quantizer."""
    depth = {name: (embed_bits if g.kind == "per_frame" else bits)
             for g in model.stored_groups() for name in g.tensors}
    registered = []
    for module_name, module in model.named_modules():
        for pname, p in list(module.named_parameters(recurse=False)):
            full = f"{module_name}.{pname}" if module_name else pname
            if full in depth and p.is_floating_point():
                parametrize.register_parametrization(module, pname, FileQuantizer(depth[full], sparse_threshold))
                registered.append((module, pname))
    try:
        yield model
    finally:
        for module, pname in registered:
            parametrize.remove_parametrizations(module, pname, leave_parametrized=False)
