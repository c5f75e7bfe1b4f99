"""The generation engine: validation paths, every type and distribution, determinism, references, presets."""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, get_args

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from northstar.core.http import register_error_handlers
from northstar.datasets.generation import (
    CHUNK_ROWS,
    PRESETS,
    GenerationSpec,
    arrow_schema,
    dictionary_columns,
    generate,
    generate_range,
    list_presets,
    referenced_datasets,
    with_seed,
)
from northstar.datasets.generation.numeric import Permutation
from northstar.datasets.generation.patterns import compile_pattern
from northstar.datasets.generation.vocab import Locale, fold


def spec_of(*columns: dict[str, Any], rows: int = 20_000, seed: int | None = 42, **fields: Any) -> GenerationSpec:
    return GenerationSpec.model_validate({"rows": rows, "seed": seed, "columns": list(columns), **fields})


def table_of(spec: GenerationSpec, **kwargs: Any) -> pa.Table:
    return pa.Table.from_batches(list(generate(spec, **kwargs)), schema=arrow_schema(spec, **kwargs))


def column_of(column: dict[str, Any], rows: int = 20_000, **fields: Any) -> np.ndarray[Any, Any]:
    """The values of one generated column, nulls as None/NaN."""
    return np.asarray(table_of(spec_of(column, rows=rows, **fields)).column(0).to_numpy(zero_copy_only=False))


def error_locs(payload: dict[str, Any]) -> list[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as raised:
        GenerationSpec.model_validate(payload)
    return [error["loc"] for error in raised.value.errors()]


# --- validation -----------------------------------------------------------------------------------

INT = {"name": "n", "type": "int"}


@pytest.mark.parametrize(
    ("columns", "extra", "expected"),
    [
        (
            [INT, INT | {"name": "m"}, INT | {"name": "o"}, INT | {"name": "p", "min": "many"}],
            {},
            ("columns", 3, "min"),
        ),
        ([INT | {"min": 10, "max": 5}], {}, ("columns", 0, "max")),
        ([INT | {"max": -5}], {}, ("columns", 0, "max")),
        (
            [{"name": "t", "type": "datetime", "min": "2024-01-01T00:00:00.2", "max": "2024-01-01T00:00:00.7"}],
            {},
            ("columns", 0, "max"),
        ),
        (
            [INT | {"distribution": {"type": "normal", "mean": 1, "stddev": 0}}],
            {},
            ("columns", 0, "distribution", "stddev"),
        ),
        ([INT | {"distribution": {"type": "gauss"}}], {}, ("columns", 0, "distribution")),
        ([INT | {"min": 0, "max": 10, "unique": True}], {}, ("columns", 0, "unique")),
        ([INT | {"unique": True, "distribution": {"type": "zipf", "a": 1.2}}], {}, ("columns", 0, "unique")),
        ([INT | {"distribution": {"type": "sequence"}, "max": 5}], {}, ("columns", 0, "max")),
        (
            [INT | {"distribution": {"type": "sequence", "start": 2**63 - 10, "step": 1}}],
            {},
            ("columns", 0, "distribution", "step"),
        ),
        ([INT, {"name": "e", "type": "enum", "values": ["a", "b"], "weights": [1]}], {}, ("columns", 1, "weights")),
        (
            [{"name": "e", "type": "enum", "values": ["a", "b", "c"], "weights": [1, 2, -1]}],
            {},
            ("columns", 0, "weights", 2),
        ),
        ([{"name": "e", "type": "enum", "values": ["a", "a"]}], {}, ("columns", 0, "values", 1)),
        ([{"name": "e", "type": "enum", "values": ["a\x00"]}], {}, ("columns", 0, "values")),
        ([INT, INT, {"name": "p", "type": "pattern", "pattern": "AB(C)"}], {}, ("columns", 2, "pattern")),
        ([{"name": "p", "type": "pattern", "pattern": r"[A-C]\d", "unique": True}], {}, ("columns", 0, "unique")),
        ([{"name": "p", "type": "pattern", "pattern": r"X\d{1,4}", "unique": True}], {}, ("columns", 0, "unique")),
        ([{"name": "d", "type": "decimal", "precision": 4, "scale": 6}], {}, ("columns", 0, "scale")),
        ([{"name": "d", "type": "decimal", "precision": 4, "scale": 2, "max": "100.00"}], {}, ("columns", 0, "max")),
        ([{"name": "d", "type": "decimal", "scale": 2, "min": "0.125"}], {}, ("columns", 0, "min")),
        ([{"name": "t", "type": "date", "min": "2024-05-01", "max": "2024-01-01"}], {}, ("columns", 0, "max")),
        ([{"name": "t", "type": "text", "minWords": 5, "maxWords": 2}], {}, ("columns", 0, "maxWords")),
        ([{"name": "f", "type": "float", "nullRatio": 1.5}], {}, ("columns", 0, "nullRatio")),
        ([{"name": "Bad-Name", "type": "uuid"}], {}, ("columns", 0, "name")),
        ([{"name": "u", "type": "uuid"}, {"name": "u", "type": "bool"}], {}, ("columns", 1, "name")),
        ([{"name": "u", "type": "uuid", "unique": True}], {}, ("columns", 0, "unique")),
        ([{"name": "u", "type": "hologram"}], {}, ("columns", 0)),
        (
            [{"name": "m", "type": "email", "fromColumns": ["u"]}, {"name": "u", "type": "uuid"}],
            {},
            ("columns", 0, "fromColumns", 0),
        ),
        ([{"name": "m", "type": "email", "domains": ["not a host"]}], {}, ("columns", 0, "domains", 0)),
        ([{"name": "r", "type": "reference", "dataset": "not-a-uuid"}], {}, ("columns", 0, "dataset")),
        ([INT], {"locale": "xx_XX"}, ("locale",)),
        ([INT], {"rows": 100_000_001}, ("rows",)),
        ([INT], {"seed": -1}, ("seed",)),
        ([], {}, ("columns",)),
        ([INT], {"links": {"users": str(uuid.uuid4())}}, ("links",)),
        ([], {"preset": "orders", "links": {"customers": str(uuid.uuid4())}}, ("links", "customers")),
        ([], {"preset": "users", "exclude": ["id", "shoe_size"]}, ("exclude", 1)),
        ([INT | {"name": "user_id"}], {"preset": "events", "links": {"users": str(uuid.uuid4())}}, ("links", "users")),
        ([INT | {"min": 1, "max": 3, "unique": True}], {"preset": "users"}, ("columns", 0, "unique")),
    ],
)
def test_errors_point_at_the_exact_field(
    columns: list[dict[str, Any]], extra: dict[str, Any], expected: tuple[str | int, ...]
) -> None:
    assert error_locs({"rows": 1000, "columns": columns, **extra}) == [expected]


def test_all_errors_are_reported_at_once() -> None:
    locs = error_locs(
        {
            "rows": 1000,
            "columns": [INT | {"min": 9, "max": 1}, {"name": "p", "type": "pattern", "pattern": "[", "nullRatio": 2}],
        }
    )
    assert set(locs) == {("columns", 0, "max"), ("columns", 1, "pattern"), ("columns", 1, "nullRatio")}


async def test_a_bad_spec_is_a_422_with_the_field_path() -> None:
    app = FastAPI()
    register_error_handlers(app)

    @app.post("/generate")
    def accept(spec: GenerationSpec) -> dict[str, int]:
        return {"rows": spec.rows}

    bad = {
        "rows": 10,
        "columns": [INT, INT | {"name": "m"}, INT | {"name": "o"}, INT | {"name": "p", "min": 5, "max": 1}],
    }
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.post("/generate", json=bad)
        assert response.status_code == 422
        assert [detail["field"] for detail in response.json()["error"]["details"]] == ["body.columns.3.max"]
        assert (await client.post("/generate", json={"rows": 10, "columns": [INT]})).json() == {"rows": 10}


# --- types and distributions ----------------------------------------------------------------------


def test_int_uniform_covers_the_range_evenly() -> None:
    values = column_of(INT | {"min": -5, "max": 5})
    assert values.min() == -5 and values.max() == 5
    counts = np.bincount(values + 5)
    assert counts.min() > 0.8 * len(values) / 11


def test_int_normal_is_centred_and_clipped() -> None:
    values = column_of(INT | {"min": 0, "max": 100, "distribution": {"type": "normal", "mean": 40, "stddev": 10}})
    assert abs(values.mean() - 40) < 0.5
    assert abs(values.std() - 10) < 0.5
    clipped = column_of(INT | {"min": 35, "max": 45, "distribution": {"type": "normal", "mean": 40, "stddev": 10}})
    assert clipped.min() == 35 and clipped.max() == 45


def test_float_distributions() -> None:
    normal = column_of({"name": "f", "type": "float", "distribution": {"type": "normal", "mean": 5, "stddev": 2}})
    assert abs(normal.mean() - 5) < 0.1 and abs(normal.std() - 2) < 0.1
    lognormal = column_of(
        {"name": "f", "type": "float", "distribution": {"type": "lognormal", "mean": 1, "sigma": 0.5}}
    )
    assert abs(np.median(lognormal) - np.e) < 0.1 and lognormal.min() > 0
    uniform = column_of({"name": "f", "type": "float", "min": 10, "max": 20, "decimals": 1})
    assert uniform.min() >= 10 and uniform.max() <= 20 and abs(uniform.mean() - 15) < 0.2
    assert np.all(np.round(uniform, 1) == uniform)


def test_zipf_ranks_follow_the_power_law() -> None:
    values = column_of(INT | {"min": 1, "max": 1000, "distribution": {"type": "zipf", "a": 1.2}}, rows=50_000)
    weights = np.arange(1, 1001) ** -1.2
    expected = weights / weights.sum()
    observed = np.bincount(values, minlength=1001)[1:] / len(values)
    assert np.abs(observed[:5] - expected[:5]).max() < 0.01


def test_enum_weights_and_zipf() -> None:
    column = {"name": "e", "type": "enum", "values": ["a", "b", "c"], "weights": [1, 2, 7]}
    values = column_of(column)
    shares = {value: np.mean(values == value) for value in "abc"}
    assert abs(shares["a"] - 0.1) < 0.01 and abs(shares["c"] - 0.7) < 0.015
    skewed = column_of(column | {"weights": None, "distribution": {"type": "zipf", "a": 2}})
    assert np.mean(skewed == "a") > np.mean(skewed == "b") > np.mean(skewed == "c")
    assert table_of(spec_of(column)).schema.field("e").type == pa.dictionary(pa.int32(), pa.string())


def test_bool_and_null_ratios() -> None:
    values = column_of({"name": "b", "type": "bool", "trueRatio": 0.3})
    assert abs(values.mean() - 0.3) < 0.015
    table = table_of(
        spec_of(
            {"name": "b", "type": "bool", "nullRatio": 0.25},
            INT | {"nullRatio": 0.5},
            {"name": "e", "type": "enum", "values": ["x"], "nullRatio": 0.1},
            {"name": "u", "type": "uuid", "nullRatio": 0.1},
        )
    )
    for name, ratio in (("b", 0.25), ("n", 0.5), ("e", 0.1), ("u", 0.1)):
        assert abs(table.column(name).null_count / table.num_rows - ratio) < 0.015
    assert table.schema.field("n").nullable
    assert not table_of(spec_of(INT)).schema.field("n").nullable


def test_decimals_and_amounts_respect_bounds() -> None:
    table = table_of(
        spec_of(
            {"name": "d", "type": "decimal", "precision": 6, "scale": 3, "min": "-1.5", "max": "2.250"},
            {"name": "a", "type": "amount", "min": "5", "max": "50"},
            {
                "name": "g",
                "type": "decimal",
                "scale": 2,
                "min": "0",
                "max": "100",
                "distribution": {"type": "normal", "mean": 50, "stddev": 5},
            },
        )
    )
    assert table.schema.field("d").type == pa.decimal128(6, 3)
    assert table.schema.field("a").type == pa.decimal128(12, 2)
    decimals = table.column("d").to_pylist()
    assert min(decimals) >= Decimal("-1.5") and max(decimals) <= Decimal("2.25")
    assert min(decimals) < 0 < max(decimals)
    amounts = table.column("a").to_pylist()
    assert min(amounts) >= 5 and max(amounts) <= 50 and all(value.as_tuple().exponent == -2 for value in amounts)
    normal = [float(value) for value in table.column("g").to_pylist()]
    assert abs(np.mean(normal) - 50) < 0.2


def test_dates_and_datetimes_stay_in_range() -> None:
    table = table_of(
        spec_of(
            {"name": "d", "type": "date", "min": "2024-02-01", "max": "2024-02-29"},
            {
                "name": "t",
                "type": "datetime",
                "min": "2024-01-01T00:00:00+02:00",
                "max": "2024-01-02",
                "resolution": "ms",
            },
            {
                "name": "c",
                "type": "date",
                "min": "2000-01-01",
                "max": "2030-12-31",
                "distribution": {"type": "normal", "mean": "2015-06-01", "stddevDays": 30},
            },
        )
    )
    days = table.column("d").to_pylist()
    assert min(days) == date(2024, 2, 1) and max(days) == date(2024, 2, 29)
    stamps = table.column("t").to_pylist()
    assert min(stamps) >= datetime(2023, 12, 31, 22, tzinfo=UTC) and max(stamps) <= datetime(2024, 1, 2, tzinfo=UTC)
    assert all(stamp.microsecond % 1000 == 0 for stamp in stamps)
    assert table.schema.field("t").type == pa.timestamp("us", tz="UTC")
    centred = np.array(table.column("c").cast(pa.int32()).to_numpy())
    assert abs(centred.mean() - (date(2015, 6, 1) - date(1970, 1, 1)).days) < 2


def test_uuids_are_version_4_and_distinct() -> None:
    values = table_of(spec_of({"name": "u", "type": "uuid"})).column("u").to_pylist()
    assert len(set(values)) == len(values)
    assert all(value.version == 4 and value.variant == uuid.RFC_4122 for value in values)


def test_sequences() -> None:
    values = column_of(INT | {"distribution": {"type": "sequence", "start": 10, "step": -3}}, rows=5)
    assert values.tolist() == [10, 7, 4, 1, -2]


# --- uniqueness -----------------------------------------------------------------------------------


def test_unique_ints_fill_a_tight_range_exactly() -> None:
    values = column_of(INT | {"min": 1000, "max": 1000 + 19_999, "unique": True})
    assert sorted(values.tolist()) == list(range(1000, 21_000))
    assert values[:10].tolist() != list(range(1000, 1010))  # shuffled, not a sequence


def test_unique_ints_in_huge_ranges_and_across_chunks() -> None:
    rows = CHUNK_ROWS + 5000
    values = column_of(INT | {"min": -(2**63), "max": 2**63 - 1, "unique": True}, rows=rows)
    assert len(np.unique(values)) == rows


def test_permutation_is_a_bijection() -> None:
    for size in (1, 2, 7, 1000, 4096, 12_345):
        image = Permutation(size, [3, 1, 4, 1])(np.arange(size, dtype=np.uint64))
        assert sorted(image.tolist()) == list(range(size))


def test_unique_patterns_and_emails() -> None:
    table = table_of(
        spec_of(
            {"name": "code", "type": "pattern", "pattern": r"[A-C]\d{4}", "unique": True},
            {"name": "email", "type": "email", "unique": True},
            rows=30_000,
        )
    )
    codes = table.column("code").to_pylist()
    assert len(set(codes)) == 30_000 and all(re.fullmatch(r"[A-C]\d{4}", code) for code in codes)
    emails = table.column("email").to_pylist()
    assert len(set(emails)) == 30_000


# --- patterns -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "regex"),
    [
        (r"ORD-[A-Z]{3}-\d{6}", r"ORD-[A-Z]{3}-\d{6}"),
        (r"\w{2,5}\.x?", r"\w{2,5}\.x?"),
        (r"[a-f0-9]{8}", r"[a-f0-9]{8}"),
        ("Größe-{{row:4}}", r"Größe-\d{4,}"),
        (r"\(555\) \d{3}-\d{4}", r"\(555\) \d{3}-\d{4}"),
    ],
)
def test_patterns_generate_matching_strings(pattern: str, regex: str) -> None:
    values = column_of({"name": "p", "type": "pattern", "pattern": pattern}, rows=2000)
    assert all(re.fullmatch(regex, value) for value in values)


def test_pattern_repeats_vary_and_rows_are_numbered() -> None:
    lengths = {len(value) for value in column_of({"name": "p", "type": "pattern", "pattern": "a{1,4}"}, rows=500)}
    assert lengths == {1, 2, 3, 4}
    numbered = column_of({"name": "p", "type": "pattern", "pattern": "INV-{{row:3}}"}, rows=1200)
    assert numbered[:2].tolist() == ["INV-001", "INV-002"] and numbered[-1] == "INV-1200"


@pytest.mark.parametrize(
    "pattern", ["a(b)", "{2}", r"\q", "[z-a]", "[abc", "{{rows}}", "a{3,1}", "a{x}", "[ä]", "a*", "\\"]
)
def test_invalid_patterns_are_rejected(pattern: str) -> None:
    with pytest.raises(ValueError, match=r"position|pattern"):
        compile_pattern(pattern)


# --- realistic values and locales -----------------------------------------------------------------


REALISTIC_TYPES = (
    "first_name",
    "last_name",
    "person_name",
    "phone",
    "company",
    "address",
    "city",
    "country",
    "url",
    "product_name",
    "text",
)
REALISTIC: list[dict[str, Any]] = [{"name": kind, "type": kind} for kind in REALISTIC_TYPES]


def test_realistic_values_look_real() -> None:
    table = table_of(
        spec_of(*REALISTIC, {"name": "email", "type": "email", "fromColumns": ["first_name", "last_name"]}, rows=3000)
    )
    rows = table.to_pylist()
    for row in rows[:200]:
        assert row["person_name"].count(" ") >= 1
        assert re.fullmatch(r"[a-z0-9._]+@example\.(com|org|net)", row["email"])
        local = row["email"].split("@")[0]
        assert fold(row["last_name"]) in local
        assert local.startswith(fold(row["first_name"])[0])
        assert re.search(r"\d{3}", row["phone"])
        assert re.fullmatch(r"\d+ \S.*", row["address"])
        assert re.fullmatch(r"https?://[a-z0-9.]+\.[a-z]+/[a-z/]*", row["url"])
        assert row["text"][0].isupper() and row["text"].endswith(".")
        assert len(row["product_name"].split()) >= 3
    assert len({row["first_name"] for row in rows}) > 200
    assert len({row["city"] for row in rows}) > 500


def test_locales_draw_their_own_names() -> None:
    german = table_of(spec_of(*REALISTIC[:3], {"name": "address", "type": "address"}, rows=2000, locale="de_DE"))
    from faker.providers.person.de_DE import Provider as GermanNames

    assert set(german.column("first_name").to_pylist()) <= set(GermanNames.first_names)
    assert all(re.fullmatch(r"\S.* \d+", value) for value in german.column("address").to_pylist())  # number last
    japanese = table_of(
        spec_of(
            {"name": "full", "type": "person_name"},
            {"name": "email", "type": "email", "fromColumns": ["full"]},
            rows=500,
            locale="ja_JP",
        )
    )
    names = japanese.column("full").to_pylist()
    assert all(not name.isascii() for name in names)
    assert all(
        re.fullmatch(r"[a-z0-9._]+@example\.(com|org|net)", email) for email in japanese.column("email").to_pylist()
    )


# --- determinism ----------------------------------------------------------------------------------

MIXED: list[dict[str, Any]] = [
    INT | {"min": 0, "max": 10**9},
    {"name": "f", "type": "float", "nullRatio": 0.1},
    {"name": "u", "type": "uuid"},
    {"name": "e", "type": "enum", "values": ["x", "y", "z"]},
    {"name": "k", "type": "pattern", "pattern": r"K-[A-Z]{4}\d{3}", "unique": True},
    {"name": "s", "type": "int", "min": 1, "max": 10**6, "unique": True},
    {"name": "email", "type": "email"},
    {"name": "t", "type": "text", "maxWords": 5},
]


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=50_000)
    return sink.getvalue()


def test_same_seed_same_bytes_whatever_the_batch_size() -> None:
    spec = spec_of(*MIXED, rows=CHUNK_ROWS + 30_000)
    reference = table_of(spec)
    assert parquet_bytes(reference) == parquet_bytes(table_of(spec_of(*MIXED, rows=CHUNK_ROWS + 30_000)))
    for batch_rows in (997, 40_000, CHUNK_ROWS * 2):
        batches = list(generate(spec, batch_rows=batch_rows))
        assert all(batch.num_rows == batch_rows for batch in batches[:-1])
        assert pa.Table.from_batches(batches).equals(reference)
    small_batches = pa.Table.from_batches(generate(spec, batch_rows=997))
    assert parquet_bytes(reference.combine_chunks()) == parquet_bytes(small_batches.combine_chunks())


def test_a_resumed_range_is_the_same_tail() -> None:
    spec = spec_of(*MIXED, rows=CHUNK_ROWS + 30_000)
    full = table_of(spec)
    for start in (1, 77_777, CHUNK_ROWS, CHUNK_ROWS + 29_999):
        tail = pa.Table.from_batches(list(generate_range(spec, start, spec.rows, batch_rows=10_000)))
        assert tail.equals(full.slice(start))
    middle = pa.Table.from_batches(list(generate_range(spec, 99_000, 101_000)))
    assert middle.equals(full.slice(99_000, 2000))


def test_different_seeds_differ_and_columns_are_independent() -> None:
    first = table_of(spec_of(*MIXED, rows=1000, seed=1))
    second = table_of(spec_of(*MIXED, rows=1000, seed=2))
    for name in first.column_names:
        assert not first.column(name).equals(second.column(name))
    fewer = table_of(spec_of(*MIXED[2:], rows=1000, seed=1))
    assert fewer.equals(first.select(fewer.column_names))  # dropping columns leaves the others as they were


def output_digest() -> str:
    """A hash of realistic output in every locale, as Parquet bytes."""
    digest = hashlib.sha256()
    for locale in get_args(Locale):
        sink = io.BytesIO()
        pq.write_table(table_of(spec_of(*REALISTIC, rows=500, seed=3, locale=locale)).combine_chunks(), sink)
        digest.update(sink.getvalue())
    return digest.hexdigest()


def test_output_is_the_same_in_every_process() -> None:
    """Vocabularies must not depend on hash randomisation (Faker builds some of its lists from sets)."""
    child = subprocess.Popen(
        [sys.executable, "-c", "from tests.datasets.test_generation import output_digest; print(output_digest())"],
        env={**os.environ, "PYTHONHASHSEED": "0"},
        cwd=Path(__file__).parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    here = output_digest()  # computed while the child works
    assert child.communicate(timeout=120)[0].strip() == here
    assert child.returncode == 0


def test_seeds_are_picked_when_missing() -> None:
    spec = spec_of(INT, rows=10, seed=None)
    with pytest.raises(ValueError, match="seed"):
        next(generate(spec))
    seeded = with_seed(spec)
    assert seeded.seed is not None and with_seed(seeded) is seeded
    assert table_of(seeded).equals(table_of(spec_of(INT, rows=10, seed=seeded.seed)))


def test_range_arguments_are_checked() -> None:
    spec = spec_of(INT, rows=10)
    with pytest.raises(ValueError, match="outside"):
        next(generate_range(spec, 5, 11))
    with pytest.raises(ValueError, match="batch_rows"):
        next(generate(spec, batch_rows=0))


# --- references -----------------------------------------------------------------------------------

USERS = uuid.UUID("00000000-0000-4000-8000-000000000001")


def test_references_sample_the_given_values() -> None:
    spec = spec_of(
        {"name": "user_id", "type": "reference", "dataset": str(USERS)},
        {"name": "hot", "type": "reference", "dataset": str(USERS), "distribution": {"type": "zipf", "a": 1.5}},
        {"name": "owner", "type": "reference", "dataset": str(USERS), "column": "uid", "unique": True},
        rows=5000,
    )
    assert [(ref.loc, ref.column, ref.dataset, ref.referenced_column) for ref in referenced_datasets(spec)] == [
        (("columns", 0, "dataset"), "user_id", USERS, "id"),
        (("columns", 1, "dataset"), "hot", USERS, "id"),
        (("columns", 2, "dataset"), "owner", USERS, "uid"),
    ]
    ids = pa.chunked_array([pa.array(range(1, 4001)), pa.array([None, *range(4001, 6001)])])
    uids = pa.array([uuid.uuid4().bytes for _ in range(6000)], pa.binary(16))
    table = table_of(spec, references={"user_id": ids, "hot": ids, "owner": uids})
    assert table.schema.field("owner").type == pa.binary(16)
    users = table.column("user_id").to_pylist()
    assert set(users) <= set(range(1, 6001)) and len(set(users)) > 3000
    hot = np.array(table.column("hot").to_pylist())
    assert np.mean(hot == 1) > 0.3
    assert len(table.column("owner").unique()) == 5000
    with pytest.raises(ValueError, match="references"):
        next(generate(spec, references={"user_id": ids, "hot": ids}))
    with pytest.raises(ValueError, match="at least 5000"):
        next(generate(spec, references={"user_id": ids, "hot": ids, "owner": uids[:10]}))


# --- presets --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_generate(name: str) -> None:
    spec = GenerationSpec.model_validate({"preset": name, "rows": 3000, "seed": 5})
    table = table_of(spec)
    assert table.num_rows == 3000
    assert table.column_names == [column.name for column in PRESETS[name].columns]
    assert set(dictionary_columns(spec)) <= set(table.column_names)


def test_presets_can_be_extended_overridden_trimmed_and_linked() -> None:
    users = uuid.uuid4()
    spec = GenerationSpec.model_validate(
        {
            "preset": "orders",
            "rows": 2000,
            "seed": 1,
            "exclude": ["currency"],
            "links": {"users": str(users)},
            "columns": [{"name": "quantity", "type": "int", "min": 5, "max": 6}, {"name": "note", "type": "text"}],
        }
    )
    names = [column.name for column in spec.effective_columns]
    assert "currency" not in names and names[-1] == "note"
    assert [(ref.loc, ref.column, ref.dataset) for ref in referenced_datasets(spec)] == [
        (("links", "users"), "user_id", users)
    ]
    table = table_of(spec, references={"user_id": pa.array([7, 8, 9])})
    assert set(table.column("user_id").to_pylist()) == {7, 8, 9}
    assert set(table.column("quantity").to_pylist()) == {5, 6}
    assert set(table.column("product_id").to_pylist()) <= set(range(1, 10_001))


def test_list_presets_describes_each() -> None:
    listed = {preset.name: preset for preset in list_presets()}
    assert set(listed) == {"users", "products", "orders", "events", "saas_subscriptions"}
    orders = listed["orders"].model_dump(by_alias=True, mode="json")
    assert orders["links"] == {"users": "user_id", "products": "product_id"}
    assert {"name": "quantity", "type": "int"}.items() <= orders["columns"][4].items()
    assert GenerationSpec.model_validate({"rows": 10, "columns": orders["columns"]}).effective_columns
