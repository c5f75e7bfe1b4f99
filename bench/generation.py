"""Data generation (issue 3): rows/s of the engine, generated and written to Parquet, against Faker and Mimesis.

Two schemas: 10 numeric/enum/uuid/date columns, and 11 realistic columns (names, email, phone, address,
city, country, company, product, amount, date). The peers generate the same columns row by row, as
they are used, on fewer rows (their rate is per row, so it extrapolates), and write the same Parquet.
"""

from __future__ import annotations

import decimal
import itertools
import os
import random
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from northstar.datasets.generation import GenerationSpec, arrow_schema, dictionary_columns, generate
from northstar.datasets.generation.vocab import PRODUCT_ADJECTIVES, PRODUCT_MATERIALS, PRODUCT_NOUNS

NUMERIC_ROWS = 2_000_000
REALISTIC_ROWS = 1_000_000
PEER_ROWS = 20_000
STATUSES = ["pending", "paid", "shipped", "delivered", "cancelled"]
STATUS_WEIGHTS = [5, 10, 15, 60, 10]
CATEGORIES = ["Home", "Electronics", "Clothing", "Sports", "Toys", "Beauty", "Garden", "Books"]
START, END = datetime(2020, 1, 1, tzinfo=UTC), datetime(2025, 12, 31, tzinfo=UTC)

NUMERIC = GenerationSpec.model_validate(
    {
        "rows": NUMERIC_ROWS,
        "seed": 7,
        "columns": [
            {"name": "id", "type": "int", "distribution": {"type": "sequence"}},
            {"name": "account_id", "type": "int", "min": 1, "max": 1_000_000},
            {"name": "score", "type": "float", "distribution": {"type": "normal", "mean": 50, "stddev": 12}},
            {
                "name": "amount",
                "type": "decimal",
                "precision": 12,
                "scale": 2,
                "min": "0.01",
                "max": "100000",
                "distribution": {"type": "lognormal", "mean": 3.5, "sigma": 1.0},
            },
            {"name": "quantity", "type": "int", "min": 1, "max": 100, "distribution": {"type": "zipf", "a": 1.5}},
            {"name": "is_active", "type": "bool", "trueRatio": 0.8},
            {"name": "status", "type": "enum", "values": STATUSES, "weights": STATUS_WEIGHTS},
            {"name": "category", "type": "enum", "values": CATEGORIES, "distribution": {"type": "zipf", "a": 1.1}},
            {"name": "uuid", "type": "uuid"},
            {"name": "created_at", "type": "datetime"},
        ],
    }
)

REALISTIC = GenerationSpec.model_validate(
    {
        "rows": REALISTIC_ROWS,
        "seed": 7,
        "columns": [
            {"name": "first_name", "type": "first_name"},
            {"name": "last_name", "type": "last_name"},
            {"name": "email", "type": "email", "fromColumns": ["first_name", "last_name"]},
            {"name": "phone", "type": "phone"},
            {"name": "address", "type": "address"},
            {"name": "city", "type": "city"},
            {"name": "country", "type": "country"},
            {"name": "company", "type": "company"},
            {"name": "product", "type": "product_name"},
            {"name": "amount", "type": "amount"},
            {"name": "ordered_on", "type": "date"},
        ],
    }
)


def _write(path: Path, schema: pa.Schema, batches: Iterable[pa.RecordBatch], dictionary: list[str] | bool) -> int:
    rows = 0
    options: dict[str, Any] = {"use_dictionary": dictionary, "compression": "snappy"}
    with pq.ParquetWriter(path, schema, **options) as writer:
        for batch in batches:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def _timed(action: Callable[[], int]) -> float:
    """Rows per second of ``action`` (which returns the rows it made)."""
    started = time.perf_counter()
    rows = action()
    return rows / (time.perf_counter() - started)


def _engine(spec: GenerationSpec, directory: Path) -> float:
    return _timed(
        lambda: _write(directory / "engine.parquet", arrow_schema(spec), generate(spec), dictionary_columns(spec))
    )


def _row_by_row(make_row: Callable[[], dict[str, Any]], directory: Path) -> float:
    def run() -> int:
        table = pa.Table.from_pylist([make_row() for _ in range(PEER_ROWS)])
        return _write(directory / "peer.parquet", table.schema, table.to_batches(), True)

    return _timed(run)


def _faker_rows() -> tuple[Callable[[], dict[str, Any]], Callable[[], dict[str, Any]]]:
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(7)
    statuses = OrderedDict(zip(STATUSES, STATUS_WEIGHTS, strict=True))
    ids = itertools.count(1)

    def numeric() -> dict[str, Any]:
        return {
            "id": next(ids),
            "account_id": fake.random_int(1, 1_000_000),
            "score": random.gauss(50, 12),
            "amount": fake.pydecimal(left_digits=5, right_digits=2, positive=True),
            "quantity": fake.random_int(1, 100),
            "is_active": fake.boolean(80),
            "status": fake.random_element(statuses),
            "category": fake.random_element(CATEGORIES),
            "uuid": fake.uuid4(),
            "created_at": fake.date_time_between(START, END, tzinfo=UTC),
        }

    def realistic() -> dict[str, Any]:
        first, last = fake.first_name(), fake.last_name()
        return {
            "first_name": first,
            "last_name": last,
            "email": f"{first}.{last}@{fake.free_email_domain()}".lower(),
            "phone": fake.phone_number(),
            "address": fake.street_address(),
            "city": fake.city(),
            "country": fake.country(),
            "company": fake.company(),
            "product": " ".join(
                str(fake.random_element(words)) for words in (PRODUCT_ADJECTIVES, PRODUCT_MATERIALS, PRODUCT_NOUNS)
            ),
            "amount": fake.pydecimal(left_digits=4, right_digits=2, positive=True),
            "ordered_on": fake.date_between(START, END),
        }

    return numeric, realistic


def _mimesis_rows() -> tuple[Callable[[], dict[str, Any]], Callable[[], dict[str, Any]]]:
    from mimesis import Address, Choice, Cryptographic, Datetime, Development, Finance, Numeric, Person
    from mimesis.locales import Locale

    person, address, finance = Person(Locale.EN, seed=7), Address(Locale.EN, seed=7), Finance(Locale.EN, seed=7)
    numbers, choice, crypto = Numeric(seed=7), Choice(seed=7), Cryptographic(seed=7)
    dates, development = Datetime(seed=7), Development(seed=7)
    ids = itertools.count(1)

    def numeric() -> dict[str, Any]:
        return {
            "id": next(ids),
            "account_id": numbers.integer_number(1, 1_000_000),
            "score": numbers.float_number(0, 100),
            "amount": decimal.Decimal(str(finance.price(0.01, 100_000))),
            "quantity": numbers.integer_number(1, 100),
            "is_active": development.boolean(),
            "status": choice(STATUSES),
            "category": choice(CATEGORIES),
            "uuid": str(crypto.uuid_object()),
            "created_at": dates.datetime(2020, 2025),
        }

    def realistic() -> dict[str, Any]:
        first, last = person.first_name(), person.last_name()
        return {
            "first_name": first,
            "last_name": last,
            "email": f"{first}.{last}@example.com".lower(),
            "phone": person.phone_number(),
            "address": address.address(),
            "city": address.city(),
            "country": address.country(),
            "company": finance.company(),
            "product": " ".join(
                str(choice(list(words))) for words in (PRODUCT_ADJECTIVES, PRODUCT_MATERIALS, PRODUCT_NOUNS)
            ),
            "amount": decimal.Decimal(str(finance.price(1, 10_000))),
            "ordered_on": dates.date(2020, 2025),
        }

    return numeric, realistic


def run() -> dict[str, Any]:
    """Rows/s of each schema through the engine and through each peer, and the engine's speed-up over them."""
    results: dict[str, Any] = {"cores": os.cpu_count(), "load_average_1m": os.getloadavg()[0]}
    for spec in (NUMERIC, REALISTIC):  # build vocabularies and warm caches outside the timings
        for _ in generate(spec.model_copy(update={"rows": 1000})):
            pass
    with tempfile.TemporaryDirectory(prefix="northstar-bench-generation-") as name:
        directory = Path(name)
        peers = {"faker": _faker_rows(), "mimesis": _mimesis_rows()}
        for index, (label, spec) in enumerate((("numeric", NUMERIC), ("realistic", REALISTIC))):
            engine = _engine(spec, directory)
            results[f"{label}_engine_rows_per_s"] = engine
            for peer, makers in peers.items():
                rate = _row_by_row(makers[index], directory)
                results[f"{label}_{peer}_rows_per_s"] = rate
                results[f"{label}_engine_vs_{peer}"] = engine / rate
    return results


if __name__ == "__main__":
    measured = run()
    width = max(len(key) for key in measured)
    for key, value in measured.items():
        print(f"{key:<{width}}  {value:>14,.2f}" if isinstance(value, float) else f"{key:<{width}}  {value:>14}")
