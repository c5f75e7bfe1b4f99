"""Builders of hostile upload files: each writes to a directory, returns the path, and is sized by parameters.

Large files are written in pieces, so building them costs no more memory than reading them should.
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from pathlib import Path

_PIECE = 1 << 20


def png_named_csv(directory: Path, name: str = "data.csv") -> Path:
    """A real (1x1 pixel) PNG image with a CSV name."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    image = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )
    path = directory / name
    path.write_bytes(image)
    return path


def truncated_gzip(directory: Path, rows: int = 200_000, keep: float = 0.5, name: str = "data.csv.gz") -> Path:
    """A gzip-compressed CSV cut short, as an interrupted upload leaves it."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb") as compressed:
        compressed.write(b"id,name,amount\n")
        for start in range(0, rows, 10_000):
            compressed.write(
                b"".join(b"%d,name %d,%d.25\n" % (row, row, row) for row in range(start, min(rows, start + 10_000)))
            )
    data = buffer.getvalue()
    path = directory / name
    path.write_bytes(data[: max(20, int(len(data) * keep))])
    return path


def huge_line(directory: Path, line_bytes: int = 50 << 20, name: str = "huge.csv") -> Path:
    """A CSV whose second data row is one enormous field on a single line."""
    path = directory / name
    with path.open("wb") as file:
        file.write(b"id,text\n1,short\n2,")
        for start in range(0, line_bytes, _PIECE):
            file.write(b"x" * min(_PIECE, line_bytes - start))
        file.write(b"\n3,after\n")
    return path


def huge_json_line(directory: Path, line_bytes: int = 50 << 20, name: str = "huge.ndjson") -> Path:
    """NDJSON whose second record holds one enormous string."""
    path = directory / name
    with path.open("wb") as file:
        file.write(b'{"id": 1}\n{"id": 2, "text": "')
        for start in range(0, line_bytes, _PIECE):
            file.write(b"y" * min(_PIECE, line_bytes - start))
        file.write(b'"}\n{"id": 3}\n')
    return path


def wide_csv(directory: Path, columns: int = 10_000, rows: int = 3, name: str = "wide.csv") -> Path:
    path = directory / name
    with path.open("w", encoding="utf-8") as file:
        file.write(",".join(f"column {index}" for index in range(columns)) + "\n")
        for row in range(rows):
            file.write(",".join(str(row * columns + index) for index in range(columns)) + "\n")
    return path


def invalid_utf8(
    directory: Path, clean_rows: int = 20_000, bad_rows: tuple[int, ...] = (20_001, 20_003), name: str = "mixed.csv"
) -> Path:
    """UTF-8 CSV with stray non-UTF-8 bytes in the given data rows, after a clean head (``clean_rows`` rows).

    Rows are numbered from 1 after the header; ``bad_rows`` must be greater than ``clean_rows``.
    """
    path = directory / name
    last = max(bad_rows) + 2
    with path.open("wb") as file:
        file.write(b"id,name\n")
        for row in range(1, last + 1):
            file.write(b"%d,bad \xff\xfe bytes\n" % row if row in bad_rows else b"%d,caf\xc3\xa9 %d\n" % (row, row))
    return path


def legacy_encoding_csv(directory: Path, encoding: str = "latin-1", name: str = "legacy.csv") -> Path:
    """A semicolon CSV in a legacy encoding, as spreadsheets in Western Europe export it."""
    text = "nom;ville;montant\nJosé;Besançon;12\nÉlodie;São Paulo;7\nZoë;Köln;3\n"
    path = directory / name
    path.write_bytes(text.encode(encoding))
    return path


def empty_file(directory: Path, name: str = "empty.csv") -> Path:
    path = directory / name
    path.write_bytes(b"")
    return path


def header_only(directory: Path, name: str = "header.csv") -> Path:
    path = directory / name
    path.write_bytes(b"id,name,amount\n")
    return path


def unclosed_json_array(directory: Path, rows: int = 1000, name: str = "cut.json") -> Path:
    """A JSON array cut in the middle of an object."""
    body = ",".join(f'{{"id": {row}, "name": "n{row}"}}' for row in range(rows))
    path = directory / name
    path.write_text("[" + body[: len(body) - 7], encoding="utf-8")
    return path


def formula_rows() -> list[dict[str, object]]:
    """Cells a spreadsheet would execute, and cells that merely look similar (numbers, plain text)."""
    return [
        {"id": 1, "note": '=HYPERLINK("http://evil.example","x")', "amount": -5},
        {"id": 2, "note": "+cmd|' /C calc'!A0", "amount": 3},
        {"id": 3, "note": "-2+3", "amount": 0},
        {"id": 4, "note": "@SUM(A1:A2)", "amount": 1},
        {"id": 5, "note": "\tleading tab", "amount": 2},
        {"id": 6, "note": "\rleading return", "amount": 2},
        {"id": 7, "note": "-42.5", "amount": 7},
        {"id": 8, "note": "plain = text", "amount": 8},
    ]


def _gzip_pieces(path: Path, pieces: list[tuple[bytes, int]], *, members: int = 1) -> Path:
    """Write ``piece * count`` for each (piece, count) through gzip, a megabyte at a time, in ``members`` members."""
    with path.open("wb") as file:
        for member in range(members):
            with gzip.GzipFile(fileobj=file, mode="wb", compresslevel=9, mtime=0) as compressed:
                for piece, count in pieces:
                    share = count // members + (count % members if member == members - 1 else 0)
                    per_write = max(1, _PIECE // len(piece))
                    for start in range(0, share, per_write):
                        compressed.write(piece * min(per_write, share - start))
    return path


def gzip_bomb(
    directory: Path, decompressed_bytes: int = 64 << 20, *, members: int = 1, name: str = "bomb.csv.gz"
) -> Path:
    """A gzip CSV of two columns of zeros: about a thousand times smaller than what it expands to."""
    return _gzip_pieces(directory / name, [(b"a,b\n", 1), (b"0,0\n", decompressed_bytes // 4)], members=members)


def blank_lines_bomb(directory: Path, decompressed_bytes: int = 64 << 20, name: str = "blank.csv.gz") -> Path:
    """A gzip CSV that is a header and then only empty lines: no rows to count, just bytes to read."""
    return _gzip_pieces(directory / name, [(b"a,b\n1,2\n", 1), (b"\n", decompressed_bytes)])


def latin1_gzip_bomb(directory: Path, decompressed_bytes: int = 64 << 20, name: str = "legacy.csv.gz") -> Path:
    """A gzip CSV in Latin-1 (transcoded before parsing), mostly one repeated row."""
    return _gzip_pieces(
        directory / name,
        [("nom;ville\n".encode("latin-1"), 1), ("José;Besançon\n".encode("latin-1"), decompressed_bytes // 15)],
    )


def random_gzip_csv(directory: Path, decompressed_bytes: int, name: str = "random.csv.gz") -> Path:
    """A gzip CSV of random hexadecimal text: it compresses only about twofold, as real data does."""
    import os

    path = directory / name
    with path.open("wb") as file, gzip.GzipFile(fileobj=file, mode="wb", mtime=0) as compressed:
        compressed.write(b"key\n")
        for start in range(0, decompressed_bytes, _PIECE):
            line_count = min(_PIECE, decompressed_bytes - start) // 33 + 1
            digits = os.urandom(16 * line_count).hex().encode()
            compressed.write(b"".join(digits[index : index + 32] + b"\n" for index in range(0, len(digits), 32)))
    return path


def nested_gzip(directory: Path, name: str = "twice.csv.gz") -> Path:
    path = directory / name
    path.write_bytes(gzip.compress(gzip.compress(b"a,b\n" + b"0,0\n" * 100_000)))
    return path


def zip_of_csv(directory: Path, name: str = "data.zip") -> Path:
    import zipfile

    path = directory / name
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.csv", b"a,b\n" + b"0,0\n" * 100_000)
    return path


def parquet_rows_bomb(directory: Path, rows: int = 10_000_000, name: str = "rows.parquet") -> Path:
    """A Parquet file of a few kilobytes whose footer declares ``rows`` rows of one repeated value."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = directory / name
    schema = pa.schema([("n", pa.int64())])
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        block = pa.table({"n": pa.array([0] * min(rows, 1_000_000), pa.int64())})
        for start in range(0, rows, block.num_rows):
            writer.write_table(block.slice(0, min(block.num_rows, rows - start)))
    return path


def parquet_dictionary_bomb(
    directory: Path, value_bytes: int = 64 << 10, rows: int = 8192, name: str = "dictionary.parquet"
) -> Path:
    """A Parquet file of a few kilobytes holding one long text value in its dictionary, repeated on every row:
    ``value_bytes * rows`` once expanded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = directory / name
    values = pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), pa.array(["x" * value_bytes]))
    pq.write_table(
        pa.table({"id": pa.array(range(rows), pa.int64()), "text": values}),
        path,
        compression="zstd",
        use_dictionary=["text"],
        store_schema=False,
    )
    return path
