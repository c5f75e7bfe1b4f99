"""HyperLogLog sketches of visitor ids: unique counts that merge across buckets without keeping the ids.

Unique visitors over 30 days cannot be summed from daily uniques, and counting distinct ids over millions of raw
events misses the 100 ms budget. A sketch of 4,096 one-byte registers (precision 12, standard error 1.6 %)
answers for any union of buckets by taking register-wise maxima. Small cardinalities use linear counting, which
is exact in practice for the few-visitor buckets most minutes have. Hashes are PostgreSQL's
``hashtextextended(visitor_id, 0)`` (64 bits), computed where events are ingested.

Stored form: ``b"\\x01"`` + 4,096 register bytes (dense), or ``b"\\x02"`` + (index uint16, rank uint8) pairs for
sketches with few non-zero registers (a typical minute needs a few dozen bytes instead of 4 KB).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

PRECISION = 12
REGISTERS = 1 << PRECISION
_ALPHA = 0.7213 / (1 + 1.079 / REGISTERS)
_DENSE, _SPARSE = 1, 2
_PAIR = np.dtype([("index", "<u2"), ("rank", "u1")])
Registers = npt.NDArray[np.uint8]


def empty() -> Registers:
    return np.zeros(REGISTERS, dtype=np.uint8)


def registers_of(hashes: Iterable[int] | npt.NDArray[np.int64]) -> Registers:
    """The sketch of these 64-bit hashes (signed, as PostgreSQL returns them)."""
    values = np.asarray(hashes if isinstance(hashes, np.ndarray) else list(hashes), dtype=np.int64).view(np.uint64)
    registers = empty()
    if values.size == 0:
        return registers
    index = (values >> np.uint64(64 - PRECISION)).astype(np.intp)
    rest = (values << np.uint64(PRECISION)) | np.uint64(1 << (PRECISION - 1))  # a guard bit bounds the rank
    bit_length = np.frexp(rest.astype(np.float64))[1]
    rank = np.clip(64 - bit_length + 1, 1, 64 - PRECISION + 1).astype(np.uint8)
    np.maximum.at(registers, index, rank)
    return registers


def merge(into: Registers, other: Registers) -> Registers:
    np.maximum(into, other, out=into)
    return into


def estimate(registers: Registers) -> int:
    zeros = int(np.count_nonzero(registers == 0))
    if zeros == REGISTERS:
        return 0
    raw = _ALPHA * REGISTERS * REGISTERS / float(np.sum(np.ldexp(1.0, -registers.astype(np.int32))))
    if raw <= 2.5 * REGISTERS and zeros:
        return round(REGISTERS * math.log(REGISTERS / zeros))
    return round(raw)


def encode(registers: Registers) -> bytes:
    nonzero = np.flatnonzero(registers)
    if nonzero.size * _PAIR.itemsize < REGISTERS:
        pairs = np.empty(nonzero.size, dtype=_PAIR)
        pairs["index"], pairs["rank"] = nonzero, registers[nonzero]
        return bytes([_SPARSE]) + pairs.tobytes()
    return bytes([_DENSE]) + registers.tobytes()


def decode(data: bytes) -> Registers:
    if data[:1] == bytes([_DENSE]):
        return np.frombuffer(data, dtype=np.uint8, offset=1).copy()
    registers = empty()
    pairs = np.frombuffer(data, dtype=_PAIR, offset=1)
    registers[pairs["index"]] = pairs["rank"]
    return registers
