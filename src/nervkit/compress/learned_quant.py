"""Rate–distortion training: learned quantization steps, a differentiable rate, and the rate model.

Every stored float tensor a method trains (its weights, latent grids, per-frame embeddings) gets a
:class:`LearnedQuantizer`: codes ``q = round(w / Δ)`` and the value the file holds ``ŵ = Δ · q``, with
a step size Δ that is learned with the model (EC-NeRV, Gomes et al. CVPR 2023; NVRC, Kwan et al.
NeurIPS 2024, §3.2), and a parametric entropy model of the codes (Laplace or Gaussian, mean μ and scale
b; :mod:`.parametric`) whose bits ``R = Σ −log₂ P(q)`` enter the loss::

    L = D + λ · R / (N · H · W)                              (λ: loss units per bit per pixel)

**Step and scale granularity** (``step_axes``): ``dual`` = one log-step per output channel plus one per
input channel of a weight matrix/kernel, Δ[r, c] = 2^(a_r + b_c) (NVRC's "dual-axis"); ``channel`` =
one per output channel; ``tensor`` = one. The entropy model's scale uses the same axes. 1-D weights
(biases) take one step; per-frame embeddings one per channel (axis 1), latent grids one per channel
(axis 0). Log-steps are held on a 1/32 grid of log₂ and log-scales on a 1/16 grid (a straight-through
round), the mean on 1/16 of a code, so the integers the file stores reproduce Δ, b and μ exactly.

**Context model** (``context``, on by default): latent grids and per-frame embeddings code half their
values (a checkerboard) with a mean and scale predicted from the already-decoded other half
(:mod:`.context_model`); weights use the per-axis model only.

**Differentiable rounding** (``rounding``), the surrogate of ``round`` while the rate is on:
``noise`` adds uniform noise U(−½, ½) (Ballé et al., ICLR 2017); ``soft`` is the soft-rounding of
Agustsson & Theis (NeurIPS 2020) used by C3/Cool-chic 3, ``s_T(s_T(x) + u)`` with the temperature
annealed from 0.5 to 0.2, the rate taken on ``s_T(x) + u``; ``quant-noise`` (HiNeRV; Fan et al. 2021)
rounds a random 90 % of the values (straight-through) and leaves the rest, the rate on ``x + u``. The
last ``ste_fraction`` of the rate-training period rounds for real with the straight-through estimator
(Bengio et al. 2013), so training ends on exactly the codes and model the file stores.

:class:`RateModel` holds the quantizers of one representation and the λ (adapted to ``target_bpp`` when
one is given). The training engine applies it (:mod:`nervkit.train.engine`): the forward pass sees the
quantized weights through ``torch.func.functional_call`` and the per-frame side information through the
model's ``quantize_side_info`` hook; the model's own parameters stay the continuous latent ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..models import Representation
from ..models.config import option
from .context_model import (
    TAP_RES,
    TAPS,
    anchor_mask_torch,
    context_applies,
    context_params_torch,
)
from .parametric import FAMILIES, bits_torch

ROUNDINGS = ("soft", "noise", "quant-noise")
STEP_AXES = ("dual", "channel", "tensor")
#: resolution of the stored integers: log₂ steps in 1/STEP_RES, log₂ scales in 1/SCALE_RES, means in 1/MEAN_RES
STEP_RES, SCALE_RES, MEAN_RES = 32, 16, 16
#: bounds of log₂ Δ and log₂ b (b ≥ 1/16: a sharper model saves nothing the coder can use)
LOG2_STEP_RANGE, LOG2_SCALE_RANGE = (-40.0, 20.0), (-4.0, 24.0)
#: soft-rounding temperature, start → end of the noisy phase
TEMPERATURE = (0.5, 0.2)
#: the share of values Quant-Noise rounds
QUANT_NOISE_RATE = 0.9
#: the storage kinds whose tensors are rate-trained (D-NeRV's key-frames are coded by an image codec)
RATE_STORAGES = ("weights", "per_frame", "latent_image", "latent_video")
#: how fast λ follows --target-bpp: log λ moves by this times log(rate / target) per step
TARGET_GAIN = 0.02


@dataclass(frozen=True)
class RateOptions:
    """How a model is trained for rate (the fields of ``nervkit fit`` and ``nervkit compress`` that say it)."""

    rate_lambda: float = option(0.0, "λ of the rate term: loss = distortion + λ · bits per pixel (0 = off; the "
                                     "distortion's own unit per bpp)")
    target_bpp: float = option(0.0, "adapt λ during training until the file's rate comes down to about this many "
                                    "bits per pixel (a rate the quantizers reach without pressure stays lower; 0 = "
                                    "off; λ starts from --rate-lambda, or 0.01)")
    rate_start: float = option(0.3, "fraction of training before the rate term is switched on (distortion only; a "
                                    "network that meets the rate term untrained can collapse to zero weights)")
    rounding: str = option("soft", "differentiable rounding while the rate is on: soft (annealed soft-rounding + "
                                   "noise), noise (uniform noise), quant-noise (a random 90 %% rounded)",
                           choices=ROUNDINGS)
    ste_fraction: float = option(0.1, "last fraction of rate training that rounds for real (straight-through)")
    step_axes: str = option("dual", "learned step sizes (and entropy-model scales) of weights: dual = per row + per "
                                    "column, channel = per output channel, tensor = one", choices=STEP_AXES)
    entropy_model: str = option("laplace", "entropy model of the codes: laplace or gaussian", choices=FAMILIES)
    context: bool = option(True, "a checkerboard context model (scales and means predicted from decoded "
                                 "neighbours) for latent grids and per-frame embeddings")
    learn_steps: bool = option(True, "learn the quantization step sizes with the model (false: keep their start, "
                                     "σ/16 of each output channel; an ablation)")

    @property
    def enabled(self) -> bool:
        return self.rate_lambda > 0 or self.target_bpp > 0

    def validate(self, lambda_flag: str = "--rate-lambda") -> None:
        """ConfigError (one line, naming the CLI option) for values out of range."""
        for flag, value in ((lambda_flag, self.rate_lambda), ("--target-bpp", self.target_bpp)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"{flag} must be a finite number >= 0, got {value!r}")
        for name in ("rate_start", "ste_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be in [0, 1), got {value!r}")
        if self.rate_start + self.ste_fraction >= 1:
            raise ConfigError(f"--rate-start {self.rate_start} + --ste-fraction {self.ste_fraction} leave no "
                              "training with the rate term: their sum must be < 1")
        for name in ("learn_steps", "context"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"--{name.replace('_', '-')} must be true or false, got {getattr(self, name)!r}")
        for name, allowed in (("rounding", ROUNDINGS), ("step_axes", STEP_AXES), ("entropy_model", FAMILIES)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"--{name.replace('_', '-')} must be one of {', '.join(allowed)}, "
                                  f"got {getattr(self, name)!r}")

    @classmethod
    def of(cls, settings: Any, **changes: Any) -> RateOptions:
        """The rate options of any dataclass that declares them (TrainConfig, CompressConfig)."""
        values = {f.name: getattr(settings, f.name) for f in fields(cls) if hasattr(settings, f.name)}
        return cls(**{**values, **changes})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def rate_option(name: str, **changes: Any) -> Any:
    """A fresh field equal to :class:`RateOptions`' ``name`` (for TrainConfig / CompressConfig)."""
    f = {f.name: f for f in fields(RateOptions)}[name]
    meta = dict(f.metadata)
    return option(changes.get("default", f.default), changes.get("help", meta["help"]), choices=meta["choices"])


# -- rounding surrogates ------------------------------------------------------------------------------
def ste_round(x: torch.Tensor) -> torch.Tensor:
    """``round(x)`` forward, identity backward."""
    return x + (torch.round(x) - x).detach()


def soft_round(x: torch.Tensor, temperature: float) -> torch.Tensor:
    """Agustsson & Theis (2020), Eq. 7: ``⌊x⌋ + ½ + ½ tanh(r / T) / tanh(1 / 2T)``, r = x − ⌊x⌋ − ½."""
    base = torch.floor(x)
    r = x - base - 0.5
    return base + 0.5 + 0.5 * torch.tanh(r / temperature) / math.tanh(0.5 / temperature)


@dataclass(frozen=True)
class Phase:
    """Where rate training is at one step: ``mode`` = off (distortion only), soft, noise, quant-noise or ste
    (hard rounding), and the soft-rounding temperature."""

    mode: str
    temperature: float = TEMPERATURE[1]

    @staticmethod
    def at(progress: float, options: RateOptions) -> Phase:
        """The phase at ``progress`` ∈ [0, 1] of training."""
        if progress < options.rate_start:
            return Phase("off")
        ste_from = 1.0 - options.ste_fraction
        if progress >= ste_from:
            return Phase("ste")
        span = max(ste_from - options.rate_start, 1e-9)
        t0, t1 = TEMPERATURE
        return Phase(options.rounding, t0 + (t1 - t0) * (progress - options.rate_start) / span)


HARD = Phase("ste")


# -- one tensor ---------------------------------------------------------------------------------------
def quantizer_axes(kind: str, shape: tuple[int, ...], step_axes: str) -> tuple[int, ...]:
    """The axes along which a tensor of storage kind ``kind`` has its own step and scale."""
    if kind == "per_frame":
        return (1,) if len(shape) >= 2 else ()
    if kind in ("latent_image", "latent_video"):
        return (0,)
    if len(shape) < 2 or step_axes == "tensor":
        return ()
    return (0, 1) if step_axes == "dual" else (0,)


def _axis_shape(ndim: int, axis: int, length: int) -> list[int]:
    shape = [1] * ndim
    shape[axis] = length
    return shape


def _per_axis(shape: tuple[int, ...], axes: tuple[int, ...]) -> nn.ParameterList:
    """One zero parameter per axis, shaped to broadcast along it (one scalar-like one when there is none)."""
    ndim = len(shape)
    return nn.ParameterList([nn.Parameter(torch.zeros(_axis_shape(ndim, a, shape[a]))) for a in axes]
                            or [nn.Parameter(torch.zeros([1] * ndim))])


class LearnedQuantizer(nn.Module):
    """The learned step sizes and entropy model of one stored tensor (module docstring).

    Parameters are log₂ values, one tensor per axis (broadcast shapes), plus a scalar mean; the first call
    initialises them from the tensor it sees (Δ = σ/16 of each slice along the first axis, b = 16 codes),
    so a quantizer for per-frame embeddings starts from the first batch's."""

    def __init__(self, shape: tuple[int, ...], axes: tuple[int, ...], family: str, context: bool = False) -> None:
        super().__init__()
        self.shape, self.axes, self.family = tuple(shape), tuple(axes), family
        self.log2_step = _per_axis(self.shape, self.axes)
        self.log2_scale = _per_axis(self.shape, self.axes)
        self.mean = nn.Parameter(torch.zeros(()))
        #: the checkerboard context model's taps (:mod:`.context_model`), for grids and embeddings
        self.context = nn.Parameter(torch.zeros(TAPS)) if context else None
        self.register_buffer("ready", torch.tensor(False))

    @torch.no_grad()
    def initialise(self, w: torch.Tensor) -> None:
        """Δ = σ/16 per slice of the first axis (the others 0), b = 16 codes, μ = 0."""
        first = self.axes[0] if self.axes else None
        if first is None:
            sigma = w.float().std() if w.numel() > 1 else w.float().abs().mean()
        else:
            dims = [d for d in range(w.ndim) if d != first]
            sigma = w.float().std(dim=dims, keepdim=True) if w.numel() > w.shape[first] else w.float().abs()
        # a constant slice gets the tensor's step / 1000: its codes stay far inside the coders' range
        floor = max(float(w.float().std()) if w.numel() > 1 else 0.0, 1e-3) * 1e-3
        log2 = torch.log2(torch.clamp(torch.nan_to_num(sigma, 0.0), min=floor) / 16)
        self.log2_step[0].copy_(torch.broadcast_to(log2, self.log2_step[0].shape).clamp(*LOG2_STEP_RANGE))
        for p in list(self.log2_step)[1:]:
            p.zero_()
        self.log2_scale[0].fill_(4.0)
        for p in list(self.log2_scale)[1:]:
            p.zero_()
        self.mean.zero_()
        self.ready.fill_(True)

    # the snapped values (what the file stores), straight-through in training
    def step(self) -> torch.Tensor:
        total = sum(ste_round(p * STEP_RES) for p in self.log2_step)
        return torch.exp2(torch.clamp(total / STEP_RES, *LOG2_STEP_RANGE))

    def scale(self) -> torch.Tensor:
        total = sum(ste_round(p * SCALE_RES) for p in self.log2_scale)
        return torch.exp2(torch.clamp(total / SCALE_RES, *LOG2_SCALE_RANGE))

    def mean_code(self) -> torch.Tensor:
        return ste_round(self.mean * MEAN_RES) / MEAN_RES

    def forward(self, w: torch.Tensor, phase: Phase) -> tuple[torch.Tensor, torch.Tensor]:
        """(the value the forward pass uses, its bits under the entropy model) at ``phase``."""
        if not bool(self.ready):
            self.initialise(w.detach())
        step = self.step()
        x = w / step
        if phase.mode == "ste":
            y_rate = y = ste_round(x)
        elif phase.mode == "soft":
            y_rate = soft_round(x, phase.temperature) + (torch.rand_like(x) - 0.5)
            y = soft_round(y_rate, phase.temperature)
        elif phase.mode == "noise":
            y = y_rate = x + (torch.rand_like(x) - 0.5)
        elif phase.mode == "quant-noise":
            y = torch.where(torch.rand_like(x) < QUANT_NOISE_RATE, ste_round(x), x)
            y_rate = x + (torch.rand_like(x) - 0.5)
        else:
            raise ValueError(f"unknown rounding {phase.mode!r}")
        if self.context is not None:
            taps = ste_round(self.context * TAP_RES) / TAP_RES
            mean, scale = context_params_torch(y_rate, self.mean_code(), self.scale(), taps,
                                               anchor_mask_torch(y_rate.shape, y_rate.device))
        else:
            mean, scale = self.mean_code(), self.scale()
        bits = bits_torch(y_rate, mean, scale, self.family).sum()
        return y * step, bits

    # -- what the file stores ------------------------------------------------------------------------
    def integers(self) -> dict[str, Any]:
        """The stored integers: per-axis log-step and log-scale integers, the mean integer."""
        with torch.no_grad():
            return {"steps": [torch.round(p * STEP_RES).to(torch.int64).reshape(-1).cpu().numpy()
                              for p in self.log2_step],
                    "scales": [torch.round(p * SCALE_RES).to(torch.int64).reshape(-1).cpu().numpy()
                               for p in self.log2_scale],
                    "mean": int(torch.round(self.mean * MEAN_RES)),
                    **({"context": torch.round(self.context * TAP_RES).to(torch.int64).cpu().numpy()}
                       if self.context is not None else {})}


# -- the whole model ----------------------------------------------------------------------------------
def rate_targets(model: Representation) -> list[tuple[str, str, tuple[int, ...]]]:
    """(stored name, storage kind, stored shape) of every stored tensor that is rate-trained: the float
    parameters of weight and latent groups — stored under their own name or as another layout of a parameter
    (``Representation.stored_views``: NVP's grids) — except groups that keep a fixed bit depth (NVP's ω₀
    layer), and the per-frame side information."""
    params = dict(model.named_parameters())
    views = model.stored_views()
    out = []
    for group in model.stored_groups():
        if group.kind not in RATE_STORAGES or group.min_bits:
            continue
        for name, tensor in group.tensors.items():
            if not tensor.is_floating_point() or tensor.numel() == 0:
                continue
            if group.kind == "per_frame" or (views[name][0] if name in views else name) in params:
                out.append((name, group.kind, tuple(tensor.shape)))
    return out


def _identity(t: torch.Tensor) -> torch.Tensor:
    return t


def _key(name: str) -> str:
    return name.replace(".", ":")


class RateModel(nn.Module):
    """The quantizers of one representation's rate-trained tensors (:func:`rate_targets`) and its λ.

    ``pixels``: N·H·W of the video, the denominator of the rate in bits per pixel."""

    def __init__(self, model: Representation, options: RateOptions) -> None:
        super().__init__()
        options.validate()
        self.options = options
        self.pixels = model.geometry.pixels
        self.frames = model.geometry.num_frames
        self.kinds: dict[str, str] = {}
        self.quantizers = nn.ModuleDict()
        views = model.stored_views()
        #: stored name -> (the model's tensor, its layout -> the stored one, and back)
        self.views = {}
        for name, kind, shape in rate_targets(model):
            self.kinds[name] = kind
            self.views[name] = views.get(name, (name, _identity, _identity))
            quantizer = LearnedQuantizer(shape, quantizer_axes(kind, shape, options.step_axes), options.entropy_model,
                                         context=options.context and context_applies(kind, shape))
            for p in quantizer.log2_step:
                p.requires_grad_(options.learn_steps)
            self.quantizers[_key(name)] = quantizer
        start = options.rate_lambda or (0.01 if options.target_bpp else 0.0)
        self.register_buffer("log_lambda", torch.tensor(math.log(start) if start > 0 else -math.inf,
                                                        dtype=torch.float64))
        self._side_bits: list[torch.Tensor] = []
        self._phase = HARD
        #: bits of the file beyond the codes (header, framing, side information, tensors not rate-trained), at
        #: least; ``target_bpp`` counts them (set by the trainer, :func:`~.model_codec.smallest_file_bits`)
        self.overhead_bits = 0.0

    def quantizer(self, name: str) -> LearnedQuantizer:
        return self.quantizers[_key(name)]  # type: ignore[return-value]

    @property
    def lam(self) -> float:
        return float(torch.exp(self.log_lambda))

    def parameter_targets(self) -> list[str]:
        return [n for n, k in self.kinds.items() if k != "per_frame"]

    # -- training ------------------------------------------------------------------------------------
    def quantized_parameters(self, model: Representation, phase: Phase) -> tuple[dict[str, torch.Tensor],
                                                                                 torch.Tensor]:
        """The parameters the forward pass uses at ``phase`` (by name) and their total bits."""
        params = dict(model.named_parameters())
        values, bits = {}, torch.zeros((), device=next(model.parameters()).device)
        for name in self.parameter_targets():
            pname, to_stored, back = self.views[name]
            value, b = self.quantizer(name)(to_stored(params[pname]), phase)
            values[pname] = back(value)
            bits = bits + b
        return values, bits

    def live_tensors(self, model: Representation) -> Iterator[tuple[str, torch.Tensor, Any, Any]]:
        """(stored name, the model's tensor, its layout → the stored one, and back) of every rate-trained
        tensor the model holds (per-frame side information: its buffer)."""
        tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
        for name in self.kinds:
            pname, to_stored, back = self.views[name]
            if pname in tensors:
                yield name, tensors[pname], to_stored, back

    def quantize_side_info(self, name: str, value: torch.Tensor) -> torch.Tensor:
        """The hook a frame-conditioned model calls on each side-information tensor of a training batch
        (n frames): quantized at the current phase; its bits, scaled to the whole video, are collected."""
        if name not in self.kinds:
            return value
        out, bits = self.quantizer(name)(value, self._phase)
        self._side_bits.append(bits * (self.frames / value.shape[0]))
        return out

    @contextmanager
    def applied(self, model: Representation, phase: Phase) -> Iterator[dict[str, Any]]:
        """Within: ``state["params"]`` for ``functional_call``; after the forward pass, ``state["bits"]``
        (a function) totals the bits of the parameters and of the side information seen."""
        self._phase, self._side_bits = phase, []
        params, bits = self.quantized_parameters(model, phase)
        state: dict[str, Any] = {"params": params,
                                 "bits": lambda: bits + sum(self._side_bits, torch.zeros_like(bits))}
        previous = model.quantize_side_info
        model.quantize_side_info = self.quantize_side_info
        try:
            yield state
        finally:
            model.quantize_side_info = previous

    def set_file_floor(self, floor_bits: float) -> None:
        """Record ``floor_bits`` (the smallest file this model can be written to,
        :func:`~.model_codec.smallest_file_bits`) as the overhead ``target_bpp`` counts beside the codes, and
        raise a ConfigError, before any training, when ``target_bpp`` is below it per pixel."""
        target = self.options.target_bpp
        floor = floor_bits / self.pixels
        self.overhead_bits = floor_bits
        if target and target < floor:
            raise ConfigError(f"--target-bpp {target:g} is unreachable: the smallest reachable rate of this model is "
                              f"{floor:.4g} bpp (its header, the quantizers' own parameters and the parts rate "
                              "training does not code, with every code at no bits)")

    def adapt_lambda(self, bpp: float) -> None:
        """One step of λ towards ``target_bpp`` (multiplicative: λ grows while the rate of the codes, ``bpp``,
        plus the file's overhead is above it, and falls while below)."""
        target = self.options.target_bpp
        bpp = bpp + self.overhead_bits / self.pixels
        if target > 0 and bpp > 0 and math.isfinite(bpp):
            if not math.isfinite(float(self.log_lambda)):
                self.log_lambda.fill_(math.log(0.01))
            step = TARGET_GAIN * math.log(bpp / target)
            self.log_lambda.fill_(float(min(max(float(self.log_lambda) + step, math.log(1e-6)), math.log(1e4))))

    # -- the quantized model -------------------------------------------------------------------------
    @torch.no_grad()
    def hard_value(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` as the file stores it (Δ · round(w / Δ), with the file's float32 arithmetic)."""
        q, step = self.codes(name, tensor)
        return torch.from_numpy(np.multiply(step, q.astype(np.float32), dtype=np.float32)).to(tensor.device)

    @torch.no_grad()
    def codes(self, name: str, tensor: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(integer codes, float32 step broadcast to the tensor's shape) of ``tensor`` under its quantizer."""
        quantizer = self.quantizer(name)
        if not bool(quantizer.ready):
            quantizer.initialise(tensor.detach())
        return integer_codes(tensor, quantizer.integers()["steps"], quantizer.axes)

    @contextmanager
    def hard_weights(self, model: Representation) -> Iterator[None]:
        """Within: the model's rate-trained parameters and side-information buffers hold the values the file
        will (an evaluation of the file's model); restored afterwards."""
        saved = []
        with torch.no_grad():
            for name, t, to_stored, back in self.live_tensors(model):
                saved.append((t, t.detach().clone()))
                t.copy_(back(self.hard_value(name, to_stored(t))))
        try:
            yield
        finally:
            with torch.no_grad():
                for t, value in saved:
                    t.copy_(value)

    @torch.no_grad()
    def commit(self, model: Representation) -> None:
        """Replace the model's rate-trained tensors by their quantized values for good (end of training)."""
        for name, t, to_stored, back in self.live_tensors(model):
            t.copy_(back(self.hard_value(name, to_stored(t))))

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps: the options and the quantizers' state."""
        return {"options": self.options.to_dict(), "state": {k: v.detach().cpu() for k, v in self.state_dict().items()}}

    @classmethod
    def restore(cls, model: Representation, saved: dict[str, Any], **changes: Any) -> RateModel:
        """The rate model a checkpoint kept (:meth:`state`), with ``changes`` to its options."""
        rate = cls(model, RateOptions(**{**saved["options"], **changes}))
        rate.load_state_dict(saved["state"])
        if changes.get("rate_lambda"):
            rate.log_lambda.fill_(math.log(changes["rate_lambda"]))
        return rate


def integer_codes(tensor: torch.Tensor, step_ints: list[np.ndarray], axes: tuple[int, ...]) -> tuple[np.ndarray,
                                                                                                   np.ndarray]:
    """(int64 codes ``rint(w / Δ)`` in float64, float32 Δ of every value) of ``tensor`` under the stored log-step
    integers: the one rule by which the file's codes are made."""
    step = step_array(step_ints, axes, tuple(tensor.shape))
    w = tensor.detach().cpu().numpy().astype(np.float64)
    return np.rint(w / step.astype(np.float64)).astype(np.int64), step


def step_array(step_ints: list[np.ndarray], axes: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """float32 Δ of every value of a tensor of ``shape``, from the stored per-axis log-step integers."""
    total = _axis_sum(step_ints, axes, shape)
    return np.exp2(np.clip(total / STEP_RES, *LOG2_STEP_RANGE)).astype(np.float32)


def entropy_arrays(ints: dict[str, Any], axes: tuple[int, ...], shape: tuple[int, ...]) -> tuple[float, np.ndarray]:
    """(mean in codes, float64 scale of every value) from the stored integers."""
    total = _axis_sum(ints["scales"], axes, shape)
    scale = np.exp2(np.clip(total / SCALE_RES, *LOG2_SCALE_RANGE))
    return ints["mean"] / MEAN_RES, np.broadcast_to(scale, shape)


def _axis_sum(ints: list[np.ndarray], axes: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    ndim = len(shape)
    total = np.zeros([1] * ndim, dtype=np.float64)
    for a, values in zip(axes or (None,), ints):
        if a is None:
            total = total + float(np.asarray(values).reshape(-1)[0])
        else:
            total = total + np.asarray(values, dtype=np.float64).reshape(_axis_shape(ndim, a, shape[a]))
    return np.broadcast_to(total, shape)

