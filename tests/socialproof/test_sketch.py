"""Visitor sketches: exact while small, HyperLogLog past the limit, merges that agree with the union, and every
stored form read back as it was written."""

from __future__ import annotations

import numpy as np

from northstar.socialproof.sketch import EXACT_LIMIT, Sketch, registers_of

RANDOM = np.random.default_rng(20261206)


def _hashes(count: int) -> np.ndarray:
    return RANDOM.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, size=count, dtype=np.int64)


def test_small_sets_count_exactly_even_when_registers_collide() -> None:
    first, second = _hashes(2)
    same_register = (second & ~np.int64(-1 << 52)) | (first & np.int64(-1 << 52))  # the top 12 bits pick it
    visitors = Sketch.of([first, same_register, first])
    assert visitors.exact and visitors.estimate() == 2
    assert np.count_nonzero(registers_of(np.array([first, same_register]))) == 1  # registers alone would say 1


def test_merging_exact_sketches_is_the_union() -> None:
    hashes = _hashes(300)
    left, right = Sketch.of(hashes[:200]), Sketch.of(hashes[100:])
    assert left.merge(right).estimate() == 300 and left.exact
    assert right.estimate() == 200  # the merged-in sketch is left as it was


def test_past_the_limit_a_sketch_becomes_registers_within_the_error() -> None:
    hashes = _hashes(EXACT_LIMIT + 1)
    assert not Sketch.of(hashes).exact
    assert Sketch.of(hashes[:EXACT_LIMIT]).exact
    grown = Sketch.of(hashes[:EXACT_LIMIT]).merge(Sketch.of(hashes[EXACT_LIMIT:]))
    assert not grown.exact and abs(grown.estimate() - (EXACT_LIMIT + 1)) <= 20
    many = _hashes(200_000)
    assert abs(Sketch.of(many).estimate() - 200_000) < 200_000 * 0.05  # three standard errors


def test_exact_and_register_sketches_merge_into_registers() -> None:
    hashes = _hashes(5_000)
    big, small = Sketch.of(hashes[:4_990]), Sketch.of(hashes[4_980:])
    assert small.exact and not big.exact
    merged = Sketch().merge(small).merge(big)
    assert not merged.exact
    assert (merged.registers() == registers_of(hashes)).all()
    assert (Sketch.of(hashes[:4_990]).merge(small).registers() == registers_of(hashes)).all()


def test_every_stored_form_reads_back_as_written() -> None:
    for count in (0, 1, 40, EXACT_LIMIT, 900, 50_000):  # exact, exact, exact, exact, sparse, dense
        written = Sketch.of(_hashes(count))
        read = Sketch.decode(written.encode())
        assert read.exact == written.exact and read.estimate() == written.estimate()
        assert (read.registers() == written.registers()).all()
    assert Sketch.of(_hashes(900)).encode()[0] == 2 and Sketch.of(_hashes(50_000)).encode()[0] == 1
