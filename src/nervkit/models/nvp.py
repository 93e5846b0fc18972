"""NVP: Scalable Neural Video Representations with Learnable Positional Features (Kim et al., NeurIPS 2022).

A coordinate network over learned latent grids (paper §3.1; spec §2.2). For a pixel (x, y) of frame
k, with x = row/(H−1), y = col/(W−1), t = k/(N−1) and the synthesizer's τ = (k+½)/N::

    z = [U_xy(x, y), U_yt(t, y), U_xt(t, x), U_xyt(t, x, y)]      latent keyframes + sparse features
    h₁ = φ(A′₁ z),  h_k = φ(A′_k [h_{k−1}; z])                    modulator (φ = LeakyReLU 0.01)
    α₁ = h₁ ⊙ sin(ω₀(A₁τ + b₁)),  α_k = h_k ⊙ sin(ω(A_k α_{k−1} + b_k))   modulated synthesizer
    rgb = A_{K+1} α_K + b_{K+1}  (in [−1, 1]; frame = (rgb + 1)/2)

U_xy, U_yt, U_xt are 2-D multi-resolution grids (:class:`~nervkit.models.grids.MultiResPlane`,
paper Eq. 3's latent keyframes), U_xyt the sparse grid read as a 3×3 neighbourhood
(:class:`~nervkit.models.grids.SparseVolume`, paper Eq. 4), and the two maps are the paper's Eq. 5–6.

Presets ``nvp-s`` / ``nvp-l`` are the official configurations (square tcnn grids, a 300×300 sparse
grid with one slice per frame); at 1080×1920×600 they have exactly 135,807,267 / 271,547,715
parameters (spec §2.2 table). ``--params`` derives a size for any video: the planes' levels stop at
the video's own resolution along each axis (``planes=fit``), the MLP width and F shrink until
planes + MLP take at most 60 % of the budget, and the sparse grid (aspect ratio of the frame, one
slice per frame) gets the rest.

Training draws random (frame, pixel) samples (``batch_kind = "pixels"``, :mod:`nervkit.data.pixels`);
decoding renders whole frames in tiles of ``render_pixels`` pixels (bounded memory) at any size —
``decode_scaled`` is super-resolution — and at any time (``decode_at``: the sparse grid's linear
temporal path).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch
from torch import nn

from ..data.batches import FrameBatch, PixelBatch
from ..errors import ConfigError
from .base import MethodConfig, ParameterCounts, Representation, StoredGroup
from .config import VideoGeometry, option
from .grids import BORDERS, MultiResPlane, SparseVolume, plane_levels
from .registry import register_method

PLANE_MODES = ("square", "fit")
MODULATOR_ACTIVATIONS = ("leaky", "relu")
#: the three planes in the official latent order, with the inputs each reads (x, y, t columns)
PLANES = (("xy", ("x", "y")), ("yt", ("t", "y")), ("xt", ("t", "x")))


@dataclass(frozen=True)
class NVPConfig(MethodConfig):
    """NVP architecture (spec §2.2). Zero sizes are derived from the video."""

    levels: int = option(16, "levels L of each latent keyframe (2-D multi-resolution grid)", min=1)
    base_resolution: int = option(16, "resolution of the coarsest keyframe level", min=1)
    growth: float = option(1.35, "resolution growth factor between keyframe levels", min=1)
    features: int = option(2, "features F per keyframe level (NVP-S 2, NVP-L 4)", min=1)
    planes: str = option("square", "keyframe grids: square (official tcnn sizes) or fit (capped at the video's "
                                   "size along each axis; what --params uses)", choices=PLANE_MODES)
    border: str = option("clamp", "keyframe lookup at the upper border: clamp, or wrap (the official tcnn read)",
                         choices=BORDERS)
    sparse_rows: int = option(300, "rows X of the sparse positional grid (0 = derive)", min=0,
                              derived=True)
    sparse_cols: int = option(300, "columns Y of the sparse positional grid (0 = derive)", min=0,
                              derived=True)
    sparse_frames: int = option(0, "slices S of the sparse grid along time (0 = one per frame, the official)",
                                min=0, derived=True)
    sparse_features: int = option(2, "features D per sparse-grid vertex (NVP-S 2, NVP-L 4)", min=1)
    sparse_window: tuple[int, ...] = option((3, 3), "neighbourhood h,w of sparse codes read around a pixel",
                                            length=2, min=1, odd=True)
    sparse_upsample: bool = option(False, "read the sparse grid bilinearly x2 up-sampled in space (paper Table 4)")
    width: int = option(128, "width of the modulator and synthesizer layers", min=1)
    layers: int = option(3, "modulated sine layers K (and modulator layers)", min=1)
    modulator_activation: str = option("leaky", "modulator activation: leaky (0.01, official) or relu (paper)",
                                       choices=MODULATOR_ACTIVATIONS)
    omega_first: float = option(30.0, "frequency of the first sine layer")
    omega_hidden: float = option(1.0, "frequency of the later sine layers (official 1)")
    render_pixels: int = option(1 << 18, "pixels rendered per tile when decoding (bounds memory)", min=1)

    size_options = ("sparse_rows", "sparse_cols")

    def with_layout(self, geometry: VideoGeometry) -> NVPConfig:
        """One sparse-grid slice per frame and at most 300×300 vertices (no more than the frame's
        pixels), unless given (spec §2.2)."""
        return replace(self, sparse_frames=self.sparse_frames or geometry.num_frames,
                       sparse_rows=self.sparse_rows or min(geometry.height, 300),
                       sparse_cols=self.sparse_cols or min(geometry.width, 300))

    def solve_budget(self, geometry: VideoGeometry, target: int | None, fixed: frozenset[str]) -> NVPConfig:
        """Planes fitted to the video; the widest MLP, then the most features F, then the most levels
        (down to 4) for which planes + MLP take at most 60 % of ``target``; the sparse grid (frame
        aspect, S slices, D features) gets the rest. Options the user set (``fixed``) are not changed."""
        if target is None:
            return self
        cfg = replace(self, planes="fit") if "planes" not in fixed else self
        narrower = [w for w in (128, 96, 64, 48, 32, 16) if w <= cfg.width] or [cfg.width]
        widths = [cfg.width] if "width" in fixed else narrower
        feats = [cfg.features] if "features" in fixed else list(range(cfg.features, 0, -1))
        window = cfg.sparse_window[0] * cfg.sparse_window[1]
        levels = [cfg.levels] if "levels" in fixed else list(range(cfg.levels, min(cfg.levels, 4) - 1, -1))
        for width, f, lv in ((w, f, lv) for w in widths for f in feats for lv in levels):
            trial = replace(cfg, width=width, features=f, levels=lv)
            planes, dims = _plane_params(trial, geometry)
            fixed_part = planes + _mlp_params(trial, dims + window * trial.sparse_features)
            if fixed_part > 0.6 * target:
                continue
            per_vertex = trial.sparse_frames * trial.sparse_features
            cells = (target - fixed_part) / per_vertex
            rows = max(1, round(math.sqrt(cells * geometry.height / geometry.width)))
            cols = max(1, round(cells / rows))
            return replace(trial, sparse_rows=min(rows, geometry.height),
                           sparse_cols=min(cols, geometry.width))
        raise ConfigError(f"a budget of {target:,} parameters is too small for NVP on "
                          f"{geometry.num_frames}x{geometry.height}x{geometry.width}; give a larger --params "
                          "or fewer --levels")


def _plane_extents(cfg: NVPConfig, geometry: VideoGeometry) -> dict[str, tuple[int, int] | None]:
    sizes = {"x": geometry.height, "y": geometry.width, "t": geometry.num_frames}
    return {name: None if cfg.planes == "square" else (sizes[a], sizes[b]) for name, (a, b) in PLANES}


def _mlp_params(cfg: NVPConfig, latent: int) -> int:
    w, k = cfg.width, cfg.layers
    modulator = (latent * w + w) + (k - 1) * ((w + latent) * w + w)
    synthesizer = (w + w) + (k - 1) * (w * w + w) + (w * 3 + 3)
    return modulator + synthesizer


def _plane_params(cfg: NVPConfig, geometry: VideoGeometry) -> tuple[int, int]:
    """(plane parameters, their output features) of ``cfg``."""
    params = dims = 0
    for extent in _plane_extents(cfg, geometry).values():
        levels = plane_levels(cfg.levels, cfg.base_resolution, cfg.growth, extent)
        params += sum(lv.vertices for lv in levels) * cfg.features
        dims += len(levels) * cfg.features
    return params, dims


@register_method(
    "nvp",
    NVPConfig,
    description="NVP (NeurIPS 2022): latent keyframes + sparse positional grid + modulated SIREN over (x, y, t)",
    presets={
        "nvp-s": {"features": 2, "sparse_features": 2},
        "nvp-l": {"features": 4, "sparse_features": 4},
    },
    default_preset="nvp-s",
    budget_base={"planes": "fit"},
    train_defaults={"optimizer": "adamw", "lr": 1e-2, "weight_decay": 1e-3, "beta1": 0.9, "warmup": 0.0,
                    "loss": "l2", "lr_schedule": "cosine"},
    paper="Kim et al., Scalable Neural Video Representations with Learnable Positional Features, NeurIPS 2022",
)
class NVP(Representation):
    """(x, y, t) → RGB over learned latent grids (see module docstring)."""

    batch_kind: ClassVar[str] = "pixels"
    supports_scale: ClassVar[bool] = True
    prune_exclude = ("synthesizer.0", "head")  # the ω₀ = 30 input layer and the output layer stay dense

    def __init__(self, config: NVPConfig, geometry: VideoGeometry) -> None:
        super().__init__(config, geometry)
        c = config
        extents = _plane_extents(c, geometry)
        self.keyframes = nn.ModuleDict({
            name: MultiResPlane(plane_levels(c.levels, c.base_resolution, c.growth, extents[name]), c.features,
                                c.border)
            for name, _ in PLANES
        })
        self.sparse = SparseVolume(c.sparse_frames, c.sparse_rows, c.sparse_cols, c.sparse_features,
                                   tuple(c.sparse_window), c.sparse_upsample)  # type: ignore[arg-type]
        latent = sum(p.out_dim for p in self.keyframes.values()) + self.sparse.out_dim
        w = c.width
        self.modulator = nn.ModuleList(
            [nn.Linear(latent if i == 0 else w + latent, w) for i in range(c.layers)])
        self.synthesizer = nn.ModuleList([nn.Linear(1 if i == 0 else w, w) for i in range(c.layers)])
        self.head = nn.Linear(w, 3)
        self._init_weights()
        self.activation = nn.LeakyReLU(0.01) if c.modulator_activation == "leaky" else nn.ReLU()

    def _init_weights(self) -> None:
        """Spec §2.2(d, e): Kaiming-normal modulator weights; first sine layer U(−1, 1); later sine
        layers and the head U(±√(6/width))."""
        with torch.no_grad():
            for layer in self.modulator:
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            bound = math.sqrt(6.0 / self.config.width)
            for i, layer in enumerate([*self.synthesizer, self.head]):
                b = 1.0 if i == 0 else bound
                layer.weight.uniform_(-b, b)
                layer.bias.uniform_(-b, b)

    # -- coordinates --------------------------------------------------------------------------------
    @property
    def output_size(self) -> tuple[int, int]:
        return (self.geometry.height, self.geometry.width)

    def _times(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(grid time t = k/(N−1), synthesizer time τ = (k+½)/N) of frame positions (spec §2.1)."""
        n = self.geometry.num_frames
        pos = positions.to(torch.float32)
        return pos / max(n - 1, 1), (pos + 0.5) / n

    # -- the network ----------------------------------------------------------------------------------
    def rgb(self, t: torch.Tensor, tau: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
            linear_time: bool = False) -> torch.Tensor:
        """RGB in [−1, 1] (n, 3) at per-sample coordinates (all (n,), in [0, 1])."""
        coords = {"x": x, "y": y, "t": t}
        parts = [plane(torch.stack([coords[a], coords[b]], 1)) for (name, (a, b)), plane in
                 zip(PLANES, self.keyframes.values())]
        parts.append(self.sparse(torch.stack([t, x, y], 1), linear_time=linear_time))
        z = torch.cat(parts, 1)
        h = self.activation(self.modulator[0](z))
        alpha = h * torch.sin(self.config.omega_first * self.synthesizer[0](tau[:, None]))
        for mod, syn in zip(self.modulator[1:], self.synthesizer[1:]):
            h = self.activation(mod(torch.cat([h, z], 1)))
            alpha = h * torch.sin(self.config.omega_hidden * syn(alpha))
        return self.head(alpha)

    def forward(self, batch: FrameBatch | PixelBatch) -> torch.Tensor:  # type: ignore[override]
        """Pixel batch → (n, 3) in [0, 1] (unclamped); frame batch → whole frames (n, 3, H, W)."""
        if isinstance(batch, FrameBatch):
            return self.render(batch.indices.to(torch.float32))
        h, w = self.geometry.height, self.geometry.width
        t, tau = self._times(batch.frames)
        x = batch.rows.to(torch.float32) / max(h - 1, 1)
        y = batch.cols.to(torch.float32) / max(w - 1, 1)
        return (self.rgb(t, tau, x, y) + 1) * 0.5

    def render(self, positions: torch.Tensor, size: tuple[int, int] | None = None,
               linear_time: bool = False) -> torch.Tensor:
        """Frames (n, 3, H', W') in [0, 1] (unclamped) at frame ``positions`` on an H'×W' pixel grid
        over the same [0, 1]² (default: the video's size), rendered in tiles of ``render_pixels``."""
        h, w = size or self.output_size
        device = self.head.weight.device
        rows = torch.arange(h, device=device, dtype=torch.float32) / max(h - 1, 1)
        cols = torch.arange(w, device=device, dtype=torch.float32) / max(w - 1, 1)
        xs, ys = rows.repeat_interleave(w), cols.repeat(h)
        t_all, tau_all = self._times(positions.to(device))
        out = []
        tile = self.config.render_pixels
        for t, tau in zip(t_all.tolist(), tau_all.tolist()):
            chunks = []
            for start in range(0, h * w, tile):
                x, y = xs[start : start + tile], ys[start : start + tile]
                chunks.append(self.rgb(torch.full_like(x, t), torch.full_like(x, tau), x, y, linear_time))
            out.append(torch.cat(chunks, 0).t().reshape(3, h, w))
        return (torch.stack(out) + 1) * 0.5

    # -- the contract ---------------------------------------------------------------------------------
    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        return self.render(indices.to(torch.float32))

    def decode_at(self, positions: torch.Tensor) -> torch.Tensor:
        """Frames at fractional positions: the planes are continuous in t and the sparse grid is read
        linearly between its slices (spec §2.5); integer positions decode exactly as :meth:`decode`."""
        pos, _, _, frac = self._neighbours(positions)
        whole = frac == 0
        h, w = self.output_size
        frames = torch.empty(len(pos), 3, h, w, device=self.head.weight.device)
        for mask, linear in ((whole, False), (~whole, True)):
            if bool(mask.any()):
                frames[mask] = self.render(pos[mask], linear_time=linear)
        return frames

    def decode_scaled(self, indices: torch.Tensor, scale: float) -> torch.Tensor:
        """Frames rendered on a (scale·H)×(scale·W) grid over the same coordinates (super-resolution)."""
        h, w = self.output_size
        return self.render(indices.to(torch.float32), (round(h * scale), round(w * scale)))

    def fill_untrained_frames(self, train_indices: list[int]) -> None:
        """Give the sparse-grid slices that no training frame reads (held-out frames) the linear
        interpolation of the nearest trained slices, so that held-out frames decode between their
        neighbours (the official temporal path) rather than from never-trained codes."""
        s = self.config.sparse_frames
        t, _ = self._times(torch.as_tensor(train_indices))
        read = set(self.sparse.slice_index(t).tolist())  # the slices training read, by the lookup's own rule
        trained = sorted(read)
        if not trained or len(trained) == s:
            return
        with torch.no_grad():
            grid = self.sparse.grid
            known = torch.tensor(trained)
            for k in range(s):
                if k in read:
                    continue
                hi = int(torch.searchsorted(known, k))
                if hi == 0 or hi == len(trained):
                    grid[k] = grid[trained[0 if hi == 0 else -1]]
                    continue
                a, b = trained[hi - 1], trained[hi]
                grid[k] = torch.lerp(grid[a], grid[b], (k - a) / (b - a))

    def stored_groups(self) -> list[StoredGroup]:
        images = {f"keyframes.{name}.l{i:02d}": img for name, plane in self.keyframes.items()
                  for i, img in enumerate(plane.level_images())}
        mlp = {k: v for k, v in self.state_dict().items() if not k.startswith(("keyframes.", "sparse."))}
        first = {k: mlp.pop(k) for k in ("synthesizer.0.weight", "synthesizer.0.bias")}
        return [
            StoredGroup("keyframes", "latent_image", images),
            StoredGroup("sparse", "latent_video", {"sparse.volumes": self.sparse.channel_volumes()}),
            # ω₀ = 30 multiplies the first sine layer's weights: they keep 16 bits
            StoredGroup("synthesizer_input", "weights", first, min_bits=16),
            StoredGroup("mlp", "weights", mlp),
        ]

    def stored_views(self) -> dict[str, tuple[str, Any, Any]]:
        """The keyframe levels are stored without their leading batch dim, the sparse grid channel-first."""
        views: dict[str, tuple[str, Any, Any]] = {
            f"keyframes.{name}.l{i:02d}": (f"keyframes.{name}.images.{i}", lambda t: t[0], lambda t: t.unsqueeze(0))
            for name, plane in self.keyframes.items() for i in range(len(plane.levels))}
        views["sparse.volumes"] = ("sparse.grid", lambda t: t.permute(3, 0, 1, 2), lambda t: t.permute(1, 2, 3, 0))
        return views

    def load_stored(self, tensors: dict[str, torch.Tensor]) -> None:
        expected = {name for g in self.stored_groups() for name in g.tensors}
        if set(tensors) != expected:
            missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
            raise ValueError(f"stored tensors do not match: missing {missing[:3]}, unexpected {extra[:3]}")
        state = {k: v for k, v in tensors.items() if not k.startswith(("keyframes.", "sparse."))}
        for name, plane in self.keyframes.items():
            for i in range(len(plane.levels)):
                state[f"keyframes.{name}.images.{i}"] = tensors[f"keyframes.{name}.l{i:02d}"].unsqueeze(0)
        state["sparse.grid"] = tensors["sparse.volumes"].permute(1, 2, 3, 0)
        self.load_state_dict({k: v.contiguous() for k, v in state.items()}, strict=True)

    def parameter_counts(self) -> ParameterCounts:
        parts = {
            "keyframes": sum(p.numel() for p in self.keyframes.parameters()),
            "sparse": self.sparse.grid.numel(),
            "modulator": sum(p.numel() for p in self.modulator.parameters()),
            "synthesizer": sum(p.numel() for p in [*self.synthesizer.parameters(), *self.head.parameters()]),
        }
        total = sum(parts.values())
        return ParameterCounts(official=total, total=total, parts=parts)
