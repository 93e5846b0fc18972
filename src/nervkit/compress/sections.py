"""Which codec stores a tensor, and the codecs: one table from storage kind to section codec.

A model's ``stored_groups()`` give every tensor a storage kind (``models.base.STORAGE_KINDS``). The
file stores each tensor as one section, whose kind names its codec (:data:`SECTION_CODECS`):

========  =====================================================================  ======================
kind      payload                                                                module
========  =====================================================================  ======================
tensor    quantized (``bits`` / ``embed_bits``) and entropy-coded                :mod:`.tensor_codec`
sparse    a pruned tensor: coded keep-mask + its quantized non-zeros             :mod:`.sparse_codec`
raw       a non-float buffer, exactly                                            :mod:`.raw_codec`
learned   a rate-trained tensor: codes under its learned step sizes, coded with   :mod:`.learned_codec`
          the training's entropy model (or its histogram), the model's params too
jpeg      (C, H, W) feature images, one 8-bit grayscale JPEG per channel         :mod:`.latent_codec`
hevc      (C, T, H, W) feature videos, one 4:0:0 HEVC stream per channel         :mod:`.latent_codec`
========  =====================================================================  ======================

:func:`choose_section` is the one rule that picks a section kind: a tensor rate training learned a
quantizer for (:mod:`.learned_quant`) is ``learned``; otherwise a storage kind that has an image or
video codec (:data:`STORAGES`) uses it when ``latent_codec`` is ``codec``; otherwise a non-float tensor
goes raw, a float tensor of at least 2 dims with at least :data:`SPARSE_THRESHOLD` exact zeros (pruned)
sparse — unless the quantizer is ``symmetric`` (HiNeRV's), whose zero code decodes to exactly 0 with the
tensor's per-slice scales, so a pruned tensor stays one quantized tensor (the order-0 entropy of its codes
is at most that of a keep-mask plus the same non-zero codes) — and any other float tensor as a quantized
tensor (``bits`` and ``quantizer`` of the settings, :mod:`.quantize`). A new storage kind (D-NeRV's
``key_frames`` coded with an image codec) is one entry of :data:`STORAGES`, plus one of
:data:`SECTION_CODECS` if it needs a codec of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import BitstreamError
from .config import CompressConfig
from .latent_codec import (
    IMAGE_MAGIC,
    VERSION,
    VIDEO_MAGIC,
    decode_latent_images,
    decode_latent_video,
    encode_latent_images,
    encode_latent_video,
)
from .learned_codec import decode_learned, encode_learned, peek_learned_shape
from .learned_quant import RateModel
from .quantize import dequantize, quantize
from .raw_codec import decode_raw, encode_raw, raw_meta
from .sparse_codec import decode_sparse, encode_sparse
from .tensor_codec import MAX_ELEMENTS, decode_quantized, encode_quantized, read_shape
from .varint import read_uvarint

#: a weight tensor with at least this share of exact zeros (pruned) is coded as mask + non-zeros
SPARSE_THRESHOLD = 0.02


@dataclass(frozen=True)
class SectionCodec:
    """How one section kind is written and read.

    ``encode(tensor, config, bits)``: the payload (``bits``: the tensor's bit depth, for the codecs that
    quantize to it); ``decode(payload)``: the float32 (or raw) tensor; ``peek_shape(payload, where)``:
    the shape the payload declares, read from its header without decoding it and bounded by
    ``MAX_ELEMENTS`` values (a one-line BitstreamError starting with ``where`` when it is malformed)."""

    kind: str
    encode: Callable[[torch.Tensor, CompressConfig, int], bytes]
    decode: Callable[[bytes], torch.Tensor]
    peek_shape: Callable[[bytes, str], tuple[int, ...]]


@dataclass(frozen=True)
class Storage:
    """What a storage kind needs: ``media``, the section kind of its image / video codec (None: coded
    as numbers only), and whether it is quantized to ``embed_bits`` (per-frame side information)
    rather than ``bits``."""

    media: str | None = None
    embed_bits: bool = False


#: storage kind (models.base.STORAGE_KINDS) -> how it is stored
STORAGES: dict[str, Storage] = {
    "weights": Storage(),
    "per_frame": Storage(embed_bits=True),
    "latent_image": Storage(media="jpeg"),
    "latent_video": Storage(media="hevc"),
    "key_frames": Storage(),  # D-NeRV's key-frames: coded like weights until their image codec arrives
}


def _peek_tensor(data: bytes, where: str) -> tuple[int, ...]:
    if len(data) < 3:
        raise BitstreamError(f"{where}: truncated tensor header")
    return tuple(read_shape(data, 2)[0])


def _peek_latent(kind: str, magic: int, ndim: int) -> Callable[[bytes, str], tuple[int, ...]]:
    def peek(data: bytes, where: str) -> tuple[int, ...]:
        if len(data) < 2 or data[0] != magic or data[1] != VERSION:
            raise BitstreamError(f"{where}: not a latent {kind} payload of version {VERSION}")
        pos, dims = 2, []
        for _ in range(ndim):
            d, pos = read_uvarint(data, pos, what="latent dimension")
            dims.append(d)
            if math.prod(dims) > MAX_ELEMENTS:
                raise BitstreamError(f"{where}: more than {MAX_ELEMENTS} values")
        return tuple(dims)

    return peek


def _encoded_by_rate_model(tensor: torch.Tensor, config: CompressConfig, bits: int) -> bytes:
    raise TypeError("a learned section is written by encode_section with its rate model")


#: section kind -> codec
SECTION_CODECS: dict[str, SectionCodec] = {
    codec.kind: codec
    for codec in (
        SectionCodec("tensor", lambda t, config, bits: encode_quantized(quantize(t.float(), bits,
                                                                                quantizer=config.quantizer)),
                     lambda payload: dequantize(decode_quantized(payload)), _peek_tensor),
        SectionCodec("sparse", lambda t, config, bits: encode_sparse(t, bits), decode_sparse,
                     lambda data, where: tuple(read_shape(data, 0)[0])),
        SectionCodec("raw", lambda t, config, bits: encode_raw(t), decode_raw,
                     lambda data, where: raw_meta(data, where)[1]),
        SectionCodec("jpeg", lambda t, config, bits: encode_latent_images(t.float(),
                                                                          quality=config.jpeg_quality),
                     decode_latent_images, _peek_latent("jpeg", IMAGE_MAGIC, 3)),
        SectionCodec("learned", _encoded_by_rate_model, decode_learned, peek_learned_shape),
        SectionCodec("hevc", lambda t, config, bits: encode_latent_video(t.float(), crf=config.hevc_crf,
                                                                         fps=config.hevc_fps),
                     decode_latent_video, _peek_latent("hevc", VIDEO_MAGIC, 4)),
    )
}


def choose_section(storage: str, tensor: torch.Tensor, config: CompressConfig) -> str:
    """The section kind (a key of :data:`SECTION_CODECS`) that stores ``tensor`` of storage kind
    ``storage``: the one rule (module docstring)."""
    media = STORAGES[storage].media
    if media is not None and config.latent_codec == "codec":
        return media
    if not tensor.is_floating_point():
        return "raw"
    if is_sparse(tensor, config):
        return "sparse"
    return "tensor"


def is_sparse(tensor: torch.Tensor, config: CompressConfig) -> bool:
    """Whether the float ``tensor`` is coded as mask + non-zeros (module docstring): a pruned tensor (>= 2 dims,
    at least :data:`SPARSE_THRESHOLD` exact zeros) under the min/max quantizer."""
    return (config.quantizer == "minmax" and tensor.ndim >= 2
            and float((tensor == 0).float().mean()) >= SPARSE_THRESHOLD)


def bit_depth(storage: str, config: CompressConfig, min_bits: int = 0) -> int:
    """Bits per value of a tensor of storage kind ``storage`` (at least the group's ``min_bits``, for
    weights; per-frame side information takes ``embed_bits`` as it is)."""
    return config.embed_bits if STORAGES[storage].embed_bits else max(config.bits, min_bits)


def encode_section(storage: str, tensor: torch.Tensor, config: CompressConfig, min_bits: int = 0, *,
                   name: str = "", rate: RateModel | None = None) -> tuple[str, bytes, float]:
    """(section kind, payload, estimated bits) of ``tensor`` (called ``name``) of storage kind ``storage``;
    a tensor ``rate`` holds a quantizer for is coded with it. The estimate is the payload's size except for a
    learned section, where it is the entropy model's rate of the codes plus the stored side information."""
    t = tensor.detach().cpu()
    if rate is not None and name in rate.kinds:
        quantizer = rate.quantizer(name)
        payload, bits = encode_learned(t, quantizer.integers(), quantizer.axes, quantizer.family)
        return "learned", payload, bits
    kind = choose_section(storage, t, config)
    payload = SECTION_CODECS[kind].encode(t, config, bit_depth(storage, config, min_bits))
    return kind, payload, 8.0 * len(payload)
