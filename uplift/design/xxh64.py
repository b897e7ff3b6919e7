"""XXH64 of many short messages at once, in numpy, over Arrow strings.

Hashing ten million ids one Python call at a time costs about 0.4 µs an id in the
interpreter alone. Here the messages ``prefix + id`` are grouped by length; within one
length every message takes the same path through the algorithm, so each step is one
numpy operation over the whole group. The 8-byte lanes that lie wholly inside the
prefix are the same for every message and are computed once. The result equals
``xxhash.xxh64_intdigest`` of each message (tested against it and against a pure-Python
transcription of the specification).

numpy's unsigned 64-bit array arithmetic wraps modulo 2**64, which is what XXH64's
arithmetic is. Constants are kept as one-element arrays, never numpy scalars, because
numpy warns on scalar overflow but not on array overflow.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

__all__ = ["xxh64"]

_P1 = np.uint64(0x9E3779B185EBCA87)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)
_P3 = np.uint64(0x165667B19E3779F9)
_P4 = np.uint64(0x85EBCA77C2B2AE63)
_P5 = np.uint64(0x27D4EB2F165667C5)
_MASK = (1 << 64) - 1
#: Ids hashed per pass; bounds the temporary matrices (a few MB each).
_CHUNK = 1 << 18


def _const(value: int) -> np.ndarray:
    return np.array([value & _MASK], dtype=np.uint64)


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


def _round(acc: np.ndarray, lane: np.ndarray) -> np.ndarray:
    return _rotl(acc + lane * _P2, 31) * _P1


def _mix(lane: np.ndarray) -> np.ndarray:
    """``round(0, lane)``."""
    return _rotl(lane * _P2, 31) * _P1


def _digest(message: np.ndarray, length: int, constant: int, seed: int) -> np.ndarray:
    """XXH64 of each row of a C-contiguous ``(n, 8k)`` uint8 matrix of ``length``-byte messages.

    The first ``constant`` bytes are the same in every row.
    """
    head = message[:1]
    lanes = np.ascontiguousarray(message.view("<u8").T)

    def lane(i: int) -> np.ndarray:
        # a lane wholly inside the shared prefix is one value for every row
        return head.view("<u8")[:, i] if (i + 1) * 8 <= constant else lanes[i]

    pos = 0
    if length >= 32:
        v = [
            _const(seed + int(_P1) + int(_P2)),
            _const(seed + int(_P2)),
            _const(seed),
            _const(seed - int(_P1)),
        ]
        while pos + 32 <= length:
            v = [_round(v[k], lane(pos // 8 + k)) for k in range(4)]
            pos += 32
        h = _rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)
        for acc in v:
            h = (h ^ _mix(acc)) * _P1 + _P4
    else:
        h = _const(seed + int(_P5))
    h = h + np.uint64(length)
    while pos + 8 <= length:
        h = _rotl(h ^ _mix(lane(pos // 8)), 27) * _P1 + _P4
        pos += 8
    if pos + 4 <= length:
        word = message[:, pos : pos + 4].copy().view("<u4")[:, 0].astype(np.uint64)
        h = _rotl(h ^ (word * _P1), 23) * _P2 + _P3
        pos += 4
    while pos < length:
        h = _rotl(h ^ (message[:, pos].astype(np.uint64) * _P5), 11) * _P1
        pos += 1
    h = (h ^ (h >> np.uint64(33))) * _P2
    h = (h ^ (h >> np.uint64(29))) * _P3
    h = h ^ (h >> np.uint64(32))
    return np.broadcast_to(h, (message.shape[0],))


def _large_strings(ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks() if ids.num_chunks != 1 else ids.chunk(0)
    if not (pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type)):
        raise TypeError(f"xxh64 hashes Arrow strings, not {ids.type}")
    if ids.null_count:
        raise ValueError("xxh64 cannot hash missing ids")
    return ids.cast(pa.large_string())


def xxh64(
    ids: pa.Array | pa.ChunkedArray, prefixes: Sequence[bytes] = (b"",), seed: int = 0
) -> np.ndarray:
    """XXH64 of ``prefix + id`` (the id's UTF-8 bytes) for every id and every prefix.

    Parameters
    ----------
    ids : pyarrow string array
        The ids; none may be missing.
    prefixes : sequence of bytes
        Bytes put before every id, such as a salt and its separator; the ids' bytes are
        gathered once for all of them.
    seed : int
        The XXH64 seed.

    Returns
    -------
    np.ndarray
        uint64 digests of shape ``(len(prefixes), len(ids))``, in the ids' order.
    """
    strings = _large_strings(ids)
    out = np.empty((len(prefixes), len(strings)), dtype=np.uint64)
    heads = [np.frombuffer(prefix, dtype=np.uint8) for prefix in prefixes]
    for start in range(0, len(strings), _CHUNK):
        chunk = strings.slice(start, _CHUNK)
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64)[
            chunk.offset : chunk.offset + len(chunk) + 1
        ]
        lengths = np.diff(offsets)
        widest = int(lengths.max()) if len(lengths) else 0
        data = chunk.buffers()[2]
        raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.empty(0, np.uint8)
        # a copy with `widest` spare bytes, so every id has a full window of that width
        window = np.zeros(int(offsets[-1] - offsets[0]) + widest + 1, dtype=np.uint8)
        window[: len(window) - widest - 1] = raw[offsets[0] : offsets[-1]]
        windows = np.lib.stride_tricks.as_strided(
            window, shape=(len(window) - widest, max(widest, 1)), strides=(1, 1)
        )
        starts = offsets[:-1] - offsets[0]
        order = np.argsort(lengths, kind="stable")
        bounds = np.searchsorted(lengths[order], np.arange(widest + 2))
        for size in range(widest + 1):
            rows = order[bounds[size] : bounds[size + 1]]
            if not len(rows):
                continue
            body = windows[starts[rows], :size]
            for k, head in enumerate(heads):
                total = len(head) + size
                message = np.zeros((len(rows), max(-(-total // 8) * 8, 8)), dtype=np.uint8)
                message[:, : len(head)] = head
                message[:, len(head) : total] = body
                out[k, start + rows] = _digest(message, total, len(head), seed)
    return out
