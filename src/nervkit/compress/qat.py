"""Quantization-aware fine-tuning: train through the exact quantizer the file will use.

Every stored float tensor is re-parametrized as ``w ↦ Q(w)`` where Q is the file's own rule
(:func:`~.quantize.fake_quantize`: the same quantizer — ``minmax`` or HiNeRV's ``symmetric`` — the same
per-tensor / per-channel choice, levels and float32 arithmetic; under ``minmax`` pruned tensors keep their
zeros and quantize only the non-zeros, as :mod:`.sparse_codec` does; under ``symmetric`` zero is a code of
its own, as :func:`~.sections.choose_section` says). The backward pass is the straight-through estimator
(identity), so the latent float weights learn to sit where quantization hurts least. After fine-tuning the
latent weights are kept; compressing them reproduces exactly the weights the network was evaluated with.

**Quant-Noise** (Fan et al., ICLR 2021, "Training with Quantization Noise for Extreme Model Compression";
HiNeRV fine-tunes with it at a ratio of 0.9): with ``noise < 1`` each training forward replaces only a
random share ``noise`` of the values of every tensor by their quantized value and keeps the others in
float (the gradient is the identity on both), so the network is not trained only at the quantized point.
The quantizer itself (its ranges) is always computed from the whole tensor. In eval mode (the trainer's
evaluations) every value is quantized: evaluations show what the file will decode. The mask is drawn from
a generator of this context seeded with ``seed`` (one per device, advanced by every training forward in
order), so two identical fine-tunes draw the same masks whatever else used the global RNG before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..models import Representation
from .quantize import fake_quantize


class NoiseMasks:
    """The random masks of Quant-Noise: one seeded generator per device, shared by every tensor of a
    model in the order its forward reads them."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self._generators: dict[torch.device, torch.Generator] = {}

    def draw(self, like: torch.Tensor, share: float) -> torch.Tensor:
        """Boolean mask shaped as ``like``, each entry True with probability ``share``."""
        device = like.device
        gen = self._generators.get(device)
        if gen is None:
            gen = self._generators[device] = torch.Generator(device=device)
            gen.manual_seed(self.seed)
        return torch.rand(like.shape, generator=gen, device=device) < share


class FileQuantizer(nn.Module):
    """Parametrization: the value a tensor will have after the file's quantization (with Quant-Noise, in
    training mode, only a random share ``noise`` of the values)."""

    def __init__(self, bits: int, sparse_threshold: float, quantizer: str = "minmax", noise: float = 1.0,
                 masks: NoiseMasks | None = None) -> None:
        super().__init__()
        self.bits, self.sparse_threshold, self.quantizer = bits, sparse_threshold, quantizer
        self.noise = float(noise)
        self.masks = masks if masks is not None else NoiseMasks(0)

    def quantized(self, w: torch.Tensor) -> torch.Tensor:
        """What the file decodes ``w`` to (straight-through gradient)."""
        if (self.quantizer == "minmax" and w.ndim >= 2
                and float((w == 0).float().mean()) >= self.sparse_threshold):
            keep = w != 0
            out = torch.zeros_like(w)
            out[keep] = fake_quantize(w[keep], self.bits, per_channel=False)
            return out
        return fake_quantize(w, self.bits, quantizer=self.quantizer)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        w_hat = self.quantized(w)
        if self.training and self.noise < 1.0:
            return torch.where(self.masks.draw(w, self.noise), w_hat, w)
        return w_hat


@contextlib.contextmanager
def quantization_aware(model: Representation, *, bits: int, embed_bits: int, sparse_threshold: float,
                       quantizer: str = "minmax", noise: float = 1.0, seed: int = 0) -> Iterator[Representation]:
    """Within the context, every stored parameter of ``model`` is seen through the file's quantizer
    (``quantizer``: ``minmax`` or ``symmetric``); with ``noise`` < 1, a training forward quantizes only that
    share of the values (Quant-Noise, masks seeded by ``seed``; module docstring)."""
    depth = {name: (embed_bits if g.kind == "per_frame" else bits)
             for g in model.stored_groups() for name in g.tensors}
    masks = NoiseMasks(seed)
    registered = []
    for module_name, module in model.named_modules():
        for pname, p in list(module.named_parameters(recurse=False)):
            full = f"{module_name}.{pname}" if module_name else pname
            if full in depth and p.is_floating_point():
                fq = FileQuantizer(depth[full], sparse_threshold, quantizer, noise, masks)
                fq.train(module.training)  # the model's mode, until the trainer sets it
                parametrize.register_parametrization(module, pname, fq)
                registered.append((module, pname))
    try:
        yield model
    finally:
        for module, pname in registered:
            parametrize.remove_parametrizations(module, pname, leave_parametrized=False)
