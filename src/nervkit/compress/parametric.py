"""Parametric entropy models of integer codes: a Laplace or Gaussian density integrated over each unit bin.

The probability of the integer code ``q`` under a density of mean ``μ`` and scale ``b`` is the mass of the
bin around it (Ballé et al., ICLR 2018, Eq. 5; the discretised Laplace of EC-NeRV / Cool-chic)::

    P(q) = F((q + ½ − μ) / b) − F((q − ½ − μ) / b)        bits(q) = −log₂ P(q)

``F`` is the standard Laplace CDF (``b`` its scale, variance 2b²) or Gaussian CDF (``b`` its standard
deviation). Both are evaluated on the lower tail (``v = |q − μ|``, ``F(½ − v) − F(−½ − v)``), where the
difference of two CDFs does not cancel, as CompressAI's ``GaussianConditional`` does. The probability
is floored at ``2**-PROB_BITS``, what the file's coder charges at most for a symbol far in the tail.

Training evaluates :func:`bits_torch` on a continuous surrogate of ``q`` (noise, soft-rounding; see
:mod:`.learned_quant`) so that the rate is differentiable in the weights, the step sizes and the model's
own parameters. The file codes the final integer codes with the same model in ``constriction``'s ANS
coder (``QuantizedLaplace`` / ``QuantizedGaussian`` over the codes' range ``[lo, hi]``, one mean and
scale per symbol): :func:`encode_codes` / :func:`decode_codes`. :func:`bits_numpy` is the estimate of
what that costs (it differs from the real code length by the coder's fixed-point rounding and a final
32-bit word, well under 1 % for any tensor of a few thousand values).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import BitstreamError

#: the families, in the order of their byte in the file
FAMILIES = ("laplace", "gaussian")
#: the most bits one symbol costs (constriction's 24-bit probabilities leave this much for the tails)
PROB_BITS = 24
_FLOOR = 2.0 ** -PROB_BITS


def _cdf_torch(x: torch.Tensor, family: str) -> torch.Tensor:
    if family == "laplace":  # x <= 0 on the lower tail; the other branch for the bin that holds the mean
        return torch.where(x <= 0, 0.5 * torch.exp(torch.clamp(x, max=0.0)),
                           1.0 - 0.5 * torch.exp(-torch.clamp(x, min=0.0)))
    return torch.special.ndtr(x)


def bits_torch(y: torch.Tensor, mean: torch.Tensor | float, scale: torch.Tensor, family: str) -> torch.Tensor:
    """Bits of every value of ``y`` (codes, or their continuous surrogate) under the model; differentiable."""
    v = (y - mean).abs()
    p = _cdf_torch((0.5 - v) / scale, family) - _cdf_torch((-0.5 - v) / scale, family)
    return -torch.log2(torch.clamp(p, min=_FLOOR))


def _cdf_numpy(x: np.ndarray, family: str) -> np.ndarray:
    if family == "laplace":
        return np.where(x <= 0, 0.5 * np.exp(np.minimum(x, 0.0)), 1.0 - 0.5 * np.exp(-np.maximum(x, 0.0)))
    return 0.5 * _erfc(-x / math.sqrt(2.0))


def _erfc(x: np.ndarray) -> np.ndarray:
    return torch.special.erfc(torch.from_numpy(np.asarray(x, dtype=np.float64))).numpy()


def bits_numpy(q: np.ndarray, mean: np.ndarray | float, scale: np.ndarray, family: str) -> float:
    """Total bits of the integer codes ``q`` under the model (float64): the rate the file's coder reaches."""
    v = np.abs(np.asarray(q, dtype=np.float64) - mean)
    scale = np.asarray(scale, dtype=np.float64)
    p = _cdf_numpy((0.5 - v) / scale, family) - _cdf_numpy((-0.5 - v) / scale, family)
    return float(-np.log2(np.maximum(p, _FLOOR)).sum())


def _coder_model(family: str, lo: int, hi: int):
    import constriction

    model = constriction.stream.model
    return (model.QuantizedLaplace if family == "laplace" else model.QuantizedGaussian)(lo, hi)


def encode_codes(q: np.ndarray, mean: np.ndarray, scale: np.ndarray, family: str, lo: int, hi: int) -> bytes:
    """The ANS words (little-endian 32-bit) of the flat int codes ``q`` in ``[lo, hi]``, each coded with its
    own ``mean`` and ``scale`` (float64 arrays as long as ``q``); empty when ``lo == hi`` (nothing to code)."""
    if lo == hi:
        return b""
    import constriction

    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(np.ascontiguousarray(q, dtype=np.int32), _coder_model(family, lo, hi),
                         np.ascontiguousarray(mean, dtype=np.float64), np.ascontiguousarray(scale, dtype=np.float64))
    return coder.get_compressed().astype("<u4").tobytes()


def ans_decoder(data: bytes):
    """An ANS decoder over the words of ``data`` (BitstreamError unless whole 32-bit words), for a stream
    decoded in parts (:func:`decode_next`, then :func:`finish`)."""
    if not data or len(data) % 4:
        raise BitstreamError(f"coded data of {len(data)} bytes is not a whole number of 32-bit words")
    import constriction

    try:
        return constriction.stream.stack.AnsCoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))
    except ValueError as exc:  # e.g. a last word of zero, which no encoder writes
        raise BitstreamError(f"corrupt entropy-coded data ({exc})") from None


def decode_next(coder, family: str, lo: int, hi: int, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The next ``len(mean)`` codes of a stream (:func:`ans_decoder`), each with its own mean and scale."""
    try:
        q = coder.decode(_coder_model(family, lo, hi), np.ascontiguousarray(mean, dtype=np.float64),
                         np.ascontiguousarray(scale, dtype=np.float64))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # corrupt words: ValueError/AssertionError, or a Rust panic (BaseException)
        raise BitstreamError(f"corrupt entropy-coded data ({type(exc).__name__})") from None
    return np.asarray(q, dtype=np.int64)


def finish(coder) -> None:
    """BitstreamError unless the stream ended exactly where its codes did."""
    if not coder.is_empty():
        raise BitstreamError("corrupt entropy-coded data (coder not exhausted)")


def decode_codes(data: bytes, count: int, mean: np.ndarray, scale: np.ndarray, family: str, lo: int,
                 hi: int) -> np.ndarray:
    """Inverse of :func:`encode_codes`: ``count`` int32 codes; BitstreamError for corrupt words."""
    if lo == hi:
        if data:
            raise BitstreamError(f"{len(data)} unexpected bytes after a constant tensor's codes")
        return np.full(count, lo, dtype=np.int32)
    coder = ans_decoder(data)
    q = decode_next(coder, family, lo, hi, mean, scale)
    finish(coder)
    return q.astype(np.int32)
