"""Generation: every column drawn a chunk at a time with numpy and assembled into Arrow record batches.

Rows are cut into fixed chunks of ``CHUNK_ROWS``. A column's random stream in a chunk comes from
``SeedSequence(seed, spawn_key=(column key, stream, chunk index))``, the column key being a hash of
its name. The output therefore depends on the spec alone: not on the batch size, not on where a
range starts, not on the other columns, so a worker resuming at any row reproduces the rows it lost
byte for byte, and adding a column leaves the others unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any, TypeAlias, assert_never

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray
from pyarrow.lib import concat_batches

from northstar.datasets.generation import vocab
from northstar.datasets.generation.arrays import AnyArray, buffer, primitive, strings, with_nulls
from northstar.datasets.generation.columns import (
    BoolColumn,
    Column,
    DateColumn,
    DatetimeColumn,
    DecimalColumn,
    EmailColumn,
    EnumColumn,
    FloatColumn,
    IntColumn,
    PatternColumn,
    RealisticColumn,
    ReferenceColumn,
    Sequential,
    TemporalNormal,
    TextColumn,
    Uniform,
    UuidColumn,
    Zipf,
    epoch_microseconds,
)
from northstar.datasets.generation.numeric import (
    Permutation,
    cumulative_weights,
    offset_by,
    sample_real,
    uniform_int,
    weighted_choice,
    zipf_ranks,
)
from northstar.datasets.generation.patterns import compile_pattern
from northstar.datasets.generation.spec import GenerationSpec

CHUNK_ROWS = 100_000
DEFAULT_BATCH_ROWS = 100_000
VALUES, NULLS, FIRST_NAMES, LAST_NAMES, PERMUTATION = range(5)  # independent random streams of a column
EMAIL_SUFFIXES = vocab.vocabulary(
    ["", *(f"{n:02d}" for n in range(100)), *(str(y) for y in range(1960, 2010))], [250.0] + [1.0] * 150
)
EMAIL_SEPARATORS = vocab.vocabulary([".", "_", ""], [6.0, 2.0, 2.0])
URL_PREFIXES = vocab.vocabulary(["https://www.", "https://", "http://www."], [6.0, 3.0, 1.0])
URL_PATHS = vocab.vocabulary(
    ["", "about/", "blog/", "products/", "contact/", "pricing/", "docs/", "careers/"], [4.0] + [1.0] * 7
)

References: TypeAlias = "Mapping[str, pa.Array[Any] | pa.ChunkedArray[Any]]"


def column_key(name: str) -> int:
    """A stable 64-bit number for a column name (Python's ``hash`` changes between processes)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


@dataclass(frozen=True)
class Chunk:
    seed: int
    index: int
    start: int
    size: int

    def rng(self, column: Column, stream: int = VALUES) -> np.random.Generator:
        sequence = np.random.SeedSequence(self.seed, spawn_key=(column_key(column.name), stream, self.index))
        return np.random.Generator(np.random.Philox(sequence))

    @cached_property
    def rows(self) -> NDArray[np.int64]:
        """0-based row numbers of the chunk."""
        return np.arange(self.start, self.start + self.size, dtype=np.int64)


def permutation(seed: int, column: Column, size: int) -> Permutation:
    """The column's row -> value ordering; the same for every chunk, so unique values hold across chunks."""
    keys = np.random.SeedSequence(seed, spawn_key=(column_key(column.name), PERMUTATION)).generate_state(4, np.uint64)
    return Permutation(size, [int(key) for key in keys])


# --- schema ---------------------------------------------------------------------------------------


def _arrow_type(column: Column, references: References) -> pa.DataType:
    match column:
        case IntColumn():
            return pa.int64()
        case FloatColumn():
            return pa.float64()
        case DecimalColumn():
            return pa.decimal128(column.precision, column.scale)
        case BoolColumn():
            return pa.bool_()
        case UuidColumn():
            return pa.uuid()
        case DateColumn():
            return pa.date32()
        case DatetimeColumn():
            return pa.timestamp("us", tz="UTC")
        case EnumColumn():
            return pa.dictionary(pa.int32(), pa.string())
        case ReferenceColumn():
            kind: pa.DataType = _referenced(column, references).type
            return kind
        case _:
            return pa.string()


def _referenced(column: ReferenceColumn, references: References) -> pa.Array[Any] | pa.ChunkedArray[Any]:
    try:
        return references[column.name]
    except KeyError:
        raise ValueError(
            f"column {column.name!r} references dataset {column.dataset}: pass its "
            f"{column.column!r} values as references[{column.name!r}]"
        ) from None


def arrow_schema(spec: GenerationSpec, *, references: References | None = None) -> pa.Schema:
    """The Arrow schema of the generated batches (reference columns take the type of their candidates)."""
    return pa.schema(
        [
            pa.field(column.name, _arrow_type(column, references or {}), nullable=column.null_ratio > 0)
            for column in spec.effective_columns
        ]
    )


def dictionary_columns(spec: GenerationSpec) -> list[str]:
    """Columns with few distinct values: Parquet dictionary-encodes them well, and only them pays off."""
    few = ("first_name", "last_name", "city", "country", "company", "product_name")
    return [
        column.name
        for column in spec.effective_columns
        if isinstance(column, EnumColumn | BoolColumn) or (isinstance(column, RealisticColumn) and column.type in few)
    ]


# --- generation -----------------------------------------------------------------------------------


def generate(
    spec: GenerationSpec, *, references: References | None = None, batch_rows: int = DEFAULT_BATCH_ROWS
) -> Iterator[pa.RecordBatch]:
    """All rows of ``spec`` as record batches of ``batch_rows`` (the last may be shorter)."""
    return generate_range(spec, 0, spec.rows, references=references, batch_rows=batch_rows)


def generate_range(
    spec: GenerationSpec,
    start_row: int,
    stop_row: int,
    *,
    references: References | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> Iterator[pa.RecordBatch]:
    """Rows [start_row, stop_row) of ``spec``: exactly those rows of the full output, wherever the range starts."""
    if spec.seed is None:
        raise ValueError("the spec has no seed; use with_seed() and record the seed it picks")
    if not 0 <= start_row <= stop_row <= spec.rows:
        raise ValueError(f"row range [{start_row}, {stop_row}) is outside [0, {spec.rows})")
    if batch_rows < 1:
        raise ValueError("batch_rows must be positive")
    candidates = _candidates(spec, references or {})
    schema = arrow_schema(spec, references=candidates)
    if start_row == stop_row:
        return iter(())
    return _batches(spec, spec.seed, candidates, schema, start_row, stop_row, batch_rows)


def _batches(
    spec: GenerationSpec,
    seed: int,
    candidates: dict[str, AnyArray],
    schema: pa.Schema,
    start_row: int,
    stop_row: int,
    batch_rows: int,
) -> Iterator[pa.RecordBatch]:
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for index in range(start_row // CHUNK_ROWS, -(-stop_row // CHUNK_ROWS)):
        start = index * CHUNK_ROWS
        chunk = Chunk(seed, index, start, min(CHUNK_ROWS, spec.rows - start))
        arrays = [_column(column, chunk, spec, candidates) for column in spec.effective_columns]
        first, last = max(start_row, start), min(stop_row, start + chunk.size)
        batch = pa.RecordBatch.from_arrays(arrays, schema=schema).slice(first - start, last - first)
        pending.append(batch)
        pending_rows += batch.num_rows
        while pending_rows >= batch_rows:
            combined = pending[0] if len(pending) == 1 else concat_batches(pending)
            yield combined.slice(0, batch_rows)
            rest = combined.slice(batch_rows)
            pending, pending_rows = ([rest] if rest.num_rows else []), rest.num_rows
    if pending_rows:
        yield pending[0] if len(pending) == 1 else concat_batches(pending)


def _candidates(spec: GenerationSpec, references: References) -> dict[str, AnyArray]:
    """Reference candidates as single arrays without nulls, checked to be usable."""
    prepared: dict[str, AnyArray] = {}
    for column in spec.effective_columns:
        if not isinstance(column, ReferenceColumn):
            continue
        values = _referenced(column, references)
        array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        array = array.drop_null()
        if len(array) == 0 or (column.unique and len(array) < spec.rows):
            raise ValueError(
                f"column {column.name!r} needs {'at least ' + str(spec.rows) if column.unique else 'some'}"
                f" non-null values to reference; got {len(array)}"
            )
        prepared[column.name] = array
    return prepared


def _column(column: Column, chunk: Chunk, spec: GenerationSpec, candidates: dict[str, AnyArray]) -> AnyArray:
    values = _values(column, chunk, spec, candidates)
    if column.null_ratio > 0:
        values = with_nulls(values, chunk.rng(column, NULLS).random(chunk.size) >= column.null_ratio)
    return values


def _values(column: Column, chunk: Chunk, spec: GenerationSpec, candidates: dict[str, AnyArray]) -> AnyArray:
    assert spec.seed is not None
    rng = chunk.rng(column)
    match column:
        case IntColumn():
            return primitive(pa.int64(), _ints(column, chunk, rng, spec.seed))
        case DecimalColumn():
            return _decimals(column, rng, chunk.size)
        case FloatColumn():
            floats = sample_real(rng, chunk.size, column.distribution, *column.bounds())
            return primitive(pa.float64(), floats if column.decimals is None else np.round(floats, column.decimals))
        case BoolColumn():
            return pa.array(rng.random(chunk.size) < column.true_ratio, pa.bool_())
        case UuidColumn():
            return _uuids(rng, chunk.size)
        case DateColumn():
            days = _temporal(rng, chunk.size, column.distribution, _days(column.min), _days(column.max), 1)
            return primitive(pa.date32(), days.astype(np.int32))
        case DatetimeColumn():
            low, high, step = column.ticks()
            ticks = _temporal(rng, chunk.size, column.distribution, low, high, 86_400_000_000 // step)
            return primitive(pa.timestamp("us", tz="UTC"), ticks * step)
        case EnumColumn():
            indices = _choose(rng, chunk.size, len(column.values), column.distribution, column.weights)
            return pa.DictionaryArray.from_arrays(
                primitive(pa.int32(), indices.astype(np.int32)), pa.array(column.values, pa.string())
            )
        case PatternColumn():
            pattern = compile_pattern(column.pattern)
            keys = None
            if column.unique and pattern.capacity is not None:
                keys = permutation(spec.seed, column, pattern.unique_domain())(chunk.rows.astype(np.uint64))
            return pattern.render(rng, chunk.rows, keys)
        case ReferenceColumn():
            pool = candidates[column.name]
            if column.unique:
                picks = permutation(spec.seed, column, len(pool))(chunk.rows.astype(np.uint64)).astype(np.int64)
            else:
                picks = _choose(rng, chunk.size, len(pool), column.distribution, None)
            return pool.take(picks)
        case EmailColumn():
            return _emails(column, chunk, spec)
        case TextColumn():
            return _sentences(column, rng, chunk.size, spec.locale)
        case RealisticColumn():
            return _realistic(column, chunk, rng, spec.locale)
        case _:
            assert_never(column)


# --- numbers, dates -------------------------------------------------------------------------------


def _ints(column: IntColumn, chunk: Chunk, rng: np.random.Generator, seed: int) -> NDArray[np.int64]:
    distribution = column.distribution
    if isinstance(distribution, Sequential):
        return distribution.start + distribution.step * chunk.rows
    low, high = column.bounds()
    if column.unique:
        return offset_by(permutation(seed, column, high - low + 1)(chunk.rows.astype(np.uint64)), low)
    if isinstance(distribution, Uniform):
        return uniform_int(rng, chunk.size, low, high)
    if isinstance(distribution, Zipf):
        return offset_by(zipf_ranks(rng, chunk.size, distribution.a, min(high - low + 1, 2**62)).astype(np.uint64), low)
    return _rounded(sample_real(rng, chunk.size, distribution, low, high), low, high)


def _rounded(values: NDArray[np.float64], low: int, high: int) -> NDArray[np.int64]:
    """Round floats into [low, high] as int64; the float clip keeps them below 2^63 for the cast."""
    limited = np.clip(np.rint(values), -(2.0**63), np.nextafter(2.0**63, 0.0))
    rounded: NDArray[np.int64] = limited.astype(np.int64).clip(low, high)
    return rounded


def _decimals(column: DecimalColumn, rng: np.random.Generator, count: int) -> AnyArray:
    """decimal128 values from int64 unscaled values: the low word, and the sign extended into the high word."""
    low, high = column.unscaled_bounds()
    if isinstance(column.distribution, Uniform):
        unscaled = uniform_int(rng, count, low, high)
    else:
        scale = 10.0**column.scale
        unscaled = _rounded(sample_real(rng, count, column.distribution, low / scale, high / scale) * scale, low, high)
    words = np.empty((count, 2), dtype=np.int64)
    words[:, 0] = unscaled
    words[:, 1] = unscaled >> 63
    return pa.Array.from_buffers(pa.decimal128(column.precision, column.scale), count, [None, buffer(words)])


def _uuids(rng: np.random.Generator, count: int) -> AnyArray:
    """Version-4 UUIDs: 122 random bits from the seed, the version and variant bits set."""
    raw = np.frombuffer(rng.bytes(16 * count), dtype=np.uint8).reshape(count, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    storage = pa.Array.from_buffers(pa.binary(16), count, [None, buffer(raw)])
    return pa.ExtensionArray.from_storage(pa.uuid(), storage)


def _days(value: date) -> int:
    return (value - date(1970, 1, 1)).days


def _temporal(
    rng: np.random.Generator,
    count: int,
    distribution: Uniform | TemporalNormal,
    low: int,
    high: int,
    ticks_per_day: int,
) -> NDArray[np.int64]:
    """Ticks (days, or multiples of microseconds) in [low, high]: uniform, or normal around a mean."""
    if isinstance(distribution, Uniform):
        return uniform_int(rng, count, low, high)
    mean = epoch_microseconds(distribution.mean) / (86_400_000_000 / ticks_per_day)
    return _rounded(rng.normal(mean, distribution.stddev_days * ticks_per_day, count), low, high)


def _choose(
    rng: np.random.Generator, count: int, size: int, distribution: Uniform | Zipf, weights: list[float] | None
) -> NDArray[np.int64]:
    """Indices into ``size`` options: weighted, zipf by position, or uniform."""
    if weights is not None:
        return weighted_choice(rng, count, cumulative_weights(weights))
    if isinstance(distribution, Zipf):
        return zipf_ranks(rng, count, distribution.a, size)
    return rng.integers(0, size, count, dtype=np.int64)


# --- text -----------------------------------------------------------------------------------------


def _join(*parts: AnyArray | str) -> AnyArray:
    """Concatenate strings row by row (plain strings repeat on every row)."""
    joined: AnyArray = pc.call_function("binary_join_element_wise", [*parts, ""])
    return joined


def _pick(words: vocab.Vocabulary, rng: np.random.Generator, count: int) -> AnyArray:
    return words.values.take(words.draw(rng, count))


def _name_parts(
    column: Column, chunk: Chunk, locale: vocab.Locale
) -> tuple[NDArray[np.int32] | None, NDArray[np.int32] | None]:
    """Indices into the first- and last-name vocabularies a name column draws for the chunk's rows.

    Each part has its own stream, so an email column can redraw exactly the names of its row.
    """
    kind = column.type if isinstance(column, RealisticColumn) else ""
    first = (
        vocab.first_names(locale).draw(chunk.rng(column, FIRST_NAMES), chunk.size)
        if kind in ("first_name", "person_name")
        else None
    )
    last = (
        vocab.last_names(locale).draw(chunk.rng(column, LAST_NAMES), chunk.size)
        if kind in ("last_name", "person_name")
        else None
    )
    return first, last


def _emails(column: EmailColumn, chunk: Chunk, spec: GenerationSpec) -> AnyArray:
    """``first.last42@example.com``: ASCII-folded names of the row (or its own), a separator, maybe digits."""
    by_name = {other.name: other for other in spec.effective_columns}
    first: NDArray[np.int32] | None = None
    last: NDArray[np.int32] | None = None
    for source in column.from_columns:
        source_first, source_last = _name_parts(by_name[source], chunk, spec.locale)
        first = source_first if source_first is not None else first
        last = source_last if source_last is not None else last
    firsts, lasts = vocab.first_names(spec.locale), vocab.last_names(spec.locale)
    assert firsts.folded is not None
    assert lasts.folded is not None
    if first is None:
        first = firsts.draw(chunk.rng(column, FIRST_NAMES), chunk.size)
    if last is None:
        last = lasts.draw(chunk.rng(column, LAST_NAMES), chunk.size)
    rng = chunk.rng(column)
    initial = rng.random(chunk.size) < 0.15
    local_first = pc.if_else(
        pa.array(initial), pc.utf8_slice_codeunits(firsts.folded.take(first), 0, 1), firsts.folded.take(first)
    )
    suffix = (
        pc.cast(primitive(pa.int64(), chunk.rows + 1), pa.string())
        if column.unique
        else _pick(EMAIL_SUFFIXES, rng, chunk.size)
    )
    domains = pa.array([f"@{domain}" for domain in column.domains], pa.string())
    return _join(
        local_first,
        _pick(EMAIL_SEPARATORS, rng, chunk.size),
        lasts.folded.take(last),
        suffix,
        domains.take(rng.integers(0, len(domains), chunk.size)),
    )


def _sentences(column: TextColumn, rng: np.random.Generator, count: int, locale: vocab.Locale) -> AnyArray:
    """Sentences as list<word> arrays joined by Arrow: capitalised first word, locale punctuation."""
    words = vocab.words(locale)
    lengths = rng.integers(column.min_words, column.max_words + 1, count, dtype=np.int32)
    offsets = np.zeros(count + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    picks = rng.integers(0, words.size, int(offsets[-1]), dtype=np.int32)
    picks[offsets[:-1]] += words.size  # the capitalised copy of the first word
    sentences = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), words.words.values.take(picks))
    return _join(pc.call_function("binary_join", [sentences, words.connector]), words.end)


def _realistic(column: RealisticColumn, chunk: Chunk, rng: np.random.Generator, locale: vocab.Locale) -> AnyArray:
    kind = column.type
    if kind in ("first_name", "last_name", "person_name"):
        first, last = _name_parts(column, chunk, locale)
        given = None if first is None else vocab.first_names(locale).values.take(first)
        family = None if last is None else vocab.last_names(locale).values.take(last)
        if given is not None and family is not None:
            return _join(family, " ", given) if vocab.family_name_first(locale) else _join(given, " ", family)
        single = given if given is not None else family
        assert single is not None
        return single
    if kind == "phone":
        return _phones(rng, chunk.size, locale)
    if kind == "address":
        streets = vocab.streets(locale)
        numbers = streets.numbers.take(np.exp(rng.random(chunk.size) * np.log(9999.0)).astype(np.int32) - 1)
        names = _pick(streets.names, rng, chunk.size)
        return (
            _join(numbers, streets.separator, names)
            if streets.number_first
            else _join(names, streets.separator, numbers)
        )
    if kind == "url":
        hosts = vocab.last_names(locale).folded
        assert hosts is not None
        return _join(
            _pick(URL_PREFIXES, rng, chunk.size),
            hosts.take(rng.integers(0, len(hosts), chunk.size)),
            ".",
            _pick(vocab.top_level_domains(locale), rng, chunk.size),
            "/",
            _pick(URL_PATHS, rng, chunk.size),
        )
    words = {"company": vocab.companies, "city": vocab.cities, "country": vocab.countries}
    return _pick(words[kind](locale) if kind in words else vocab.products(), rng, chunk.size)


def _phones(rng: np.random.Generator, count: int, locale: vocab.Locale) -> pa.StringArray:
    """Faker's phone formats, one per row, with their placeholders filled all at once (# 0-9, % 1-9, $ 2-9)."""
    formats = vocab.phone_formats(locale)
    chosen = rng.integers(0, len(formats.lengths), count)
    matrix = formats.templates[chosen]
    for placeholder, lowest in ((b"#", 0), (b"%", 1), (b"$", 2)):
        slots = matrix == placeholder[0]
        matrix[slots] = rng.integers(ord("0") + lowest, ord("9") + 1, int(np.count_nonzero(slots)), dtype=np.uint8)
    keep = np.arange(matrix.shape[1], dtype=np.int32)[None, :] < formats.lengths[chosen][:, None]
    return strings(matrix, keep)
