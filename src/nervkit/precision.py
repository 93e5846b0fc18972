"""Reduced-precision arithmetic: the ``--precision`` modes and which device runs them.

``fp32`` is the default and the reference: no autocast, bit-reproducible training and decoding.
``bf16`` and ``fp16`` run the network under :func:`torch.autocast` with that dtype (convolutions and
matrix products in half precision, reductions and normalisations in float32, as PyTorch's autocast
lists say); whoever calls :func:`autocast` casts the result back to float32 before a loss or a metric.
Training in fp16 also needs a gradient scaler (:mod:`nervkit.train.engine` makes it).

Which device runs what (:func:`check_precision`, a one-line :class:`~nervkit.errors.ConfigError`
otherwise): a CUDA device runs fp16, and bf16 where it supports bf16 natively (Ampere and later);
the CPU runs both (PyTorch's CPU autocast) — natively on CPUs with AVX512-BF16/AMX, emulated (slower
than fp32) elsewhere; other device kinds run what PyTorch's autocast offers there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from .errors import ConfigError

#: the ``--precision`` choices; the first is the default
PRECISIONS = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of ``precision`` (None for fp32: no autocast)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return _DTYPES.get(precision)


def check_precision(precision: str, device: torch.device | str) -> None:
    """ConfigError (one line) unless ``device`` can run ``precision``."""
    dtype = autocast_dtype(precision)
    if dtype is None:
        return
    device = torch.device(device)
    if device.type == "cuda":
        if dtype is torch.bfloat16 and not _cuda_bf16(device):
            name = torch.cuda.get_device_name(device)
            raise ConfigError(f"--precision bf16 needs a GPU with bfloat16 support (Ampere or later); {name} has "
                              "none: use --precision fp16 (or fp32)")
        return
    if not torch.amp.is_autocast_available(device.type):
        raise ConfigError(f"--precision {precision} is not available on {device.type} devices; use --precision fp32")


def _cuda_bf16(device: torch.device) -> bool:
    with torch.cuda.device(device):
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))


@contextlib.contextmanager
def autocast(precision: str, device: torch.device | str) -> Iterator[None]:
    """Within: ``device``'s autocast in ``precision`` (nothing at all for fp32)."""
    dtype = autocast_dtype(precision)
    if dtype is None:
        yield
        return
    with torch.autocast(torch.device(device).type, dtype=dtype):
        yield
