"""File formats for import and export (seed 003): detection, streaming reads with rejects, COPY input, writers.

A pure library: no database, no HTTP. Import is ``detect_format`` on the first bytes, then ``read_batches``
(validated Arrow batches plus rejects, bounded memory), then ``to_copy_csv`` for PostgreSQL ``COPY``.
Export is ``open_writer`` fed with Arrow batches.

Choices a caller should know:

- Row numbers in rejects count data records from 1: the CSV header is not counted, blank lines are not
  counted, a quoted value spanning lines is one record; for JSON it is the n-th object (or line).
- Encodings: a BOM decides; otherwise UTF-8 if the first 64 KiB decode as UTF-8, else a guess (Windows-1252
  for Latin text) and the whole file is transcoded. Bytes that are not UTF-8 further down a UTF-8 file
  reject their rows (``column`` says where); undecodable bytes in a transcoded file fail the import clearly.
- For non-text columns, ``NULL``, ``None``, ``NA``, ``N/A``, ``nil`` and ``\\N`` (any case) mean null;
  in text columns they are kept as written. An unquoted empty CSV field is null, a quoted one (``""``) is ''.
- Date-times without an offset are taken as UTC. Inference never picks ``decimal`` (numbers with a fraction
  become ``float``) and keeps numbers with leading zeros (zip codes, phone numbers) as text.
- Limits (``ReadLimits``): 1,000 columns and 1 MiB per row or JSON record by default; memory is a few
  blocks of that size whatever the file size.
"""

from northstar.datasets.formats.detect import (
    DELIMITERS,
    HEAD_BYTES,
    Compression,
    CsvDialect,
    DetectedFormat,
    FormatKind,
    detect_file,
    detect_format,
    sniff_dialect,
)
from northstar.datasets.formats.errors import (
    CorruptFileError,
    EmptyFileError,
    FormatError,
    LineTooLongError,
    MalformedFileError,
    NoDataRowsError,
    NoValidRowsError,
    SchemaMismatchError,
    TextEncodingError,
    TooManyColumnsError,
    UnsupportedFormatError,
)
from northstar.datasets.formats.pgcopy import COPY_OPTIONS, to_copy_csv
from northstar.datasets.formats.reading import DEFAULT_BATCH_ROWS, read_batches, read_sample
from northstar.datasets.formats.schema import (
    ColumnDef,
    ColumnDefRequest,
    ColumnKind,
    DatasetSchema,
    DatasetSchemaRequest,
    normalise_column_names,
    safe_identifier,
)
from northstar.datasets.formats.sources import ReadLimits, Source
from northstar.datasets.formats.validate import REJECTS_SCHEMA, ValidatedBatch, infer_schema, validate_batch
from northstar.datasets.formats.writing import (
    EXPORT_FORMATS,
    BatchWriter,
    CsvBatchWriter,
    ExportFormat,
    file_extension,
    file_name_problem,
    guard_formulas,
    mime_type,
    open_writer,
    safe_file_name,
)

__all__ = [
    "COPY_OPTIONS",
    "DEFAULT_BATCH_ROWS",
    "DELIMITERS",
    "EXPORT_FORMATS",
    "HEAD_BYTES",
    "REJECTS_SCHEMA",
    "BatchWriter",
    "ColumnDef",
    "ColumnDefRequest",
    "ColumnKind",
    "Compression",
    "CorruptFileError",
    "CsvBatchWriter",
    "CsvDialect",
    "DatasetSchema",
    "DatasetSchemaRequest",
    "DetectedFormat",
    "EmptyFileError",
    "ExportFormat",
    "FormatError",
    "FormatKind",
    "LineTooLongError",
    "MalformedFileError",
    "NoDataRowsError",
    "NoValidRowsError",
    "ReadLimits",
    "SchemaMismatchError",
    "Source",
    "TextEncodingError",
    "TooManyColumnsError",
    "UnsupportedFormatError",
    "ValidatedBatch",
    "detect_file",
    "detect_format",
    "file_extension",
    "file_name_problem",
    "guard_formulas",
    "infer_schema",
    "mime_type",
    "normalise_column_names",
    "open_writer",
    "read_batches",
    "read_sample",
    "safe_file_name",
    "safe_identifier",
    "sniff_dialect",
    "to_copy_csv",
    "validate_batch",
]
