"""Sampling primitives: distributions, bounded zipf ranks, and a keyed permutation for unique values."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from northstar.datasets.generation.columns import LogNormal, Normal, Uniform

ZIPF_HEAD = 1 << 16  # ranks drawn from an exact table; the tail from the integral of the power law
FEISTEL_ROUNDS = 4
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


class Permutation:
    """A keyed bijection of [0, size): row n gets the n-th value of a random-looking ordering.

    An (unbalanced) Feistel network on the smallest power of two holding ``size``, with cycle walking
    for the excess, needs no table: unique values for row ranges of any size and at any offset in O(1)
    memory, which is what makes unique columns resumable from any row. Rounds use Fibonacci hashing
    (the high bits of a multiplication): cheap, and mixing well enough for test data.
    """

    def __init__(self, size: int, keys: Sequence[int]) -> None:
        if size < 1:
            raise ValueError("a permutation needs a non-empty domain")
        self.bits = max(2, (size - 1).bit_length())
        self.size = size
        self.keys = [np.uint64(key) for key in keys[:FEISTEL_ROUNDS]]

    def _rounds(self, values: NDArray[np.uint64]) -> NDArray[np.uint64]:
        left_bits = self.bits // 2
        right_bits = self.bits - left_bits
        left, right = values >> np.uint64(right_bits), values & np.uint64((1 << right_bits) - 1)
        for key in self.keys:
            mixed = right + key
            mixed *= _GOLDEN
            mixed >>= np.uint64(64 - left_bits)
            mixed ^= left
            left, right = right, mixed
            left_bits, right_bits = right_bits, left_bits
        left <<= np.uint64(right_bits)
        left |= right
        return left

    def __call__(self, positions: NDArray[np.uint64]) -> NDArray[np.uint64]:
        values = self._rounds(positions)
        if self.size == 1 << self.bits:
            return values
        outside = np.flatnonzero(values >= np.uint64(self.size))
        while len(outside):  # cycle walking: re-apply until inside; the cycle through a valid start has one
            values[outside] = self._rounds(values[outside])
            outside = outside[values[outside] >= np.uint64(self.size)]
        return values


@lru_cache(maxsize=64)
def _zipf_head(a: float, size: int) -> NDArray[np.float64]:
    """Cumulative weights 1/k^a of the first ``size`` ranks."""
    table: NDArray[np.float64] = np.cumsum(np.arange(1, size + 1, dtype=np.float64) ** -a)
    return table


def zipf_ranks(rng: np.random.Generator, count: int, a: float, size: int) -> NDArray[np.int64]:
    """0-based ranks in [0, size) with P(rank k) proportional to 1/(k+1)^a, for any size."""
    head = _zipf_head(a, min(size, ZIPF_HEAD))
    start = len(head) + 0.5  # the tail's mass is the integral of x^-a over [start, size + 0.5]
    if abs(a - 1.0) < 1e-9:
        tail = float(np.log((size + 0.5) / start))
    else:
        tail = ((size + 0.5) ** (1 - a) - start ** (1 - a)) / (1 - a)
    mass = rng.random(count) * (head[-1] + tail)
    ranks = np.searchsorted(head, mass, side="right")
    in_tail = np.flatnonzero(mass >= head[-1])
    if len(in_tail):
        excess = mass[in_tail] - head[-1]
        if abs(a - 1.0) < 1e-9:
            ends = start * np.exp(excess)
        else:
            ends = (start ** (1 - a) + (1 - a) * excess) ** (1 / (1 - a))
        ranks[in_tail] = np.floor(ends + 0.5) - 1
    clipped: NDArray[np.int64] = np.clip(ranks, 0, size - 1).astype(np.int64)
    return clipped


def cumulative_weights(weights: Sequence[float]) -> NDArray[np.float64]:
    """Normalised running totals of ``weights`` for ``weighted_choice``."""
    cumulative = np.cumsum(np.asarray(weights, dtype=np.float64))
    cumulative /= cumulative[-1]
    cumulative[-1] = 2.0  # rounding must not let a draw just below 1.0 fall past the last option
    return cumulative


def weighted_choice(rng: np.random.Generator, count: int, cumulative: NDArray[np.float64]) -> NDArray[np.int64]:
    """Indices drawn with the probabilities ``cumulative`` (from ``cumulative_weights``) encodes."""
    picks: NDArray[np.int64] = np.searchsorted(cumulative, rng.random(count), side="right")
    return picks


def sample_real(
    rng: np.random.Generator, count: int, distribution: Uniform | Normal | LogNormal, low: float, high: float
) -> NDArray[np.float64]:
    """Floats from ``distribution``: uniform in [low, high), others clipped to [low, high]."""
    if isinstance(distribution, Uniform):
        return rng.uniform(low, high, count)
    if isinstance(distribution, Normal):
        values = rng.normal(distribution.mean, distribution.stddev, count)
    else:
        values = rng.lognormal(distribution.mean, distribution.sigma, count)
    return np.clip(values, low, high, out=values)


def uniform_int(rng: np.random.Generator, count: int, low: int, high: int) -> NDArray[np.int64]:
    """Integers in [low, high], including ranges as wide as the whole int64 domain."""
    span = high - low
    if span < 2**63:
        return rng.integers(low, high, count, dtype=np.int64, endpoint=True)
    offsets = rng.integers(0, span, count, dtype=np.uint64, endpoint=True)
    return offset_by(offsets, low)


def offset_by(offsets: NDArray[np.uint64], low: int) -> NDArray[np.int64]:
    """``low + offsets`` in two's complement, exact for any int64 result."""
    shifted: NDArray[np.int64] = (offsets + np.uint64(low % 2**64)).view(np.int64)
    return shifted
