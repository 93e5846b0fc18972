"""Compression of fitted representations: quantization, entropy coding and the ``.nerv`` container.

* :mod:`.quantize` — uniform min/max quantization (per tensor or per output channel; HNeRV) or symmetric
  per-slice quantization (HiNeRV), one stored form; straight-through fake quantization for QAT;
* :mod:`.prune` — global one-shot pruning by |w| (NeRV) or |w| / sqrt(the tensor's non-zeros) (HiNeRV);
* :mod:`.qat` — quantization-aware fine-tuning through the file's quantizer, optionally with Quant-Noise
  (Fan et al., ICLR 2021);
* :mod:`.entropy` — lossless ANS coding of integer symbols with their own histogram, plus the
  entropy / Huffman reference costs;
* :mod:`.container` — the ``.nerv`` file: magic, version, CRC-checked sections, end marker;
* :mod:`.tensor_codec` — the payload of one quantized, entropy-coded tensor;
* :mod:`.varint` — LEB128 varints;
* :mod:`.config` — :class:`~.config.CompressConfig`, the settings of a compression (every default once);
* :mod:`.sections` — the table from storage kind to section codec (tensor, sparse, raw, jpeg, hevc) and
  the one rule that picks a codec;
* :mod:`.model_codec` — a fitted model ↔ a ``.nerv`` file; :mod:`.inspect` — what a file's parts cost.

The stages of ``nervkit.compress`` (prune → fine-tune → QAT → refresh → write → evaluate) train, so
they live in :mod:`nervkit.compression`, above :mod:`nervkit.train`.

The byte-level format is specified in ``docs/bitstream.md``.
"""

from .container import FORMAT_VERSION, MAGIC, Section, pack, read_container, unpack, write_container
from .entropy import decode_symbols, empirical_entropy_bits, encode_symbols, huffman_code_bits
from .quantize import QuantizedTensor, dequantize, fake_quantize, quantize
from .tensor_codec import decode_quantized, encode_quantized

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "QuantizedTensor",
    "Section",
    "decode_quantized",
    "decode_symbols",
    "dequantize",
    "empirical_entropy_bits",
    "encode_quantized",
    "encode_symbols",
    "fake_quantize",
    "huffman_code_bits",
    "pack",
    "quantize",
    "read_container",
    "unpack",
    "write_container",
]
