"""Fuzzing the .nerv parser and the payload decoders: only NervkitError subclasses may escape.

A seeded loop (not hypothesis: ~10x less overhead per input) mutates a real packed container with
random byte flips, insertions, deletions, truncations and duplicated chunks, 1 to 3 mutations per
input. Inputs that still unpack have their payloads decoded. A second loop feeds mutated payloads to
the decoders directly, past the CRC that would otherwise reject almost all of them. The container holds
learned sections too (rate training's payloads: the parametric, histogram and context coders), and a third
test fuzzes a real rate-trained .nerv file, its mutated sections repacked with valid CRCs and rebuilt into a
model.
"""

from __future__ import annotations

import random
import time

import numpy as np
import torch

from nervkit.compress.container import Section, pack, unpack
from nervkit.compress.entropy import decode_symbols, encode_symbols
from nervkit.compress.learned_codec import decode_learned, encode_learned
from nervkit.compress.learned_quant import LearnedQuantizer
from nervkit.compress.quantize import quantize
from nervkit.compress.tensor_codec import decode_quantized, encode_quantized
from nervkit.errors import NervkitError

N_CONTAINER = 10_000
N_PAYLOAD = 10_000
SYMBOLS = np.clip(np.rint(np.random.default_rng(0).laplace(8, 1.2, 300)), 0, 15).astype(np.int64)


def _learned(tensor: torch.Tensor, axes: tuple[int, ...], taps: list[float] | None = None,
             scale: float | None = None) -> bytes:
    """A learned payload of ``tensor`` (quantizer initialised on it; ``taps``: a context model; ``scale``:
    log₂ of a badly mismatched entropy-model scale, for the histogram fallback)."""
    quantizer = LearnedQuantizer(tuple(tensor.shape), axes, "laplace", context=taps is not None)
    quantizer.initialise(tensor)
    with torch.no_grad():
        if taps is not None:
            quantizer.context.copy_(torch.tensor(taps))
        if scale is not None:
            quantizer.log2_scale[0].fill_(scale)
    return encode_learned(tensor, quantizer.integers(), axes, "laplace")[0]


def _learned_sections() -> list[Section]:
    g = torch.Generator().manual_seed(1)
    y, x = torch.meshgrid(torch.arange(6.0), torch.arange(8.0), indexing="ij")
    embeddings = torch.sin(x / 3 + torch.arange(3.0).reshape(3, 1, 1, 1)) + torch.cos(y / 4).expand(3, 2, 6, 8)
    sections = [
        Section("learned", "conv1.w", _learned(torch.randn(6, 4, 3, 3, generator=g) * 0.1, (0, 1))),
        Section("learned", "conv1.bias", _learned(torch.randn(6, generator=g) * 0.01, ())),
        Section("learned", "hist", _learned(torch.randint(-2, 3, (8, 8), generator=g) * 0.5, (), scale=20.0)),
        Section("learned", "embeddings", _learned(embeddings, (1,), taps=[0.5, 0.5, -2.0, 0.0, 0.0])),
    ]
    assert [s.payload[2] for s in sections] == [0, 0, 1, 2]  # parametric, histogram, context coders
    return sections


def _container() -> bytes:
    g = torch.Generator().manual_seed(0)
    return pack([
        Section("header", "header", b'{"method": "nerv", "frames": 8}'),
        Section("weights", "conv0.w", encode_quantized(quantize(torch.randn(4, 3, 3, 3, generator=g), 6))),
        Section("weights", "conv0.bias", encode_quantized(quantize(torch.randn(4, generator=g), 8))),
        Section("symbols", "latents", encode_symbols(SYMBOLS, 16)),
        Section("weights", "const", encode_quantized(quantize(torch.full((2, 5), 0.5), 4))),
        *_learned_sections(),
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
    elif section.kind == "learned":
        out = decode_learned(section.payload)
        assert out.dtype == torch.float32 and bool(torch.isfinite(out).all())


def test_fuzz_container_and_payloads() -> None:
    data = _container()
    assert len(unpack(data)) == 9
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
    payloads = [s for s in unpack(data) if s.kind in ("weights", "symbols", "learned")]
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


def _rate_trained_file() -> bytes:
    """A .nerv file of a tiny HNeRV trained for two epochs with the rate term: learned sections for its
    weights and its per-frame embeddings."""
    from helpers import clip_tensor

    from nervkit.compress.model_codec import encode_model
    from nervkit.data import FrameStore
    from nervkit.models import VideoGeometry, create_model
    from nervkit.train import TrainConfig, Trainer

    torch.manual_seed(0)
    store = FrameStore.from_tensor(clip_tensor(4, 36, 64))
    model = create_model("hnerv", VideoGeometry(4, 36, 64), encoder_width=8, channels=16, embed_channels=4,
                         lower_width=4)
    trainer = Trainer(model, store, TrainConfig(epochs=2, lr=2e-3, eval_every=2, rate_lambda=0.05),
                      device=torch.device("cpu"), progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trainer.fit()
    finally:
        torch.set_num_threads(threads)
    return pack(encode_model(model.cpu().eval(), rate=trainer.rate.cpu()))


def test_fuzz_a_rate_trained_file() -> None:
    from nervkit.compress.model_codec import parse_nerv

    data = _rate_trained_file()
    sections = unpack(data)
    learned = [i for i, s in enumerate(sections) if s.kind == "learned"]
    assert len(learned) == len(sections) - 1 and 0 in {sections[i].payload[2] for i in learned}
    reference = parse_nerv(data).build_model()
    rng = random.Random(20261126)
    outcomes = {"rejected": 0, "decoded": 0}
    t0 = time.perf_counter()
    for n in range(800):
        if n % 4 == 0:  # the whole file: the CRCs reject any change
            mutated = _mutate(data, rng)
        else:  # one learned payload, repacked with valid CRCs: the payload decoder and the model rebuild
            i = rng.choice(learned)
            parts = list(sections)
            parts[i] = Section("learned", sections[i].name, _mutate(sections[i].payload, rng))
            mutated = pack(parts)
        try:
            model = parse_nerv(mutated).build_model()
        except NervkitError:
            outcomes["rejected"] += 1
            continue
        outcomes["decoded"] += 1
        assert all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point())
    assert outcomes["rejected"] > 400 and reference is not None, outcomes
    print(f"\nfuzz: 800 rate-trained files ({outcomes}) in {time.perf_counter() - t0:.2f} s")
