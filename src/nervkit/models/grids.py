"""Learned feature grids read at continuous coordinates (NVP's latent keyframes and sparse grid).

* :class:`MultiResPlane` — a 2-D dense multi-resolution grid (NVP's latent keyframe U_xy, U_xt or
  U_yt; NVP paper §3.1, spec §2.2(a)): per level l a grid of R_a,l × R_b,l vertices with F features,
  looked up by bilinear blending of the 4 corners around p = u·s_l + ½ (the tcnn DenseGrid rule). All
  levels live in one flat parameter in tcnn's layout (level-major, vertex-major with the first input
  dimension fastest, feature-minor), so one gather serves every level. ``border="clamp"`` clamps
  the upper corner to the grid; ``"wrap"`` reproduces the official read through the modulo of the
  flat index (spec §2.2(a) "border caveat").
* :class:`SparseVolume` — NVP's sparse positional features U_xyt ∈ R^{S×X×Y×D} read as the
  concatenated h×w neighbourhood around the nearest vertex (spec §2.2(b)), nearest or linear in t.

Lookups are vectorised over the whole batch (one gather per grid), so an iteration costs little
more than the MLP that follows.

Determinism: every table lookup goes through :func:`gather_rows`, whose gradient is summed in a
fixed order, not through advanced indexing (``table[index]``), whose CPU gradient is summed with
atomic adds in a thread-dependent order (see :func:`gather_rows`). ``grid_sample``'s CPU backward
spreads only the batch dimension over threads, and each level is one image, so the keyframe
gradients are thread-independent as they are. NVP training is then bit-reproducible on a given
machine and thread count, the default one included (docs/design.md, "Conventions").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from ..errors import ConfigError

BORDERS = ("clamp", "wrap")


class _GatherRows(torch.autograd.Function):
    """``table.index_select(0, index)`` with a backward that sums duplicate rows in a fixed order."""

    @staticmethod
    def forward(ctx, table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(index)
        ctx.table_shape = table.shape
        return table.index_select(0, index)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, None]:  # type: ignore[override]
        if not ctx.needs_input_grad[0]:
            return None, None
        (index,) = ctx.saved_tensors
        out = grad.new_zeros(ctx.table_shape)
        if grad.device.type == "cpu":
            out.index_add_(0, index, grad)  # rows added one after another, in the order of ``index``
        else:
            out.index_put_((index,), grad, accumulate=True)  # CUDA: the sort-based kernel
        return out, None


def gather_rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` — rows of a 2-D ``table`` at a 1-D ``index`` — with a reproducible gradient.

    The forward is a plain copy of rows (the same values as ``table[index]``). The gradient is a sum
    over duplicate indices (a sparse-grid vertex is read by every pixel near it, 9 times per pixel
    with the 3×3 window), and float addition is not associative, so its order matters to the last
    bit. Autograd's gradient of ``table[index]`` is ``index_put_(accumulate=True)``, whose CPU kernel
    — for float32, more than one thread and at least 32,768 updates — splits the updates over the
    threads and adds them with atomic compare-and-swap: the order, and so the result, changes from
    run to run (NVP's weights drifted by ~1e-5 within a few epochs; with one thread it runs
    serially and is reproducible). Here the CPU gradient is ``index_add_``, which adds the rows in the order of ``index``
    whatever the thread count (and is faster than the atomic kernel); on CUDA it stays
    ``index_put_(accumulate=True)``, whose CUDA kernel sorts the indices and sums each run of
    duplicates in that sorted order. ``torch.use_deterministic_algorithms`` would also serialise the
    CPU kernel, but it is a process-wide switch that the library must not flip for its callers.
    """
    return _GatherRows.apply(table, index)


@dataclass(frozen=True)
class PlaneLevel:
    """One level of a plane: ``scale`` per input dimension and the vertex counts ``(R_a, R_b)``."""

    scale_a: float
    scale_b: float
    res_a: int
    res_b: int

    @property
    def vertices(self) -> int:
        return self.res_a * self.res_b


def tcnn_resolution(base: int, growth: float, level: int) -> tuple[float, int]:
    """(scale s_l, resolution R_l) of tcnn's DenseGrid: s_l = base·growth^l − 1, R_l = ⌈s_l⌉ + 1."""
    scale = base * growth**level - 1.0
    return scale, math.ceil(scale) + 1


def plane_levels(levels: int, base: int, growth: float, extent: tuple[int, int] | None) -> list[PlaneLevel]:
    """The levels of a plane.

    ``extent=None``: the official square grids (every level R_l × R_l, spec §2.2(a) table).
    ``extent=(n_a, n_b)``: each axis' scale is capped at n − 1 (a vertex per sample of the video along
    that axis, no finer), and the levels stop when a level would have the previous one's resolution.
    """
    out: list[PlaneLevel] = []
    for level in range(levels):
        scale, res = tcnn_resolution(base, growth, level)
        if extent is None:
            out.append(PlaneLevel(scale, scale, res, res))
            continue
        sa, sb = (min(scale, max(n - 1, 0)) for n in extent)
        level_ = PlaneLevel(sa, sb, math.ceil(sa) + 1, math.ceil(sb) + 1)
        if out and (level_.res_a, level_.res_b) == (out[-1].res_a, out[-1].res_b):
            break  # both axes capped: a finer level would repeat the last one
        out.append(level_)
    return out


class MultiResPlane(nn.Module):
    """A 2-D multi-resolution dense grid (see module docstring). Output: (n, L·F), level-major.

    Each level is a parameter image (1, F, R_b, R_a) (rows = the second input dimension, the
    official PNG layout of spec §2.4). ``border="clamp"`` reads it with ``grid_sample`` (bilinear,
    border padding: the same blend as clamping the corners, and an order of magnitude faster than a
    gather on CPU); ``"wrap"`` gathers the 4 corners from the flat tcnn table, whose index wraps.
    """

    def __init__(self, levels: list[PlaneLevel], features: int, border: str = "clamp",
                 init_range: float = 1e-4) -> None:
        super().__init__()
        if border not in BORDERS:
            raise ConfigError(f"border must be one of {', '.join(BORDERS)}, got {border!r}")
        self.levels = list(levels)
        self.features = features
        self.border = border
        self.images = nn.ParameterList(
            nn.Parameter(torch.empty(1, features, lv.res_b, lv.res_a).uniform_(-init_range, init_range))
            for lv in levels
        )
        # p = u·s + ½ in vertex units → grid_sample's align_corners coordinate 2p/(R − 1) − 1
        gains, shifts = [], []
        for lv in levels:
            for scale, res in ((lv.scale_a, lv.res_a), (lv.scale_b, lv.res_b)):
                gains.append(2 * scale / (res - 1) if res > 1 else 0.0)
                shifts.append(1 / (res - 1) - 1 if res > 1 else 0.0)
        self.register_buffer("gains", torch.tensor(gains).view(-1, 2), persistent=False)
        self.register_buffer("shifts", torch.tensor(shifts).view(-1, 2), persistent=False)

    @property
    def out_dim(self) -> int:
        return len(self.levels) * self.features

    def forward(self, uv: torch.Tensor) -> torch.Tensor:
        """Features at ``uv`` (n, 2) in [0, 1] (first column = the fastest-varying input)."""
        uv = uv.to(self.gains.dtype)
        if self.border == "wrap":
            return self._gather_wrapped(uv)
        grids = uv.unsqueeze(0) * self.gains.unsqueeze(1) + self.shifts.unsqueeze(1)  # (L, n, 2)
        out = [F.grid_sample(img, g.view(1, 1, -1, 2), mode="bilinear", padding_mode="border", align_corners=True)
               for img, g in zip(self.images, grids)]
        return torch.cat(out, 1).flatten(0, 2).t()

    def _gather_wrapped(self, uv: torch.Tensor) -> torch.Tensor:
        """The official read: corner index (i_a + R_a·i_b) mod (R_a·R_b) into the flat table."""
        table = torch.cat([img[0].flatten(1).t() for img in self.images], 0)  # (V, F), tcnn layout
        counts = [lv.vertices for lv in self.levels]
        offsets = torch.tensor([0, *counts[:-1]], device=uv.device).cumsum(0)
        scales = torch.tensor([[lv.scale_a, lv.scale_b] for lv in self.levels], device=uv.device)
        ra = torch.tensor([lv.res_a for lv in self.levels], device=uv.device)
        rb = torch.tensor([lv.res_b for lv in self.levels], device=uv.device)
        pos = uv.unsqueeze(1) * scales + 0.5  # (n, L, 2)
        base = pos.floor()
        frac = pos - base
        i0 = base.long()
        out = 0
        for da, db in ((0, 0), (1, 0), (0, 1), (1, 1)):
            flat = ((i0[..., 0] + da) + ra * (i0[..., 1] + db)) % (ra * rb) + offsets
            w = (frac[..., 0] if da else 1 - frac[..., 0]) * (frac[..., 1] if db else 1 - frac[..., 1])
            corner = gather_rows(table, flat.reshape(-1)).view(*flat.shape, self.features)
            out = out + corner * w.unsqueeze(-1)
        return out.flatten(1)

    def level_images(self) -> list[torch.Tensor]:
        """Each level as an image stack (F, R_b, R_a): rows = the second input dimension (spec §2.4)."""
        return [img[0] for img in self.images]


class SparseVolume(nn.Module):
    """NVP's sparse positional features U ∈ R^{S×X×Y×D} (spec §2.2(b)).

    The nearest vertex is k = ⌊(S−1)t + ½⌋, m = ⌊(X−1)x + ½⌋, n = ⌊(Y−1)y + ½⌋ (each clamped); the
    output concatenates the codes of the centred ``window`` neighbourhood (rows outer, columns inner,
    indices clamped at the border): window_h·window_w·D values. ``upsample`` reads a bilinearly ×2
    up-sampled grid in (X, Y) (paper Table 4; computed on every forward pass). ``linear_time``
    blends the two slices around (S−1)t (the official temporal interpolation path, without its NaN at
    t = 1).
    """

    def __init__(self, frames: int, rows: int, cols: int, features: int, window: tuple[int, int] = (3, 3),
                 upsample: bool = False, init_range: float = 1e-4) -> None:
        super().__init__()
        if any(w < 1 or w % 2 == 0 for w in window):
            raise ConfigError(f"the sparse-grid window must be odd, got {window[0]}x{window[1]}")
        self.shape = (frames, rows, cols, features)
        self.window = window
        self.upsample = upsample
        self.grid = nn.Parameter(torch.empty(frames, rows, cols, features).uniform_(-init_range, init_range))

    @property
    def out_dim(self) -> int:
        return self.window[0] * self.window[1] * self.shape[3]

    def slice_index(self, t: torch.Tensor) -> torch.Tensor:
        """The slice k = ⌊(S−1)t + ½⌋ (clamped) that the nearest lookup reads at times ``t``."""
        return _nearest(t, self.shape[0])

    def _volume(self) -> torch.Tensor:
        if not self.upsample:
            return self.grid
        _, x, y, _ = self.shape
        up = F.interpolate(self.grid.permute(0, 3, 1, 2), size=(2 * x, 2 * y), mode="bilinear", align_corners=False)
        return up.permute(0, 2, 3, 1)

    def forward(self, txy: torch.Tensor, linear_time: bool = False) -> torch.Tensor:
        """Features (n, window·D) at ``txy`` (n, 3) in [0, 1]: columns t, x (row), y (column)."""
        vol = self._volume()
        s, x, y, d = vol.shape
        m = _nearest(txy[:, 1], x)
        n = _nearest(txy[:, 2], y)
        hh, hw = self.window[0] // 2, self.window[1] // 2
        da = torch.arange(-hh, hh + 1, device=txy.device)
        db = torch.arange(-hw, hw + 1, device=txy.device)
        rows = (m[:, None] + da[None]).clamp(0, x - 1)  # (n, h)
        cols = (n[:, None] + db[None]).clamp(0, y - 1)  # (n, w)
        spatial = (rows[:, :, None] * y + cols[:, None, :]).flatten(1)  # (n, h·w), rows outer
        flat = vol.reshape(-1, d)
        if not linear_time:
            k = self.slice_index(txy[:, 0])
            return gather_rows(flat, (k[:, None] * (x * y) + spatial).reshape(-1)).view(len(txy), -1)
        pos = txy[:, 0].to(torch.float32).clamp(0, 1) * (s - 1)
        k0 = pos.floor().long().clamp(0, s - 1)
        k1 = (k0 + 1).clamp(max=s - 1)
        w = (pos - k0.to(pos.dtype)).to(flat.dtype)[:, None]
        a = gather_rows(flat, (k0[:, None] * (x * y) + spatial).reshape(-1)).view(len(txy), -1)
        b = gather_rows(flat, (k1[:, None] * (x * y) + spatial).reshape(-1)).view(len(txy), -1)
        return torch.lerp(a, b, w)

    def channel_volumes(self) -> torch.Tensor:
        """The grid as D videos of S frames of X×Y: (D, S, X, Y) (spec §2.4 packing)."""
        return self.grid.permute(3, 0, 1, 2)


def _nearest(u: torch.Tensor, size: int) -> torch.Tensor:
    """⌊(size − 1)·u + ½⌋ clamped to [0, size − 1]."""
    return torch.floor(u.to(torch.float32) * (size - 1) + 0.5).long().clamp(0, size - 1)
