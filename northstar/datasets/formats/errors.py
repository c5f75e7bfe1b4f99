"""Errors a user can act on: each says what is wrong with the file in plain words, never a stack trace."""

from __future__ import annotations

from northstar.core.http import AppError


class FormatError(AppError):
    """Base class: the file cannot be read as a dataset (422 unless a subclass says otherwise)."""

    status, code = 422, "invalid_file"


class UnsupportedFormatError(FormatError):
    """Not CSV, JSON, NDJSON or Parquet (e.g. an image or a spreadsheet)."""

    status, code = 415, "unsupported_file_type"


class EmptyFileError(FormatError):
    code = "empty_file"


class NoDataRowsError(FormatError):
    """The file parses but holds no data rows (e.g. a CSV with only a header)."""

    code = "no_data_rows"


class NoValidRowsError(FormatError):
    """Every data row was rejected; the rejects report says why."""

    code = "no_valid_rows"

    def __init__(self, rejected_rows: int) -> None:
        super().__init__(
            f"None of the {rejected_rows:,} data rows is valid; see the rejects report for the reasons",
            details={"rejectedRows": rejected_rows},
        )
        self.rejected_rows = rejected_rows


class TooManyColumnsError(FormatError):
    code = "too_many_columns"

    def __init__(self, found: int, limit: int) -> None:
        super().__init__(
            f"The file has {found:,} columns; at most {limit:,} are allowed", details={"columns": found, "limit": limit}
        )


class LineTooLongError(FormatError):
    code = "line_too_long"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"A row is longer than {limit:,} bytes, the most a row may hold (is the delimiter or the quoting wrong?)",
            details={"limitBytes": limit},
        )


class CorruptFileError(FormatError):
    """Damaged or truncated data, e.g. a gzip file cut short during upload."""

    code = "corrupt_file"


class TextEncodingError(FormatError):
    code = "encoding_error"


class MalformedFileError(FormatError):
    """The structure is broken beyond single rows (e.g. a JSON array that never closes)."""

    code = "malformed_file"


class SchemaMismatchError(FormatError):
    """The file lacks columns the target schema requires."""

    code = "schema_mismatch"


class LimitExceededError(FormatError):
    """The upload passes a configured limit (a decompression bomb, or simply too much data): 413.

    ``details`` names the limit (``limit``, as in the settings) and its value, so a client can tell which one.
    """

    status = 413

    def __init__(self, code: str, message: str, *, limit: str, value: float) -> None:
        super().__init__(message, code=code, details={"limit": limit, "value": value})


class DecompressedTooLargeError(LimitExceededError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            "decompressed_too_large",
            f"The upload holds more than {limit:,} bytes of data once decompressed, the most one upload may hold",
            limit="maxDecompressedBytes",
            value=limit,
        )


class CompressionRatioError(LimitExceededError):
    def __init__(self, ratio: float, compressed_bytes: int) -> None:
        super().__init__(
            "compression_ratio_too_high",
            f"The upload expands to more than {ratio:g} times its {compressed_bytes:,} bytes when "
            "decompressed, the most allowed (it looks like a decompression bomb)",
            limit="maxCompressionRatio",
            value=ratio,
        )


class TooManyRowsError(LimitExceededError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            "too_many_rows",
            f"The upload has more than {limit:,} rows, the most one upload may hold",
            limit="maxUploadRows",
            value=limit,
        )
