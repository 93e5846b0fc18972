"""Pruning (fraction removed), sparse coding of pruned tensors, quantization-aware fine-tuning."""

from __future__ import annotations

import torch

from nervkit.compress.prune import apply_masks, magnitude_masks, prunable_parameters, sparsity
from nervkit.compress.qat import quantization_aware
from nervkit.compress.quantize import dequantize, quantize
from nervkit.compress.sparse_codec import decode_sparse, encode_sparse
from nervkit.compress.tensor_codec import encode_quantized
from nervkit.models import VideoGeometry, create_model


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("nerv", VideoGeometry(8, 36, 64), mlp_hidden=32, grid_channels=16, lower_width=16)


def test_prune_fraction_means_removed_and_skips_head_and_biases() -> None:
    model = tiny_model()
    names = set(prunable_parameters(model))
    assert names and not any(n.startswith("head") or n.endswith("bias") for n in names)
    masks = magnitude_masks(model, 0.3)
    apply_masks(model, masks)
    assert abs(sparsity(model) - 0.3) < 0.01
    assert all(torch.count_nonzero(p) == p.numel() for n, p in model.named_parameters() if n.startswith("head"))
    # global ranking: every kept weight is at least as large as every removed one
    kept = torch.cat([p.detach().abs()[m] for (n, p), m in zip(prunable_parameters(model).items(), masks.values())])
    assert kept.min() > 0


def test_sparse_codec_keeps_exact_zeros_at_the_cost_of_dense_entropy_coding() -> None:
    torch.manual_seed(1)
    w = torch.randn(64, 32, 3, 3)
    w[w.abs() < 1.0] = 0  # ~68 % zeros
    payload = encode_sparse(w, 8)
    back = decode_sparse(payload)
    assert back.shape == w.shape and torch.equal(back == 0, w == 0)
    assert (back - w).abs().max() < (w.max() - w.min()) / 255
    dense = quantize(w, 8, per_channel=False)
    assert not torch.equal(dense_zeros := (dequantize(dense) == 0), w == 0)  # dense codes blur the zeros
    # mask + non-zeros costs what the dense codes cost (the ANS histogram already prices the zero
    # peak: mask entropy + non-zero entropy = dense entropy) while keeping every zero exact ...
    assert len(payload) < 1.02 * len(encode_quantized(dense))
    # ... and far less than dense per-channel codes, which spread each row over all 256 levels
    assert len(payload) < 0.6 * len(encode_quantized(quantize(w, 8, per_channel=True)))
    assert dense_zeros.sum() < (w == 0).sum()


def test_quantization_aware_forward_equals_what_the_file_decodes() -> None:
    model = tiny_model()
    apply_masks(model, magnitude_masks(model, 0.25))
    idx = torch.tensor([0, 3])
    with quantization_aware(model, bits=4, embed_bits=4, sparse_threshold=0.02):
        seen = model.decode(idx).detach()
    # outside the context the latent weights are back; quantizing them as the file does gives the
    # same network the QAT forward used
    state = {}
    for name, t in model.state_dict().items():
        if t.ndim >= 2 and (t == 0).float().mean() >= 0.02:
            state[name] = decode_sparse(encode_sparse(t, 4))
        else:
            state[name] = dequantize(quantize(t, 4))
    quantized = tiny_model()
    quantized.load_state_dict(state)
    assert torch.allclose(quantized.decode(idx), seen, atol=1e-6)
    assert not torch.equal(model.decode(idx), seen)


def _psnr_after(model, store, bits: int | None) -> float:
    from nervkit.train import evaluate_model

    if bits is not None:
        model.load_state_dict({k: dequantize(quantize(v, bits)) for k, v in model.state_dict().items()})
    return evaluate_model(model, store).psnr


def test_qat_beats_post_training_quantization_at_the_same_training_cost() -> None:
    """Same start, same extra epochs: training through the 3-bit quantizer (QAT) must decode better
    at 3 bits than plain training followed by 3-bit quantization."""
    import copy

    from nervkit.data import FrameStore
    from nervkit.train import TrainConfig, Trainer

    y, x = torch.meshgrid(torch.linspace(0, 1, 36), torch.linspace(0, 1, 64), indexing="ij")
    frames = torch.stack([torch.stack([0.5 + 0.4 * torch.sin(6 * x + i), 0.5 + 0.4 * torch.cos(5 * y - i / 2),
                                       0.5 + 0.3 * torch.sin(4 * (x + y) + i / 3)]) for i in range(8)])
    store = FrameStore.from_tensor(frames)
    cfg = TrainConfig(epochs=20, lr=5e-3, warmup=0.1, loss="l2", eval_every=20)
    base = tiny_model()
    Trainer(base, store, cfg, device=torch.device("cpu"), progress=False).fit()
    tune = TrainConfig(epochs=4, lr=1e-3, warmup=0.0, loss="l2", eval_every=4)
    plain, qat = copy.deepcopy(base), copy.deepcopy(base)
    Trainer(plain, store, tune, device=torch.device("cpu"), progress=False).fit()
    with quantization_aware(qat, bits=3, embed_bits=3, sparse_threshold=0.02):
        Trainer(qat, store, tune, device=torch.device("cpu"), progress=False).fit()
    float_psnr = _psnr_after(copy.deepcopy(plain), store, None)
    ptq, with_qat = _psnr_after(plain, store, 3), _psnr_after(qat, store, 3)
    assert float_psnr > 25.0
    assert with_qat > ptq + 0.5, (float_psnr, ptq, with_qat)


def test_mutated_sparse_payloads_raise_only_nervkit_errors() -> None:
    import random

    from nervkit.errors import NervkitError

    torch.manual_seed(2)
    w = torch.randn(16, 8, 3, 3)
    w[w.abs() < 0.8] = 0
    payload = encode_sparse(w, 6)
    rng = random.Random(7)
    for _ in range(3000):
        data = bytearray(payload)
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            if op < 0.5 and data:
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            elif op < 0.75 and data:
                del data[rng.randrange(len(data)):]
            else:
                data.insert(rng.randrange(len(data) + 1), rng.randrange(256))
        try:
            decode_sparse(bytes(data))
        except NervkitError:
            pass
