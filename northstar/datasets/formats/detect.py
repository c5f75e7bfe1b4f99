"""Which format a file is in, decided from its first bytes; the file name and declared type only break ties.

Names and ``Content-Type`` headers are whatever the client says; the bytes are what we will parse. A PNG named
``data.csv`` is rejected here with a sentence a person understands, before any parser sees it.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import charset_normalizer
import orjson

from northstar.datasets.formats.errors import CorruptFileError, EmptyFileError, UnsupportedFormatError

HEAD_BYTES = 64 * 1024  # what detect_format needs to see; the caller reads this much from the start
FormatKind = Literal["csv", "json", "ndjson", "parquet"]
Compression = Literal["none", "gzip"]
DELIMITERS = (",", "\t", ";", "|")
SUPPORTED = "CSV, JSON, NDJSON or Parquet"
_SNIFF_ROWS = 200
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")
_HIGH_BYTE_RUNS = re.compile(rb"[\x80-\xff]+")


@dataclass(frozen=True, slots=True)
class CsvDialect:
    delimiter: str = ","
    quote_char: str = '"'
    header: bool = True


@dataclass(frozen=True, slots=True)
class DetectedFormat:
    """What the reader needs: replace fields (``dataclasses.replace``) to honour a user's override."""

    kind: FormatKind
    compression: Compression = "none"
    encoding: str = "utf-8"  # a Python codec name; other encodings are transcoded to UTF-8 chunk by chunk
    dialect: CsvDialect | None = None  # CSV only


_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (0, b"\xff\xd8\xff", "a JPEG image"),
    (0, b"GIF87a", "a GIF image"),
    (0, b"GIF89a", "a GIF image"),
    (0, b"II*\x00", "a TIFF image"),
    (0, b"MM\x00*", "a TIFF image"),
    (0, b"%PDF-", "a PDF document"),
    (0, b"{\\rtf", "an RTF document"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Microsoft Office file (such as .xls or .doc)"),
    (0, b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (0, b"Rar!\x1a\x07", "a RAR archive"),
    (0, b"\xfd7zXZ\x00", "an xz archive"),
    (0, b"\x28\xb5\x2f\xfd", "a Zstandard archive"),
    (4, b"1AY&SY", "a bzip2 archive"),
    (0, b"\x7fELF", "a program (ELF executable)"),
    (0, b"SQLite format 3\x00", "an SQLite database"),
    (0, b"ARROW1", "an Arrow IPC file"),
    (0, b"Obj\x01", "an Avro file"),
    (257, b"ustar", "a tar archive"),
    (4, b"ftyp", "a video or audio file (MP4/MOV)"),
    (0, b"OggS", "an Ogg media file"),
    (0, b"\x1a\x45\xdf\xa3", "a Matroska/WebM video"),
)
_BOMS: tuple[tuple[bytes, str, str], ...] = (  # (bom, encoding for the stream, decoder for the head)
    (codecs.BOM_UTF32_LE, "utf-32", "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "utf-32"),
    (codecs.BOM_UTF8, "utf-8", "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16", "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "utf-16"),
)


def detect_format(head: bytes, filename: str | None = None, declared_type: str | None = None) -> DetectedFormat:
    """Decide kind, compression, encoding and CSV dialect from the first ``HEAD_BYTES`` of a file."""
    if not head.strip():
        raise EmptyFileError("The file is empty")
    compression: Compression = "none"
    if head.startswith(b"\x1f\x8b"):
        compression, head = "gzip", _gunzip_head(head)
        if head.startswith(b"\x1f\x8b"):
            raise UnsupportedFormatError("This is a gzip file inside a gzip file; compress the data only once")
        if not head.strip():
            raise EmptyFileError("The gzip file holds an empty file")
    if head.startswith(b"PAR1"):
        return DetectedFormat("parquet", compression, "binary")
    _reject_known_binary(head)
    encoding, text = _decode_head(head)
    tab_hint = _wants_tab(filename, declared_type)
    kind = _text_kind(text.lstrip())
    if kind == "csv":
        return DetectedFormat("csv", compression, encoding, sniff_dialect(text, prefer_tab=tab_hint))
    return DetectedFormat(kind, compression, encoding)


def detect_file(
    source: str | Path | BinaryIO, filename: str | None = None, declared_type: str | None = None
) -> DetectedFormat:
    """``detect_format`` on the head of a path or a seekable file object (rewound afterwards)."""
    if isinstance(source, str | Path):
        with open(source, "rb") as file:
            head = file.read(HEAD_BYTES)
        return detect_format(head, filename or Path(source).name, declared_type)
    start = source.tell()
    head = source.read(HEAD_BYTES)
    source.seek(start)
    return detect_format(head, filename, declared_type)


def _wants_tab(filename: str | None, declared_type: str | None) -> bool:
    name = (filename or "").lower().removesuffix(".gz")
    return name.endswith((".tsv", ".tab")) or (declared_type or "").lower().startswith("text/tab-separated-values")


def _gunzip_head(head: bytes) -> bytes:
    """Decompress as much of the head as possible; a head cut mid-stream is normal, a bad stream is not."""
    out = bytearray()
    data = head
    try:
        while data and len(out) < HEAD_BYTES:
            decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            out += decompressor.decompress(data, HEAD_BYTES - len(out))
            if not decompressor.eof:
                break
            data = decompressor.unused_data  # concatenated gzip members are one stream
    except zlib.error as exc:
        raise CorruptFileError("The file starts like gzip but its data is corrupt") from exc
    return bytes(out)


def _reject_known_binary(head: bytes) -> None:
    for offset, magic, what in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            raise UnsupportedFormatError(f"This looks like {what}, not {SUPPORTED}")
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        if b"xl/" in head:
            raise UnsupportedFormatError(
                f"This looks like an Excel workbook (.xlsx), not {SUPPORTED}; save the sheet as CSV and upload that"
            )
        if b"opendocument.spreadsheet" in head:
            raise UnsupportedFormatError(
                f"This looks like an OpenDocument spreadsheet (.ods), not {SUPPORTED}; "
                "save the sheet as CSV and upload that"
            )
        raise UnsupportedFormatError(f"This looks like a ZIP archive, not {SUPPORTED}")


def _decode_head(head: bytes) -> tuple[str, str]:
    """(stream encoding, decoded head): BOM first, then UTF-8, then a statistical guess for legacy encodings."""
    for bom, encoding, decoder in _BOMS:
        if head.startswith(bom):
            return encoding, _decode_partial(head, decoder, "text with a byte-order mark")
    utf16 = _utf16_without_bom(head)
    if utf16:
        return utf16, _decode_partial(head, utf16, "UTF-16 text")
    if len(_CONTROL_BYTES.findall(head[:8192])) > max(8, len(head[:8192]) // 50):
        raise UnsupportedFormatError(f"This looks like binary data, not {SUPPORTED}")
    try:
        return "utf-8", codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        pass
    if _isolated_high_bytes(head):  # accents inside mostly-ASCII words: a Western single-byte encoding
        encoding = "cp1252" if _decodes(head, "cp1252") else "latin-1"
        return encoding, head.decode(encoding)
    best = charset_normalizer.from_bytes(head).best()
    if best is None:
        raise UnsupportedFormatError(f"This is not text in any encoding we recognise, so not {SUPPORTED}")
    return best.encoding, head.decode(best.encoding, errors="replace")


def _isolated_high_bytes(head: bytes) -> bool:
    """Latin-script text has single non-ASCII bytes between ASCII letters; Cyrillic, Greek or CJK text in a
    legacy encoding has runs of them (whole words), which is what statistical detection is good at."""
    runs = _HIGH_BYTE_RUNS.findall(head)
    return sum(map(len, runs)) < 1.5 * len(runs)


def _decode_partial(head: bytes, decoder: str, what: str) -> str:
    try:
        return codecs.getincrementaldecoder(decoder)().decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise UnsupportedFormatError(f"The file claims to be {what} but does not decode as such") from exc


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 without a BOM shows as a NUL in every other byte of mostly-ASCII text."""
    sample = head[:4096]
    if len(sample) < 4 or b"\x00" not in sample:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


def _text_kind(text: str) -> FormatKind:
    if not text:
        raise EmptyFileError("The file holds only whitespace")
    lowered = text[:64].lower()
    if lowered.startswith("<?xml"):
        raise UnsupportedFormatError(f"This looks like an XML document, not {SUPPORTED}")
    if lowered.startswith(("<!doctype html", "<html")):
        raise UnsupportedFormatError(f"This looks like a web page (HTML), not {SUPPORTED}")
    if text[0] == "[":
        return _array_kind(text)
    if text[0] == "{":
        return _object_kind(text)
    return "csv"


def _array_kind(text: str) -> FormatKind:
    rest = text[1:].lstrip()
    if not rest or rest[0] in "{]":
        return "json"
    if rest[0] in '["-0123456789' or rest.startswith(("true", "false", "null")):
        raise UnsupportedFormatError(
            "This is a JSON array of plain values or arrays; expected an array of "
            'objects, one per row, such as [{"id": 1}, {"id": 2}]'
        )
    return "csv"  # e.g. a CSV header like "[id],[name]"


def _object_kind(text: str) -> FormatKind:
    newline = text.find("\n")
    if newline < 0:
        return "ndjson"  # one long line, or a single-record file
    try:
        first = orjson.loads(text[:newline])
    except orjson.JSONDecodeError:
        first = None
    if isinstance(first, dict):
        return "ndjson"
    raise UnsupportedFormatError(
        "This is a single JSON object spread over several lines; expected a JSON array "
        "of objects or one object per line (NDJSON)"
    )


def sniff_dialect(text: str, *, prefer_tab: bool = False) -> CsvDialect:
    """Delimiter by consistency of field counts; header by whether row 1 breaks the types of the rows below."""
    sample = _complete_lines(text)
    best: tuple[tuple[float, bool, int, int], str, list[list[str]]] | None = None
    for priority, delimiter in enumerate(DELIMITERS):
        rows = _parse_rows(sample, delimiter, '"')
        counts = [len(row) for row in rows]
        if not counts:
            continue
        modal = max(set(counts), key=counts.count)
        consistency = counts.count(modal) / len(counts)
        score = (consistency if modal > 1 else 0.0, prefer_tab and delimiter == "\t", modal, -priority)
        if best is None or score > best[0]:
            best = (score, delimiter, rows)
    if best is None:
        return CsvDialect()
    _, delimiter, rows = best
    quote_char = _quote_char(sample, delimiter)
    if quote_char != '"':
        rows = _parse_rows(sample, delimiter, quote_char)
    return CsvDialect(delimiter, quote_char, _has_header(rows))


def _complete_lines(text: str) -> str:
    """Drop the last line when the head was cut inside it (unless it is the only line)."""
    if text.endswith(("\n", "\r")):
        return text
    cut = max(text.rfind("\n"), text.rfind("\r"))
    return text[: cut + 1] if cut > 0 else text


def _parse_rows(sample: str, delimiter: str, quote_char: str) -> list[list[str]]:
    rows: list[list[str]] = []
    try:
        for row in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter, quotechar=quote_char):
            if row:
                rows.append(row)
            if len(rows) >= _SNIFF_ROWS:
                break
    except csv.Error:
        pass
    return rows


def _quote_char(sample: str, delimiter: str) -> str:
    if '"' in sample:
        return '"'
    pattern = rf"(^|{re.escape(delimiter)})'[^'\n]*'({re.escape(delimiter)}|\r?$)"
    return "'" if re.search(pattern, sample, re.MULTILINE) else '"'


_CELL_CLASSES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("number", re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")),
    ("datetime", re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([zZ]|[+-]\d{2}:?\d{2})?)?")),
    ("bool", re.compile(r"(?i)true|false")),
)


def _cell_class(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    return next((name for name, pattern in _CELL_CLASSES if pattern.fullmatch(value)), "text")


def _has_header(rows: list[list[str]]) -> bool:
    """A header row is text above typed columns; with only text columns, assume a header if its cells are
    distinct and filled (the common case; the user can override)."""
    if len(rows) < 2:
        return True
    first, body = rows[0], rows[1:]
    header_votes = data_votes = 0
    for index, cell in enumerate(first):
        classes = {_cell_class(row[index]) for row in body if index < len(row)} - {None}
        if len(classes) != 1 or "text" in classes:
            continue
        if _cell_class(cell) in classes:
            data_votes += 1
        elif cell.strip():
            header_votes += 1
    if header_votes or data_votes:
        return header_votes >= data_votes
    names = [cell.strip() for cell in first]
    return all(names) and len(set(names)) == len(names) and all(_cell_class(name) == "text" for name in names)
