"""Fuzzing the .nerv parser and the payload decoders: only NervkitError subclasses may escape.

A seeded loop (not hypothesis: ~10x less overhead per input) mutates a real packed container with
random byte flips, insertions, deletions, truncations and duplicated chunks, 1 to 3 mutations per
input. Inputs that still unpack have their payloads decoded. A second loop feeds mutated payloads to
the decoders directly, past the CRC that would otherwise reject almost all of them.
"""

from __future__ import annotations

import random
import time

import numpy as np
import torch

from nervkit.compress.container import Section, pack, unpack
from nervkit.compress.entropy import decode_symbols, encode_symbols
from nervkit.compress.quantize import quantize
from nervkit.compress.tensor_codec import decode_quantized, encode_quantized
from nervkit.errors import NervkitError

N_CONTAINER = 10_000
N_PAYLOAD = 10_000
SYMBOLS = np.clip(np.rint(np.random.default_rng(0).laplace(8, 1.2, 300)), 0, 15).astype(np.int64)


def _container() -> bytes:
    g = torch.Generator().manual_seed(0)
    return pack([
        Section("header", "header", b'{"method": "nerv", "frames": 8}'),
        Section("weights", "conv0.w", encode_quantized(quantize(torch.randn(4, 3, 3, 3, generator=g), 6))),
        Section("weights", "conv0.bias", encode_quantized(quantize(torch.randn(4, generator=g), 8))),
        Section("symbols", "latents", encode_symbols(SYMBOLS, 16)),
        Section("weights", "const", encode_quantized(quantize(torch.full((2, 5), 0.5), 4))),
    ])


def _mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(6)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:  # flip bits of one byte
            i = min(pos, len(buf) - 1)
            buf[i] ^= rng.randint(1, 255)
        elif op == 1:  # set a byte to a boundary value
            if buf:
                buf[min(pos, len(buf) - 1)] = rng.choice([0, 1, 0x7F, 0x80, 0xFF])
        elif op == 2:  # insert random bytes
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 3:  # delete a run
            del buf[pos : pos + rng.randint(1, 16)]
        elif op == 4:  # truncate
            del buf[pos:]
        else:  # duplicate a chunk somewhere
            start = rng.randrange(len(buf) + 1)
            chunk = buf[start : start + rng.randint(1, 64)]
            buf[pos:pos] = chunk
    return bytes(buf)


def _decode(section: Section) -> None:
    if section.kind == "weights":
        decode_quantized(section.payload)
    elif section.kind == "symbols":
        decode_symbols(section.payload, SYMBOLS.size, 16)


def test_fuzz_container_and_payloads() -> None:
    data = _container()
    assert len(unpack(data)) == 5
    for s in unpack(data):
        _decode(s)
    rng = random.Random(20261122)
    rejected = parsed = 0
    t0 = time.perf_counter()
    for _ in range(N_CONTAINER):
        mutated = _mutate(data, rng)
        try:
            sections = unpack(mutated)
        except NervkitError:
            rejected += 1
            continue
        parsed += 1
        assert mutated == data  # CRC-32 + structure: only an unchanged file parses (for these seeds)
        for s in sections:
            try:
                _decode(s)
            except NervkitError:
                pass
    payloads = [s for s in unpack(data) if s.kind in ("weights", "symbols")]
    for i in range(N_PAYLOAD):
        s = payloads[i % len(payloads)]
        try:
            _decode(Section(s.kind, s.name, _mutate(s.payload, rng)))
        except NervkitError:
            pass
    elapsed = time.perf_counter() - t0
    # mutations that leave the file unchanged (e.g. truncating at its end) parse; nothing else did
    assert rejected + parsed == N_CONTAINER and parsed < N_CONTAINER // 50
    print(f"\nfuzz: {N_CONTAINER} containers ({rejected} rejected) + {N_PAYLOAD} payloads in {elapsed:.2f} s")
