"""Typed batches as input for PostgreSQL ``COPY ... FROM STDIN (FORMAT csv)``, written by Arrow in C++.

Arrow's "needed" quoting quotes every string and never a null, which is exactly how PostgreSQL's CSV format
tells an empty string (``""``) from NULL (nothing). Other values print in forms PostgreSQL parses back
exactly: ``true``/``false``, decimals as written, ISO dates, timestamps as ``2024-01-31 12:00:00.000000Z``
(quoted, which PostgreSQL does not mind), floats in shortest round-trip form (``nan``/``inf`` included).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.csv as pa_csv

from northstar.datasets.formats.arrowops import is_zoned_timestamp, utc_text

COPY_OPTIONS = "(FORMAT csv)"  # PostgreSQL's CSV defaults: delimiter ',', quote '"', NULL as an unquoted empty
_WRITE_OPTIONS = pa_csv.WriteOptions(include_header=False, delimiter=",", quoting_style="needed")


def to_copy_csv(batch: pa.RecordBatch) -> bytes:
    """The rows as ``COPY ... FROM STDIN (FORMAT csv)`` data, columns in the batch's order."""
    columns = [utc_text(column) if is_zoned_timestamp(column.type) else column for column in batch.columns]
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(pa.RecordBatch.from_arrays(columns, names=batch.schema.names), sink, _WRITE_OPTIONS)
    return sink.getvalue().to_pybytes()
