"""Lossless coding of integer symbol arrays with an ANS entropy coder and the array's own histogram.

The symbols are coded i.i.d. with a categorical model whose probabilities are the array's empirical
frequencies, so the payload costs about ``n * H`` bits (``H`` = empirical entropy, Shannon 1948) plus
a small model header. The coder is ``constriction``'s Asymmetric Numeral Systems coder
(``constriction.stream.stack.AnsCoder``, Duda 2009/2013; Bamler 2022, "Understanding entropy coding
with asymmetric numeral systems (ANS): a statistician's perspective") with
``constriction.stream.model.Categorical(..., perfect=False)``.

Payload layout (all integers unsigned LEB128 varints, see :mod:`nervkit.compress.varint`; the full
byte-level specification is ``docs/bitstream.md``)::

    form            varint: 0 = dense histogram, 1 = sparse histogram
    dense:  lo, span, then span+1 counts c[lo], ..., c[lo+span]   (zero counts allowed)
    sparse: k, the k used symbols delta-coded (first as is, then gap-1), then k counts (each >= 1)
    words           the ANS compressed data: 32-bit words, little-endian (absent if k <= 1)

The encoder writes whichever histogram form is shorter. The decoder rebuilds the model from the
integer counts exactly as the encoder did (the counts as a float64 array, unnormalized; constriction
turns them into fixed-point probabilities deterministically). Only the *used* symbols get model
entries, so unused symbols of a large alphabet cost nothing. An empty array is the empty payload; an
array with one distinct symbol needs no coded words (0 payload bits beyond the header).

:func:`decode_symbols` raises :class:`~nervkit.errors.BitstreamError` for any malformed payload and
never any other exception; corruption inside the coded words may go unnoticed (the container's
CRC32 catches it), but a coder that does not end exactly in its initial state is reported.
"""

from __future__ import annotations

import heapq

import numpy as np

from ..errors import BitstreamError
from .varint import encode_uvarint, encode_uvarints, read_uvarint

FORM_DENSE = 0
FORM_SPARSE = 1
MAX_ALPHABET = 1 << 24  # constriction's default coder has 24-bit probabilities


def _symbol_dtype(alphabet_size: int) -> np.dtype:
    if alphabet_size <= 1 << 8:
        return np.dtype(np.uint8)
    if alphabet_size <= 1 << 16:
        return np.dtype(np.uint16)
    return np.dtype(np.uint32)


def _check_alphabet(alphabet_size: int) -> None:
    if not 1 <= int(alphabet_size) <= MAX_ALPHABET:
        raise ValueError(f"alphabet_size must be in 1..{MAX_ALPHABET}, got {alphabet_size}")


def _model(counts: np.ndarray):
    import constriction

    return constriction.stream.model.Categorical(counts.astype(np.float64), perfect=False)


def _histogram_header(used: np.ndarray, counts: np.ndarray) -> bytes:
    lo, hi = int(used[0]), int(used[-1])
    gaps = np.diff(used) - 1
    sparse = encode_uvarint(FORM_SPARSE) + encode_uvarint(len(used)) + encode_uvarint(lo)
    sparse += encode_uvarints(gaps) + encode_uvarints(counts)
    if hi - lo + 4 > len(sparse):  # the dense form (3 varints + a count per symbol of the span) cannot be shorter
        return sparse
    dense_counts = np.zeros(hi - lo + 1, dtype=np.int64)
    dense_counts[used - lo] = counts
    dense = encode_uvarint(FORM_DENSE) + encode_uvarint(lo) + encode_uvarint(hi - lo)
    dense += encode_uvarints(dense_counts)
    return dense if len(dense) <= len(sparse) else sparse


def encode_symbols(symbols: np.ndarray, alphabet_size: int) -> bytes:
    """Entropy-code the integers ``symbols`` (any shape, flattened; values in ``0..alphabet_size-1``).

    Returns the self-describing payload (histogram header + ANS words); the caller stores the symbol
    count (e.g. as the tensor shape) and ``alphabet_size`` elsewhere.
    """
    _check_alphabet(alphabet_size)
    flat = np.asarray(symbols).reshape(-1)
    if flat.size == 0:
        return b""
    if flat.dtype.kind not in "iu":
        raise ValueError(f"symbols must be integers, got dtype {flat.dtype}")
    if int(flat.min()) < 0 or int(flat.max()) >= alphabet_size:
        raise ValueError(f"symbols must lie in 0..{alphabet_size - 1}")
    used, index, counts = np.unique(flat.astype(np.int64), return_inverse=True, return_counts=True)
    header = _histogram_header(used, counts)
    if len(used) == 1:
        return header
    import constriction

    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(index.reshape(-1).astype(np.int32), _model(counts))
    words = coder.get_compressed().astype("<u4")
    return header + words.tobytes()


def _read_histogram(data: bytes, count: int, alphabet_size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Parse the histogram header: ``(used symbols, their counts, offset of the coded words)``."""
    form, pos = read_uvarint(data, 0, what="histogram form")
    if form == FORM_DENSE:
        lo, pos = read_uvarint(data, pos, what="lowest symbol")
        span, pos = read_uvarint(data, pos, what="symbol span")
        if lo + span >= alphabet_size:
            raise BitstreamError(f"histogram symbol range {lo}..{lo + span} exceeds alphabet {alphabet_size}")
        if span + 1 > len(data) - pos:  # every count takes at least one byte
            raise BitstreamError("truncated histogram")
        used, counts = [], []
        for i in range(span + 1):
            c, pos = read_uvarint(data, pos, what="symbol count")
            if c:
                used.append(lo + i)
                counts.append(c)
        if not counts or used[0] != lo or used[-1] != lo + span:
            raise BitstreamError("dense histogram does not start and end with a used symbol")
    elif form == FORM_SPARSE:
        k, pos = read_uvarint(data, pos, what="used-symbol count")
        if k == 0 or k > alphabet_size:
            raise BitstreamError(f"invalid number of used symbols: {k}")
        if 2 * k > len(data) - pos:  # k symbols and k counts, one byte each at least
            raise BitstreamError("truncated histogram")
        sym, pos = read_uvarint(data, pos, what="symbol")
        used = [sym]
        for _ in range(k - 1):
            gap, pos = read_uvarint(data, pos, what="symbol gap")
            sym += gap + 1
            used.append(sym)
        if sym >= alphabet_size:
            raise BitstreamError(f"histogram symbol {sym} exceeds alphabet {alphabet_size}")
        counts = []
        for _ in range(k):
            c, pos = read_uvarint(data, pos, what="symbol count")
            if c == 0:
                raise BitstreamError("zero count in sparse histogram")
            counts.append(c)
    else:
        raise BitstreamError(f"unknown histogram form {form}")
    if not counts:
        raise BitstreamError("histogram has no symbols")
    if sum(counts) != count:
        raise BitstreamError(f"histogram counts {sum(counts)} symbols, expected {count}")
    return np.asarray(used, dtype=np.int64), np.asarray(counts, dtype=np.int64), pos


def decode_symbols(data: bytes, count: int, alphabet_size: int) -> np.ndarray:
    """Decode ``count`` symbols coded by :func:`encode_symbols` with the same ``alphabet_size``.

    Returns a flat array of dtype uint8 / uint16 / uint32 (the smallest holding the alphabet).
    Raises :class:`~nervkit.errors.BitstreamError` (only) when ``data`` is malformed.
    """
    _check_alphabet(alphabet_size)
    if count < 0:
        raise ValueError("count must be >= 0")
    data = bytes(data)
    dtype = _symbol_dtype(alphabet_size)
    if count == 0:
        if data:
            raise BitstreamError("payload of an empty symbol array is not empty")
        return np.zeros(0, dtype=dtype)
    if not data:
        raise BitstreamError("empty entropy-coded payload")
    used, counts, pos = _read_histogram(data, count, alphabet_size)
    rest = len(data) - pos
    if len(used) == 1:
        if rest:
            raise BitstreamError(f"{rest} unexpected bytes after a single-symbol histogram")
        return np.full(count, used[0], dtype=dtype)
    if rest == 0 or rest % 4:
        raise BitstreamError(f"coded data of {rest} bytes is not a whole number of 32-bit words")
    words = np.frombuffer(data, dtype="<u4", offset=pos).astype(np.uint32)
    try:
        import constriction

        coder = constriction.stream.stack.AnsCoder(words)
        index = coder.decode(_model(counts), int(count))
        finished = coder.is_empty()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # corrupt words: ValueError/AssertionError, or a Rust panic (BaseException)
        raise BitstreamError(f"corrupt entropy-coded data ({type(exc).__name__})") from None
    if not finished:
        raise BitstreamError("corrupt entropy-coded data (coder not exhausted)")
    index = np.asarray(index)
    if index.shape != (count,) or (index.size and (index.min() < 0 or index.max() >= len(used))):
        raise BitstreamError("corrupt entropy-coded data (symbol out of range)")
    return used.astype(dtype)[index]


def empirical_entropy_bits(symbols: np.ndarray) -> float:
    """``n * H`` in bits: the ideal cost of coding ``symbols`` i.i.d. with their own histogram."""
    flat = np.asarray(symbols).reshape(-1)
    if flat.size == 0:
        return 0.0
    _, counts = np.unique(flat, return_counts=True)
    p = counts / flat.size
    return float(-(counts * np.log2(p)).sum())


def huffman_code_lengths(counts) -> list[int]:
    """Code lengths of an optimal prefix code (Huffman 1952) for symbol frequencies ``counts``.

    A heap of ``(weight, node)`` pairs; the two lightest subtrees are merged into a new internal
    node until one tree is left, and each leaf's code length is its depth in that tree (found by
    walking the parent links; internal nodes are created after their children, so one reverse pass
    computes all depths). One symbol gets length 1 (a real code needs a bit).
    """
    counts = [int(c) for c in counts]
    n = len(counts)
    if n == 0:
        return []
    if n == 1:
        return [1]
    parent = [-1] * (2 * n - 1)
    heap = [(c, i) for i, c in enumerate(counts)]
    heapq.heapify(heap)
    node = n
    while len(heap) > 1:
        w1, a = heapq.heappop(heap)
        w2, b = heapq.heappop(heap)
        parent[a] = parent[b] = node
        heapq.heappush(heap, (w1 + w2, node))
        node += 1
    depth = [0] * (2 * n - 1)
    for i in range(2 * n - 3, -1, -1):  # the root (2n-2) has depth 0; parents have larger ids
        depth[i] = depth[parent[i]] + 1
    return depth[:n]


def huffman_code_bits(symbols: np.ndarray) -> int:
    """Total bits of ``symbols`` under the Huffman code built from their own histogram (the code
    table itself not counted). Canonical codes have the same lengths, so this is also their cost."""
    flat = np.asarray(symbols).reshape(-1)
    if flat.size == 0:
        return 0
    _, counts = np.unique(flat, return_counts=True)
    lengths = huffman_code_lengths(counts)
    return int(sum(int(c) * n for c, n in zip(counts, lengths)))



def histogram_header_bytes(symbols: np.ndarray) -> int:
    """Bytes of the histogram header that :func:`encode_symbols` stores in front of its ANS words
    (so that ``len(encode_symbols(s)) - histogram_header_bytes(s)`` is the ANS payload alone)."""
    flat = np.asarray(symbols).reshape(-1)
    if flat.size == 0:
        return 0
    used, counts = np.unique(flat.astype(np.int64), return_counts=True)
    return len(_histogram_header(used, counts))


def huffman_table_bits(symbols: np.ndarray) -> int:
    """Bits of a canonical Huffman code table for ``symbols``: the used range (two 16-bit values) and
    one 5-bit code length per symbol of that range (0 = unused). Huffman's side information, to set
    beside the histogram that nervkit's ANS coder stores."""
    flat = np.asarray(symbols).reshape(-1)
    if flat.size == 0:
        return 0
    return 32 + 5 * (int(flat.max()) - int(flat.min()) + 1)
