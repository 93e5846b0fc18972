"""ConvNeXt frame encoders (spec §1.3), shared by the frame-conditioned methods (HNeRV, DNeRV).

A ConvNeXt block at width d (Liu et al., "A ConvNet for the 2020s", CVPR 2022, Fig. 4; used as the
HNeRV encoder, HNeRV paper §3.1 / Fig. 3)::

    x ─ depth-wise conv 7×7 ─ LayerNorm (channels, eps 1e-6) ─ linear d→4d ─ GELU ─ linear 4d→d
      ─ × γ (per channel, initialised to 1e-6) ─ + x

:class:`ConvNeXtEncoder` is HNeRV's encoder: stage i down-samples by s_i with a conv whose kernel equals
its stride (stage 0: conv 3→d₀ then LayerNorm; later stages: LayerNorm then conv), then runs one
ConvNeXt block at its own width. Stage widths are [width]×(S−1) + [embed_channels], so the last block
already works at the embedding width and its output *is* the embedding (no norm or activation after
it). Conv and linear weights start from a truncated normal (std 0.02), biases from 0. DNeRV's paper
uses this encoder for its content stream ("the settings in [HNeRV]") and for its difference stream;
:class:`DNeRVCodeEncoder` is the variant the official DNeRV code runs.

Memory layout: both encoders run channels-last inside and return a contiguous channels-first
embedding. Their LayerNorms and linears act on the channel axis, so in that layout the permutes around
them cost nothing and the residual adds see one layout, while the decoders' convolutions (forward and
backward) are faster channels-first on CPU. Before issue #13 the encoder's LayerNorm silently handed
a channels-last tensor to everything after it, and the HNeRV 1.5 M training step took 1.66× the
official code's; now 0.93× (one thread, BENCHMARKS.md). A channels-first encoder measured 4 % (HNeRV)
and 24 % (DNeRV) slower per training step than a channels-last one.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

LAYER_SCALE_INIT = 1e-6
NORM_EPS = 1e-6


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """The 4-D memory format ``x`` is laid out in: channels-last only when it is strided that way and not
    also plainly contiguous (ambiguous shapes such as C = 1 or H = W = 1 count as channels-first)."""
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of an (n, C, H, W) map ("channels-first" LayerNorm).

    The norm runs on the (n, H, W, C) view (one fused kernel) and the result keeps the memory format
    of the input. (Returning the permuted view of a channels-first input would silently switch every
    convolution after it to channels-last: the HNeRV decoder ran its backward that way, and its training
    step was 1.6× slower than the official code's, issue #13.)
    """

    def __init__(self, channels: int, eps: float = NORM_EPS) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2).contiguous(memory_format=memory_format_of(x))


class ConvNeXtBlock(nn.Module):
    """One ConvNeXt block (module docstring); drop-path is not used (rate 0 in HNeRV)."""

    def __init__(self, dim: int, layer_scale: float = LAYER_SCALE_INIT) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=NORM_EPS)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)  # (n, H, W, C): the linears act on channels
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y)))) * self.gamma
        return x + y.permute(0, 3, 1, 2)


def _downsample(index: int, in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    conv = nn.Conv2d(in_channels, out_channels, stride, stride=stride)
    if index == 0:
        return nn.Sequential(conv, ChannelLayerNorm(out_channels))
    return nn.Sequential(ChannelLayerNorm(in_channels), conv)


class ConvNeXtEncoder(nn.Module):
    """Frames (n, 3, H, W) → embeddings (n, E, H/Πs, W/Πs) (HNeRV encoder, spec §1.3 / §3.2).

    ``strides``: the down-sampling factor of each stage; ``width``: channels of every stage but the
    last; ``embed_channels``: E, the width of the last stage and of the embedding; ``in_channels``: 3
    for frames (DNeRV's difference encoder takes 6, two stacked differences).
    """

    def __init__(self, strides: tuple[int, ...], *, width: int = 64, embed_channels: int = 16,
                 in_channels: int = 3) -> None:
        super().__init__()
        dims = [width] * (len(strides) - 1) + [embed_channels]
        ins = [in_channels, *dims[:-1]]
        self.downsamples = nn.ModuleList(
            _downsample(i, c_in, c_out, s) for i, (c_in, c_out, s) in enumerate(zip(ins, dims, strides))
        )
        self.stages = nn.ModuleList(ConvNeXtBlock(d) for d in dims)
        self.apply(_init_weights)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.contiguous(memory_format=torch.channels_last)  # memory layout: module docstring
        for down, block in zip(self.downsamples, self.stages):
            x = block(down(x))
        return x.contiguous()


class DNeRVCodeBlock(nn.Module):
    """The ConvNeXt block as the official DNeRV code runs it (spec §1.3): 1×1 convs instead of linears,
    and its LayerNorm and layer scale γ are built (and counted) but skipped in the forward pass, so
    they get no gradient: x + pwconv2(GELU(pwconv1(dwconv7×7(x))))."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=NORM_EPS)  # unused, as in the official code
        self.pwconv1 = nn.Conv2d(dim, 4 * dim, 1)
        self.act = nn.GELU()
        self.pwconv2 = nn.Conv2d(4 * dim, dim, 1)
        self.gamma = nn.Parameter(torch.full((dim,), LAYER_SCALE_INIT))  # unused, as in the official code

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pwconv2(self.act(self.pwconv1(self.dwconv(x))))


class DNeRVCodeEncoder(nn.Module):
    """DNeRV's encoders as in the official code (spec §1.3): every stage is conv (kernel = stride = s_i)
    → channels-first LayerNorm → :class:`DNeRVCodeBlock`, all at ``width``, then a 1×1 conv to
    ``embed_channels`` (16 for the content stream, 2 for the difference stream). PyTorch's default
    initialisation. 372,480 + 1,040 parameters for 5,4,4,3,2 (content), 169,408 + 130 for 4,3,2 on six
    input channels (differences).
    """

    def __init__(self, strides: tuple[int, ...], *, width: int = 64, embed_channels: int = 16,
                 in_channels: int = 3) -> None:
        super().__init__()
        ins = [in_channels] + [width] * (len(strides) - 1)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c_in, width, s, stride=s), ChannelLayerNorm(width), DNeRVCodeBlock(width))
            for c_in, s in zip(ins, strides)
        )
        self.project = nn.Conv2d(width, embed_channels, 1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.contiguous(memory_format=torch.channels_last)  # memory layout: module docstring
        for stage in self.stages:
            x = stage(x)
        return self.project(x).contiguous()


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
