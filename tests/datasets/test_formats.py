"""File formats for import and export: detection, streaming reads with rejects, COPY input, writers.

Pure and fast: no database, no HTTP. Hostile inputs come from ``tests/datasets/hostile_files.py``.
"""

from __future__ import annotations

import decimal
import gzip
import io
import json
import random
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from northstar.datasets.formats import (
    ColumnDef,
    CorruptFileError,
    CsvDialect,
    DatasetSchema,
    DatasetSchemaRequest,
    DetectedFormat,
    EmptyFileError,
    FormatError,
    LineTooLongError,
    MalformedFileError,
    NoDataRowsError,
    NoValidRowsError,
    ReadLimits,
    SchemaMismatchError,
    TextEncodingError,
    TooManyColumnsError,
    UnsupportedFormatError,
    ValidatedBatch,
    detect_file,
    detect_format,
    file_extension,
    infer_schema,
    mime_type,
    normalise_column_names,
    open_writer,
    read_batches,
    read_sample,
    sources,
    to_copy_csv,
)
from northstar.datasets.formats.errors import CompressionRatioError, DecompressedTooLargeError, TooManyRowsError
from northstar.datasets.formats.jsonsplit import JsonArraySplitter
from northstar.datasets.formats.schema import TYPE_MAPPING, column_renames
from tests.datasets import hostile_files

REPO = Path(__file__).resolve().parents[2]


def read_all(data: bytes, name: str | None = None, **options: Any) -> list[ValidatedBatch]:
    fmt = detect_format(data[:65536], name)
    return list(read_batches(io.BytesIO(data), fmt, **options))


def rows_of(batches: list[ValidatedBatch]) -> list[dict[str, Any]]:
    return [row for batch in batches for row in batch.rows.to_pylist()]


def rejects_of(batches: list[ValidatedBatch]) -> list[tuple[int, str | None, str]]:
    return [
        (reject["row_number"], reject["column"], reject["reason"])
        for batch in batches
        for reject in batch.rejects.to_pylist()
    ]


SAMPLE = pa.table(
    {
        "id": pa.array([1, 2, 3], pa.int64()),
        "name": ["Ana", 'Bo, "the" second', "Zoë\nnew line"],
        "amount": pa.array([decimal.Decimal("12.30"), None, decimal.Decimal("-0.01")], pa.decimal128(10, 2)),
        "active": [True, False, None],
        "day": [date(2024, 1, 31), None, date(1999, 12, 31)],
        "at": pa.array(
            [datetime(2024, 1, 31, 12, 0, tzinfo=UTC), None, datetime(2024, 2, 1, 0, 0, 0, 123456, tzinfo=UTC)],
            pa.timestamp("us", tz="UTC"),
        ),
        "score": [0.5, -1e300, None],
    }
)
SAMPLE_SCHEMA = DatasetSchema(
    (
        ColumnDef("id", "int"),
        ColumnDef("name", "string"),
        ColumnDef("amount", "decimal", precision=10, scale=2),
        ColumnDef("active", "bool"),
        ColumnDef("day", "date"),
        ColumnDef("at", "datetime"),
        ColumnDef("score", "float"),
    )
)


def written(fmt: str, table: pa.Table, *, gzip: bool = False) -> bytes:
    sink = io.BytesIO()
    with open_writer(fmt, sink, table.schema, gzip=gzip) as writer:  # type: ignore[arg-type]
        for batch in table.to_batches(max_chunksize=2):
            writer.write(batch)
    return sink.getvalue()


# Detection -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["csv", "json", "ndjson", "parquet"])
@pytest.mark.parametrize("compressed", [False, True])
def test_detects_each_format_from_bytes_whatever_the_name(kind: str, compressed: bool) -> None:
    data = written(kind, SAMPLE.select(["id", "name"]))
    if compressed:
        data = gzip.compress(data)
    misleading = {"csv": "export.json", "json": "data.csv", "ndjson": "rows.parquet", "parquet": "table.csv"}[kind]
    fmt = detect_format(data[:65536], misleading, "text/plain")
    assert (fmt.kind, fmt.compression) == (kind, "gzip" if compressed else "none")


def test_png_named_csv_is_refused_in_plain_words(tmp_path: Path) -> None:
    path = hostile_files.png_named_csv(tmp_path)
    with pytest.raises(UnsupportedFormatError) as caught:
        detect_file(path)
    assert caught.value.message == "This looks like a PNG image, not CSV, JSON, NDJSON or Parquet"
    assert caught.value.status == 415


@pytest.mark.parametrize(
    ("head", "words"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml xl/workbook.xml", "Excel workbook"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF document"),
        (gzip.compress(gzip.compress(b"a,b\n1,2\n", mtime=0), mtime=0), "gzip file inside a gzip file"),
        (bytes(range(256)) * 8, "binary data"),
        (b'{\n  "data": [1, 2]\n}\n', "single JSON object"),
        (b"[1, 2, 3]", "plain values"),
        (b"<!DOCTYPE html><html><body>x</body></html>", "web page"),
    ],
)
def test_other_unsupported_files_are_named(head: bytes, words: str) -> None:
    with pytest.raises(UnsupportedFormatError, match=words):
        detect_format(head, "data.csv")


def test_empty_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EmptyFileError, match="empty"):
        detect_file(hostile_files.empty_file(tmp_path))


@pytest.mark.parametrize(
    ("text", "dialect"),
    [
        ("id;name;price\n1;Ana;12,5\n2;Bo;3\n", CsvDialect(";", '"', True)),
        ("id\tname\n1\tAna, Bo\n2\tCy\n", CsvDialect("\t", '"', True)),
        ("id|name\n1|Ana\n", CsvDialect("|", '"', True)),
        ("1,2024-01-31,3.5\n2,2024-02-01,4\n", CsvDialect(",", '"', False)),
        ('id,text\n1,"first\nsecond, third"\n2,"say ""hi"""\n', CsvDialect(",", '"', True)),
        ("id,name\n1,'O, Brien'\n2,'Smith'\n", CsvDialect(",", "'", True)),
    ],
)
def test_csv_dialect_sniffing(text: str, dialect: CsvDialect) -> None:
    assert detect_format(text.encode()).dialect == dialect


def test_tsv_name_breaks_a_delimiter_tie() -> None:
    data = b"a,b\tc\n1,2\t3\n"
    assert detect_format(data, "data.csv").dialect == CsvDialect(",", '"', True)
    assert detect_format(data, "data.tsv").dialect == CsvDialect("\t", '"', True)


def test_quoted_newlines_are_values_not_rows() -> None:
    batches = read_all(b'id,text\n1,"first\nsecond, third"\n2,"say ""hi"""\n')
    assert rows_of(batches) == [{"id": 1, "text": "first\nsecond, third"}, {"id": 2, "text": 'say "hi"'}]


def test_headerless_csv_gets_positional_names() -> None:
    batches = read_all(b"1,2024-01-31,3.5\n2,2024-02-01,4\n")
    assert batches[0].schema.names == ["column_1", "column_2", "column_3"]
    assert [column.type for column in batches[0].schema.columns] == ["int", "date", "float"]


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_legacy_encoded_csv_is_transcoded(tmp_path: Path, encoding: str) -> None:
    path = hostile_files.legacy_encoding_csv(tmp_path, encoding)
    fmt = detect_file(path)
    assert fmt.encoding in ("cp1252", "latin-1")
    assert fmt.dialect == CsvDialect(";", '"', True)
    rows = rows_of(list(read_batches(path, fmt)))
    assert [row["nom"] for row in rows] == ["José", "Élodie", "Zoë"]
    assert [row["ville"] for row in rows] == ["Besançon", "São Paulo", "Köln"]


def test_bytes_outside_the_detected_legacy_encoding_fail_clearly() -> None:
    data = b"id,name\n" + "1,José\n".encode("cp1252") * 20_000 + b"2,undefined \x81 byte\n"
    fmt = detect_format(data[:65536])
    assert fmt.encoding == "cp1252"
    with pytest.raises(TextEncodingError, match="not valid cp1252 text"):
        list(read_batches(io.BytesIO(data), fmt))


@pytest.mark.parametrize("bom_encoding", ["utf-16", "utf-8-sig"])
def test_byte_order_marks(bom_encoding: str) -> None:
    data = "name\tcity\nJosé\tZürich\n€uro\tKöln\n".encode(bom_encoding)
    fmt = detect_format(data, "data.tsv")
    assert fmt.dialect is not None and fmt.dialect.delimiter == "\t"
    rows = rows_of(list(read_batches(io.BytesIO(data), fmt)))
    assert rows == [{"name": "José", "city": "Zürich"}, {"name": "€uro", "city": "Köln"}]


# JSON ------------------------------------------------------------------------------------------------------

TRICKY_ARRAY = (
    '[ {"id": 1, "text": "closing ] bracket, and }, {", "nested": {"list": [1, [2, {"x": "]"}]]}},\n'
    '  {"id": 2, "text": "escaped \\" quote ] and \\\\", "nested": null},\r\n'
    '  {"id": 3, "text": "backslashes \\\\\\\\\\" then quote", "nested": {"a": {"b": {}}}},'
    '{"id":4,"text":"ünïcödé ☃ \\u2603","nested":[]}\n]\n'
)


def test_json_array_splitter_across_every_chunk_boundary() -> None:
    expected = json.loads(TRICKY_ARRAY)
    data = TRICKY_ARRAY.encode()
    for size in (1, 2, 3, 5, 7, 64, len(data)):
        splitter = JsonArraySplitter()
        out = b"".join(splitter.feed(data[start : start + size]) for start in range(0, len(data), size))
        splitter.finish()
        assert [json.loads(line) for line in out.splitlines() if line.strip()] == expected


def test_json_array_reads_with_row_numbers_across_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "READ_CHUNK", 13)
    monkeypatch.setattr(sources, "JSON_BLOCK", 40)
    items = [{"id": index, "name": f"name ] {index}"} for index in range(1, 41)]
    items[9] = {"id": "ten", "name": "bad id"}
    schema = DatasetSchema((ColumnDef("id", "int"), ColumnDef("name", "string")))
    batches = read_all(json.dumps(items, indent=2).encode(), "x.json", schema=schema, batch_rows=4)
    assert len(batches) > 5
    assert [row["id"] for row in rows_of(batches)] == [index for index in range(1, 41) if index != 10]
    assert [number for batch in batches for number in batch.row_numbers.to_pylist()] == [
        index for index in range(1, 41) if index != 10
    ]
    assert rejects_of(batches) == [(10, "id", "not an integer: 'ten'")]


def test_ndjson_bad_lines_become_rejects() -> None:
    data = b'{"id": 1, "tags": ["a"]}\n\n{"id": 2, "tags": {"b": 1}}\nnot json\n[1, 2]\n{"id": 5, "tags": null}\n'
    batches = read_all(data, "x.ndjson")
    assert rows_of(batches) == [{"id": 1, "tags": '["a"]'}, {"id": 2, "tags": '{"b":1}'}, {"id": 5, "tags": None}]
    assert [column.type for column in batches[0].schema.columns] == ["int", "json"]
    assert [(number, column) for number, column, _ in rejects_of(batches)] == [(3, None), (4, None)]
    assert rejects_of(batches)[1][2] == "not a JSON object"


def test_unclosed_json_array_fails_clearly(tmp_path: Path) -> None:
    path = hostile_files.unclosed_json_array(tmp_path)
    with pytest.raises(MalformedFileError, match="not closed"):
        list(read_batches(path, detect_file(path)))


def test_dates_in_json_stay_text_until_validated() -> None:
    batches = read_all(b'{"d": "2024-01-31", "code": "2024-01-31T10:00:00Z"}\n{"d": "2024-02-01", "code": "x"}\n')
    assert [column.type for column in batches[0].schema.columns] == ["date", "string"]
    assert rows_of(batches)[0] == {"d": date(2024, 1, 31), "code": "2024-01-31T10:00:00Z"}


# Schema inference ------------------------------------------------------------------------------------------


def test_infers_narrowest_type_all_sampled_values_parse_as() -> None:
    text = (
        "Id,Price,In Stock,Day,Seen At,Key,Meta,Zip,Note,,id,2nd,xmin\n"
        '1,12.5,true,2024-01-31,2024-01-31T12:00:00Z,123e4567-e89b-12d3-a456-426614174000,{"a": 1},01234,x,,7,a,1\n'
        "2,NULL,no,2024-02-01,2024-02-01 08:00:00+02:00,123E4567-E89B-12D3-A456-426614174001,[1],12345,,,8,b,2\n"
        "-3,1e3,N/A,,,,,99999,y,,9,c,3\n"
    )
    schema = infer_schema(read_sample(io.BytesIO(text.encode()), detect_format(text.encode())))
    assert [(column.name, column.type, column.label) for column in schema.columns] == [
        ("id", "int", "Id"),
        ("price", "float", "Price"),
        ("in_stock", "bool", "In Stock"),
        ("day", "date", "Day"),
        ("seen_at", "datetime", "Seen At"),
        ("key", "uuid", "Key"),
        ("meta", "json", "Meta"),
        ("zip", "string", "Zip"),
        ("note", "string", "Note"),
        ("column_10", "string", ""),
        ("id_2", "int", "id"),
        ("_2nd", "string", "2nd"),
        ("xmin_1", "int", "xmin"),
    ]
    assert all(column.nullable for column in schema.columns)


def test_column_names_become_safe_identifiers() -> None:
    names = normalise_column_names(["Prénom", "prenom", "", "Total (€)", "x" * 100, "select", "ctid", "9 lives"])
    assert names == ["prenom", "prenom_2", "column_3", "total", "x" * 63, "select", "ctid_1", "_9_lives"]
    assert all(len(name) <= 63 for name in names)


def test_schema_request_model() -> None:
    request = DatasetSchemaRequest.model_validate(
        {
            "columns": [
                {
                    "name": "amount",
                    "type": "decimal",
                    "precision": 12,
                    "scale": 2,
                    "nullable": False,
                    "label": "Amount €",
                },
                {"name": "seen_at", "type": "datetime"},
            ]
        }
    )
    schema = request.to_schema()
    assert schema.columns[0].sql_type == "numeric(12,2)"
    assert schema.to_arrow().field("amount").type == pa.decimal128(12, 2)
    assert schema.columns[1].arrow_type == pa.timestamp("us", tz="UTC")
    for bad in (
        {"name": "x", "type": "decimal"},
        {"name": "Bad Name", "type": "int"},
        {"name": "x", "type": "int", "scale": 2},
        {"name": "x", "type": "int", "unknownField": 1},
    ):
        with pytest.raises(ValidationError):
            DatasetSchemaRequest.model_validate({"columns": [bad]})
    with pytest.raises(ValidationError, match="Duplicate"):
        DatasetSchemaRequest.model_validate({"columns": [{"name": "a", "type": "int"}, {"name": "a", "type": "int"}]})


# Validation and rejects ------------------------------------------------------------------------------------

TYPED = DatasetSchema(
    (
        ColumnDef("id", "int", nullable=False),
        ColumnDef("price", "decimal", precision=6, scale=2),
        ColumnDef("ok", "bool"),
        ColumnDef("day", "date"),
        ColumnDef("at", "datetime"),
        ColumnDef("key", "uuid"),
        ColumnDef("meta", "json"),
        ColumnDef("note", "string"),
    )
)


def test_rejects_carry_exact_row_numbers_columns_and_reasons_across_batches() -> None:
    long_value = "z" * 100
    lines = [
        "id,price,ok,day,at,key,meta,note",
        '1,12.5,yes,2024-01-31,2024-01-31T12:00:00+02:00,{123E4567-E89B-12D3-A456-426614174000},{"a": 1},fine',
        'abc,1.234,maybe,2024-02-30,yesterday,nope,{bad,"has\x00nul"',
        " 3 ,  7 ,N/A,,2024-01-01 00:00,,[1],",
        "4,9999.99,1,2024-12-31,2024-12-31,,,extra,field",
        "," + ",".join([""] * 6) + ",required id missing",
        f"{long_value},0,0,0001-01-01,9999-12-31T23:59:59Z,,,",
        '7,+1,T,2024-01-01,2024-01-01T00:00:00.1234567Z,123e4567e89b12d3a456426614174000,"""s""",ok',
    ]
    batches = read_all("\n".join(lines).encode() + b"\n", schema=TYPED, batch_rows=2)
    assert [number for batch in batches for number in batch.row_numbers.to_pylist()] == [1, 3, 7]
    assert rejects_of(batches) == [
        (2, "id", "not an integer: 'abc'"),
        (2, "price", "not a number with at most 4 digits before and 2 after the decimal point: '1.234'"),
        (2, "ok", "not a boolean (true/false, yes/no, 1/0): 'maybe'"),
        (2, "day", "not a date (YYYY-MM-DD, years 1 to 9999): '2024-02-30'"),
        (2, "at", "not a date and time (ISO 8601 such as 2024-01-31T12:00:00Z, years 1 to 9999): 'yesterday'"),
        (2, "key", "not a UUID: 'nope'"),
        (2, "meta", "not valid JSON: '{bad'"),
        (2, "note", "contains a NUL character, which PostgreSQL cannot store"),
        (4, None, "expected 8 fields, found 9"),
        (5, "id", "missing value in a required column"),
        (6, "id", f"not an integer: '{'z' * 60}…'"),
    ]
    rows = rows_of(batches)
    assert rows[0] == {
        "id": 1,
        "price": decimal.Decimal("12.50"),
        "ok": True,
        "day": date(2024, 1, 31),
        "at": datetime(2024, 1, 31, 10, 0, tzinfo=UTC),
        "key": "123e4567-e89b-12d3-a456-426614174000",
        "meta": '{"a": 1}',
        "note": "fine",
    }
    assert rows[1]["id"] == 3 and rows[1]["price"] == decimal.Decimal("7.00") and rows[1]["ok"] is None
    assert rows[1]["at"] == datetime(2024, 1, 1, tzinfo=UTC) and rows[1]["note"] is None
    assert rows[2]["at"] == datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
    assert rows[2]["key"] == "123e4567-e89b-12d3-a456-426614174000" and rows[2]["meta"] == '"s"'


def test_dates_outside_years_1_to_9999_are_rejected() -> None:
    schema = DatasetSchema((ColumnDef("day", "date"),))
    table = pa.table({"day": pa.array([date(2024, 1, 1), None], pa.date32())})
    batches = read_all(written("parquet", table), schema=schema)
    assert rows_of(batches) == [{"day": date(2024, 1, 1)}, {"day": None}]
    far = pa.table({"day": pa.array([-800_000, 19_000], pa.date32())})
    assert rejects_of(read_all(written("parquet", far), schema=schema))[0][:2] == (1, "day")


def test_missing_required_column_is_one_clear_error() -> None:
    schema = DatasetSchema((ColumnDef("id", "int", nullable=False), ColumnDef("email", "string", nullable=False)))
    with pytest.raises(SchemaMismatchError, match="'email'"):
        read_all(b"id,name\n1,x\n", schema=schema)


def test_file_with_no_valid_rows_fails_after_reporting_them() -> None:
    schema = DatasetSchema((ColumnDef("id", "int"),))
    reader = read_batches(io.BytesIO(b"id\nx\ny\n"), detect_format(b"id\nx\ny\n"), schema=schema)
    first = next(reader)
    assert first.rows.num_rows == 0 and first.rejects.num_rows == 2
    with pytest.raises(NoValidRowsError, match="None of the 2 data rows"):
        next(reader)


def test_header_only_file_has_no_data_rows(tmp_path: Path) -> None:
    path = hostile_files.header_only(tmp_path)
    with pytest.raises(NoDataRowsError, match="header but no data rows"):
        list(read_batches(path, detect_file(path)))


# Hostile files ---------------------------------------------------------------------------------------------


def test_truncated_gzip_fails_clearly(tmp_path: Path) -> None:
    path = hostile_files.truncated_gzip(tmp_path)
    fmt = detect_file(path)
    assert fmt.compression == "gzip"
    with pytest.raises(CorruptFileError, match="truncated or corrupt"):
        list(read_batches(path, fmt))


def test_ten_thousand_columns_are_refused(tmp_path: Path) -> None:
    path = hostile_files.wide_csv(tmp_path)
    with pytest.raises(TooManyColumnsError, match="10,000 columns; at most 1,000"):
        list(read_batches(path, detect_file(path)))
    assert (
        rows_of(list(read_batches(path, detect_file(path), limits=ReadLimits(max_columns=10_000))))[0]["column_0"] == 0
    )


def test_invalid_utf8_rows_are_rejected_not_guessed(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 after a UTF-8 head reject their rows; the rest of the file loads."""
    path = hostile_files.invalid_utf8(tmp_path, clean_rows=20_000, bad_rows=(20_001, 20_003))
    fmt = detect_file(path)
    assert fmt.encoding == "utf-8"
    batches = list(read_batches(path, fmt, batch_rows=5000))
    assert [(number, column) for number, column, _ in rejects_of(batches)] == [(20_001, "name"), (20_003, "name")]
    assert "not valid UTF-8" in rejects_of(batches)[0][2]
    assert sum(batch.rows.num_rows for batch in batches) == 20_003
    assert batches[-1].row_numbers.to_pylist()[-2:] == [20_004, 20_005]


MEMORY_PROBE = """
import json, resource, sys
from northstar.datasets.formats import FormatError, detect_file, read_batches

def peak_mb():
    # VmHWM is this process's own peak; ru_maxrss can carry the parent's across fork+exec.
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

warm_up, *hostile = sys.argv[1:]
for _ in read_batches(warm_up, detect_file(warm_up)):
    pass
baseline = peak_mb()
results = {}
for path in hostile:
    try:
        for _ in read_batches(path, detect_file(path)):
            pass
        results[path] = "no error"
    except FormatError as exc:
        results[path] = type(exc).__name__
print(json.dumps({"results": results, "growth_mb": peak_mb() - baseline}))
"""


def test_fifty_megabyte_line_fails_clearly_in_bounded_memory(tmp_path: Path) -> None:
    """Measured in a child process: peak RSS must stay well under the size of the line."""
    warm_up = tmp_path / "small.csv"
    warm_up.write_text("id,text\n" + "".join(f"{row},text {row}\n" for row in range(1000)))
    paths = [warm_up, hostile_files.huge_line(tmp_path), hostile_files.huge_json_line(tmp_path)]
    completed = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, *map(str, paths)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    report = json.loads(completed.stdout)
    assert set(report["results"].values()) == {"LineTooLongError"}
    # About `max_line_bytes` (1 MiB) of the line plus one chunk, never the line, nor Arrow's 32-block read-ahead.
    assert report["growth_mb"] < 16, report


@pytest.mark.parametrize("build", [hostile_files.huge_line, hostile_files.huge_json_line], ids=["csv", "ndjson"])
def test_line_limit_is_configurable(tmp_path: Path, build: Callable[..., Path]) -> None:
    path = build(tmp_path, line_bytes=300_000)
    with pytest.raises(LineTooLongError, match="longer than 65,536 bytes"):
        list(read_batches(path, detect_file(path), limits=ReadLimits(max_line_bytes=65_536)))
    assert len(rows_of(list(read_batches(path, detect_file(path))))) == 3


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_a_line_of_exactly_the_limit_is_read_and_one_byte_more_is_not(end: bytes) -> None:
    limits = ReadLimits(max_line_bytes=1000)
    lines = [b"id,text", b"1,short", b"2," + b"x" * 998, b"3,after"]
    assert len(rows_of(read_all(end.join(lines) + end, "x.csv", limits=limits))) == 3
    lines[2] += b"x"
    with pytest.raises(LineTooLongError, match="longer than 1,000 bytes"):
        read_all(end.join(lines) + end, "x.csv", limits=limits)


# Export ----------------------------------------------------------------------------------------------------


def test_csv_export_neutralises_formulas_but_not_numbers() -> None:
    table = pa.Table.from_pylist(hostile_files.formula_rows())
    data = written("csv", table.rename_columns(["id", "note", "=amount"]))
    assert data.decode().split("\n")[0] == '"id","note","\'=amount"'
    cells = [row["note"] for row in pa.csv.read_csv(io.BytesIO(data)).to_pylist()]
    assert cells == [
        '\'=HYPERLINK("http://evil.example","x")',
        "'+cmd|' /C calc'!A0",
        "'-2+3",
        "'@SUM(A1:A2)",
        "'\tleading tab",
        "'\rleading return",
        "-42.5",
        "plain = text",
    ]
    assert pa.csv.read_csv(io.BytesIO(data)).column("'=amount").to_pylist() == [-5, 3, 0, 1, 2, 2, 7, 8]


@pytest.mark.parametrize(
    "encode",
    [
        lambda values: values,
        lambda values: values.dictionary_encode(),
        lambda values: values.cast(pa.large_string()),
    ],
    ids=["string", "dictionary", "large"],
)
def test_csv_export_guards_formulas_behind_whitespace_and_in_every_text_type(encode: Any) -> None:
    risky = ["\nleading newline", "\x00leading nul", " =1+2", "\t @SUM(A1)", "\u00a0-2+3", "  +cmd"]
    harmless = [" plain", None, "a=b", "-1.5e3", ""]
    values = risky + harmless
    data = written("csv", pa.table({"n": range(len(values)), "cell": encode(pa.array(values, pa.string()))}))
    cells = [
        row["cell"]
        for row in pa.csv.read_csv(
            io.BytesIO(data),
            convert_options=pa.csv.ConvertOptions(
                column_types={"cell": pa.string()}, strings_can_be_null=True, quoted_strings_can_be_null=False
            ),
        ).to_pylist()
    ]
    assert cells == ["'" + value for value in risky] + harmless


@pytest.mark.parametrize(
    ("fmt", "compressed"),
    [
        ("csv", False),
        ("csv", True),
        ("json", False),
        ("json", True),
        ("ndjson", False),
        ("ndjson", True),
        ("parquet", False),
    ],
)
def test_round_trip_write_then_read_equals_input(fmt: str, compressed: bool) -> None:
    table = SAMPLE.cast(SAMPLE_SCHEMA.to_arrow())
    data = written(fmt, table, gzip=compressed)
    detected = detect_format(data[:65536], "export" + file_extension(fmt, gzip=compressed))  # type: ignore[arg-type]
    assert (detected.kind, detected.compression) == (fmt, "gzip" if compressed else "none")
    read = pa.Table.from_batches(
        [batch.rows for batch in read_batches(io.BytesIO(data), detected, schema=SAMPLE_SCHEMA)]
    )
    assert read.equals(table)


def test_json_export_is_valid_json_with_exact_values() -> None:
    table = pa.table(
        {
            "amount": pa.array([decimal.Decimal("12345678901234567.89"), None], pa.decimal128(19, 2)),
            "ratio": [float("nan"), float("inf")],
            "key": ["123e4567-e89b-12d3-a456-426614174000", 'quote " backslash \\ ctrl \x01 tab \t'],
            "day": [date(2024, 1, 31), None],
            "meta": pa.array(['{"a": [1,\n 2]}', None], pa.string()),
        }
    ).cast(
        pa.schema(
            [
                pa.field("amount", pa.decimal128(19, 2)),
                pa.field("ratio", pa.float64()),
                pa.field("key", pa.string()),
                pa.field("day", pa.date32()),
                ColumnDef("meta", "json").arrow_field(),
            ]
        )
    )
    document = written("json", table).decode()
    assert json.loads(document, parse_float=decimal.Decimal) == [
        {
            "amount": decimal.Decimal("12345678901234567.89"),
            "ratio": None,
            "key": "123e4567-e89b-12d3-a456-426614174000",
            "day": "2024-01-31",
            "meta": {"a": [1, 2]},
        },
        {"amount": None, "ratio": None, "key": 'quote " backslash \\ ctrl \x01 tab \t', "day": None, "meta": None},
    ]
    lines = written("ndjson", table).decode().splitlines()
    assert [json.loads(line)["key"] for line in lines] == table.column("key").to_pylist()
    assert written("json", table.slice(0, 0)).decode() == "[\n]\n"


def test_mime_types_and_extensions() -> None:
    assert (mime_type("csv"), file_extension("csv")) == ("text/csv", ".csv")
    assert (mime_type("ndjson", gzip=True), file_extension("ndjson", gzip=True)) == ("application/gzip", ".ndjson.gz")
    assert mime_type("parquet") == "application/vnd.apache.parquet"
    with pytest.raises(ValueError, match="Parquet"):
        open_writer("parquet", io.BytesIO(), SAMPLE.schema, gzip=True)


def test_parquet_export_is_compressed_parquet() -> None:
    metadata = pq.ParquetFile(io.BytesIO(written("parquet", SAMPLE))).metadata
    assert metadata.num_rows == 3 and metadata.row_group(0).column(0).compression == "ZSTD"
    assert metadata.num_row_groups == 1  # batches of two rows are gathered into one row group


# COPY encoding ---------------------------------------------------------------------------------------------


def test_copy_csv_bytes_for_tricky_values() -> None:
    batch = pa.RecordBatch.from_pydict(
        {
            "text": ["", None, 'say "hi"', "a,b", "two\nlines", "\\.", "Zoë ☃", " padded "],
            "number": pa.array([0, None, -1, 2**62, 5, 6, 7, 8], pa.int64()),
            "flag": [True, None, False, True, True, True, True, True],
            "ratio": [0.1, None, float("nan"), float("inf"), -1e-7, 1e20, 2.5, 0.0],
        }
    )
    assert to_copy_csv(batch) == (
        b'"",0,true,0.1\n'
        b",,,\n"
        b'"say ""hi""",-1,false,nan\n'
        b'"a,b",4611686018427387904,true,inf\n'
        b'"two\nlines",5,true,-1e-7\n'
        b'"\\.",6,true,1e+20\n'
        b'"Zo\xc3\xab \xe2\x98\x83",7,true,2.5\n'
        b'" padded ",8,true,0\n'
    )


def test_copy_csv_bytes_for_typed_columns() -> None:
    batch = pa.RecordBatch.from_pylist(
        [
            {
                "amount": decimal.Decimal("-12.30"),
                "day": date(2024, 1, 31),
                "at": datetime(2024, 1, 31, 12, 0, 0, 5, tzinfo=UTC),
                "meta": '{"a": "b,c"}',
            },
            {"amount": None, "day": None, "at": None, "meta": None},
        ],
        schema=pa.schema(
            [
                pa.field("amount", pa.decimal128(10, 2)),
                pa.field("day", pa.date32()),
                pa.field("at", pa.timestamp("us", tz="UTC")),
                pa.field("meta", pa.string()),
            ]
        ),
    )
    assert to_copy_csv(batch) == b'-12.30,2024-01-31,"2024-01-31 12:00:00.000005Z","{""a"": ""b,c""}"\n,,,\n'


def test_random_bytes_never_crash_the_reader() -> None:
    """Fuzz: whatever the bytes, the result is rows or a FormatError, never another exception."""
    rng = random.Random(7)
    alphabet = b'ab,;"\n\r\t{}[]:\\0123456789 \xc3\xa9\xff\x00'
    for _ in range(150):
        data = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
        try:
            fmt = detect_format(data[:65536], "fuzz.csv")
            list(read_batches(io.BytesIO(data), fmt))
        except FormatError:
            pass


def test_detected_format_can_be_overridden() -> None:
    data = b"name,city\nAlice,Paris\nBob,Berlin\n"
    assert detect_format(data).dialect == CsvDialect(",", '"', True)
    headerless = DetectedFormat("csv", dialect=CsvDialect(header=False))
    rows = [row for batch in read_batches(io.BytesIO(data), headerless) for row in batch.rows.to_pylist()]
    assert rows[0] == {"column_1": "name", "column_2": "city"} and len(rows) == 3


# Decompression bombs ---------------------------------------------------------------------------------------

BOMB_LIMITS = ReadLimits(max_decompressed_bytes=1 << 30, max_compression_ratio=20)


@pytest.mark.parametrize(
    ("build", "limits", "error"),
    [
        (lambda d: hostile_files.gzip_bomb(d), BOMB_LIMITS, CompressionRatioError),
        (lambda d: hostile_files.gzip_bomb(d, members=3), BOMB_LIMITS, CompressionRatioError),
        (lambda d: hostile_files.blank_lines_bomb(d), BOMB_LIMITS, CompressionRatioError),
        (lambda d: hostile_files.latin1_gzip_bomb(d), BOMB_LIMITS, CompressionRatioError),
        (
            lambda d: hostile_files.random_gzip_csv(d, 5 << 20),
            ReadLimits(max_decompressed_bytes=4 << 20, max_compression_ratio=20),
            DecompressedTooLargeError,
        ),
        (
            lambda d: hostile_files.huge_line(d, line_bytes=5 << 20),
            ReadLimits(max_decompressed_bytes=4 << 20),
            DecompressedTooLargeError,
        ),
        (lambda d: hostile_files.parquet_rows_bomb(d), ReadLimits(max_rows=1_000_000), TooManyRowsError),
        (
            lambda d: hostile_files.parquet_rows_bomb(d, rows=2_000_000),
            ReadLimits(max_compression_ratio=20),
            CompressionRatioError,
        ),
        (
            lambda d: hostile_files.parquet_dictionary_bomb(d),
            ReadLimits(max_decompressed_bytes=4 << 20),
            DecompressedTooLargeError,
        ),
    ],
    ids=[
        "gzip",
        "gzip-members",
        "blank-lines",
        "latin-1",
        "random",
        "plain",
        "parquet-rows",
        "parquet-ratio",
        "parquet-dictionary",
    ],
)
def test_decompression_bombs_stop_at_the_limit(
    tmp_path: Path, build: Any, limits: ReadLimits, error: type[FormatError]
) -> None:
    path = build(tmp_path)
    with pytest.raises(error) as caught:
        for _ in read_batches(path, detect_file(path), limits=limits):
            pass
    assert caught.value.status == 413 and caught.value.details["value"] in (
        limits.max_rows,
        limits.max_decompressed_bytes,
        limits.max_compression_ratio,
    )


def test_rows_past_the_limit_fail_while_streaming() -> None:
    data = b"n\n" + b"".join(b"%d\n" % row for row in range(5000))
    reader = read_batches(
        io.BytesIO(data), detect_format(data), batch_rows=500, limits=ReadLimits(max_rows=4000, sample_rows=500)
    )
    loaded: list[int] = []
    with pytest.raises(TooManyRowsError, match="more than 4,000 rows") as caught:
        loaded.extend(batch.rows.num_rows for batch in reader)
    assert sum(loaded) == 4000 and caught.value.code == "too_many_rows"
    assert caught.value.details == {"limit": "maxUploadRows", "value": 4000}


def test_files_within_the_limits_load(tmp_path: Path) -> None:
    limits = ReadLimits(max_rows=1000, max_decompressed_bytes=1 << 20, max_compression_ratio=20)
    text = "id,name\n" + "".join(f"{row},name {row}\n" for row in range(1, 1001))
    path = tmp_path / "ok.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    assert len(rows_of(list(read_batches(path, detect_file(path), limits=limits)))) == 1000
    parquet = tmp_path / "ok.parquet"
    pq.write_table(pa.table({"id": range(1000), "name": [f"name {row % 7}" for row in range(1000)]}), parquet)
    assert len(rows_of(list(read_batches(parquet, detect_file(parquet), limits=limits)))) == 1000


DICTIONARY_PROBE = """
import json, sys
from northstar.datasets.formats import FormatError, ReadLimits, detect_file, read_batches

def peak_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024

path = sys.argv[1]
baseline = peak_mb()
try:
    for _ in read_batches(path, detect_file(path), limits=ReadLimits(max_decompressed_bytes=4 << 20)):
        pass
    result = "no error"
except FormatError as exc:
    result = type(exc).__name__
print(json.dumps({"result": result, "growth_mb": peak_mb() - baseline}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads peak memory from /proc")
def test_parquet_dictionary_bomb_is_refused_before_it_is_expanded(tmp_path: Path) -> None:
    """512 MB once expanded, from a 10 kB file: refused on the size the batch would have, measured unexpanded."""
    path = hostile_files.parquet_dictionary_bomb(tmp_path)
    completed = subprocess.run(
        [sys.executable, "-c", DICTIONARY_PROBE, str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    report = json.loads(completed.stdout)
    assert report["result"] == "DecompressedTooLargeError"
    assert report["growth_mb"] < 100, report


# Reserved and awkward column names -------------------------------------------------------------------------


def test_reserved_column_names_are_renamed_and_reported() -> None:
    batches = read_all(b"org_id,_row,ORG ID, Org-Id ,xmin,,name,Name,oid\n1,2,3,4,5,6,7,8,9\n")
    columns = batches[0].schema.columns
    assert [column.name for column in columns] == [
        "org_id_1",
        "row",
        "org_id_2",
        "org_id_3",
        "xmin_1",
        "column_6",
        "name",
        "name_2",
        "oid_1",
    ]
    assert rows_of(batches) == [dict(zip([column.name for column in columns], range(1, 10), strict=True))]
    assert column_renames(columns) == [
        {"label": "org_id", "name": "org_id_1", "reason": "reserved"},
        {"label": "ORG ID", "name": "org_id_2", "reason": "reserved"},
        {"label": "Org-Id", "name": "org_id_3", "reason": "reserved"},
        {"label": "xmin", "name": "xmin_1", "reason": "reserved"},
        {"label": "", "name": "column_6", "reason": "empty"},
        {"label": "Name", "name": "name_2", "reason": "duplicate"},
        {"label": "oid", "name": "oid_1", "reason": "reserved"},
    ]


def test_a_nul_in_a_header_is_kept_as_a_replacement_character() -> None:
    for data in (b"a\x00b,c\n1,2\n", b'{"a\\u0000b": 1, "c": 2}\n'):
        batches = read_all(data)
        assert [(column.name, column.label) for column in batches[0].schema.columns] == [
            ("a_b", "a\ufffdb"),
            ("c", "c"),
        ]
        assert rows_of(batches) == [{"a_b": 1, "c": 2}]


def test_reserved_names_are_refused_in_a_given_schema() -> None:
    for name in ("org_id", "_row", "ctid"):
        with pytest.raises(ValidationError, match=f"'{name}' is reserved"):
            DatasetSchemaRequest.model_validate({"columns": [{"name": name, "type": "int"}]})


# Type inference with a few bad values, and given types ------------------------------------------------------


def test_a_few_bad_values_are_rejects_and_the_column_keeps_its_type() -> None:
    amounts = [f"{row}.25" for row in range(1, 41)]
    days = [f"2024-01-{row % 28 + 1:02d}" for row in range(1, 41)]
    amounts[6], days[11] = "oops", "2024-13-45"
    text = "id,amount,day\n" + "".join(
        f"{row},{amount},{day}\n" for row, amount, day in zip(range(1, 41), amounts, days, strict=True)
    )
    batches = read_all(text.encode())
    assert [(column.name, column.type) for column in batches[0].schema.columns] == [
        ("id", "int"),
        ("amount", "float"),
        ("day", "date"),
    ]
    assert rejects_of(batches) == [
        (7, "amount", "not a number: 'oops'"),
        (12, "day", "not a date (YYYY-MM-DD, years 1 to 9999): '2024-13-45'"),
    ]
    assert len(rows_of(batches)) == 38


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["12"] * 19 + ["oops"], "int"),  # 95% parse: the type holds
        (["12"] * 18 + ["oops", "nope"], "string"),  # 90%: text
        (["12"] * 19 + ["1.5"], "float"),  # every value is a number, one with a fraction
        (["2024-01-31"] * 19 + ["2024-02-01T10:00:00Z"], "datetime"),
        (["2024-01-31"] * 19 + ["2024-13-45"], "date"),
        (["yes"] * 19 + ["maybe"], "bool"),
        (["12"] * 19 + ["0012"], "string"),  # a number with leading zeros is an identifier
        (["12"] * 19 + [""], "int"),  # empty values do not count
    ],
)
def test_a_type_wins_when_enough_sampled_values_parse(values: list[str], kind: str) -> None:
    schema = infer_schema(pa.table({"v": pa.array(values, pa.string())}))
    assert schema.columns[0].type == kind


def test_json_numbers_with_one_word_stay_numbers() -> None:
    lines = [json.dumps({"n": row}) for row in range(1, 41)]
    lines[4] = json.dumps({"n": "oops"})
    batches = read_all("\n".join(lines).encode())
    assert batches[0].schema.columns[0].type == "int"
    assert rejects_of(batches) == [(5, "n", "not an integer: 'oops'")]


def test_given_types_replace_inference_for_the_columns_named() -> None:
    types = TYPE_MAPPING.validate_python({"Amount": "string", "day": {"type": "date", "nullable": False}})
    batches = read_all(b"id,Amount,day\n1,12.5,2024-01-01\n2,oops,\n", types=types)
    assert [(column.name, column.type, column.nullable) for column in batches[0].schema.columns] == [
        ("id", "int", True),
        ("amount", "string", True),
        ("day", "date", False),
    ]
    assert rejects_of(batches) == [(2, "day", "missing value in a required column")]
    with pytest.raises(SchemaMismatchError, match="'nope', which the file does not have; its columns are 'id'"):
        read_all(b"id,Amount\n1,2\n", types=TYPE_MAPPING.validate_python({"nope": "int"}))


@pytest.mark.parametrize(
    ("mapping", "where", "words"),
    [
        ({"amount": "number"}, ("amount", "type"), "Input should be 'int'"),
        ({"amount": {"type": "decimal"}}, ("amount",), "a decimal needs a precision"),
        ({"amount": {"type": "int", "scale": 2}}, ("amount",), "only decimal columns take a precision and scale"),
        ({"amount": {"type": "int", "extra": 1}}, ("amount", "extra"), "Extra inputs"),
        ({}, (), "at least 1 item"),
        ({"a\x00b": "int"}, (), "NUL"),
    ],
)
def test_type_mappings_are_checked(mapping: dict[str, Any], where: tuple[str, ...], words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TYPE_MAPPING.validate_python(mapping)
    assert caught.value.errors()[0]["loc"] == where and words in caught.value.errors()[0]["msg"]


def test_a_date_alone_in_a_datetime_column_is_its_midnight() -> None:
    schema = DatasetSchema((ColumnDef("at", "datetime"),))
    batches = read_all(b"at\n2024-01-31\n2024-02-01T10:00:00+02:00\nnot a date\n", schema=schema)
    assert [row["at"] for row in rows_of(batches)] == [
        datetime(2024, 1, 31, tzinfo=UTC),
        datetime(2024, 2, 1, 8, tzinfo=UTC),
    ]
    assert [reject[:2] for reject in rejects_of(batches)] == [(3, "at")]
