"""The data generation engine: a declarative schema in, reproducible Arrow record batches out.

A pure library (no database, no HTTP): the data service validates a ``GenerationSpec`` in the
request, loads the datasets ``referenced_datasets`` names, and a worker streams ``generate`` (or
``generate_range`` when resuming) into its sink.
"""

from northstar.datasets.generation.columns import (
    AmountColumn,
    BoolColumn,
    Column,
    ColumnSpec,
    DateColumn,
    DatetimeColumn,
    DecimalColumn,
    EmailColumn,
    EnumColumn,
    FloatColumn,
    IntColumn,
    LogNormal,
    Normal,
    PatternColumn,
    RealisticColumn,
    ReferenceColumn,
    Sequential,
    TemporalNormal,
    TextColumn,
    Uniform,
    UuidColumn,
    Zipf,
)
from northstar.datasets.generation.engine import (
    CHUNK_ROWS,
    DEFAULT_BATCH_ROWS,
    References,
    arrow_schema,
    dictionary_columns,
    generate,
    generate_range,
)
from northstar.datasets.generation.presets import PRESETS, PresetInfo, PresetName, list_presets
from northstar.datasets.generation.spec import (
    MAX_ROWS,
    MAX_SEED,
    DatasetReference,
    GenerationSpec,
    referenced_datasets,
    with_seed,
)
from northstar.datasets.generation.vocab import Locale

__all__ = [
    "CHUNK_ROWS",
    "DEFAULT_BATCH_ROWS",
    "MAX_ROWS",
    "MAX_SEED",
    "PRESETS",
    "AmountColumn",
    "BoolColumn",
    "Column",
    "ColumnSpec",
    "DatasetReference",
    "DateColumn",
    "DatetimeColumn",
    "DecimalColumn",
    "EmailColumn",
    "EnumColumn",
    "FloatColumn",
    "GenerationSpec",
    "IntColumn",
    "Locale",
    "LogNormal",
    "Normal",
    "PatternColumn",
    "PresetInfo",
    "PresetName",
    "RealisticColumn",
    "ReferenceColumn",
    "References",
    "Sequential",
    "TemporalNormal",
    "TextColumn",
    "Uniform",
    "UuidColumn",
    "Zipf",
    "arrow_schema",
    "dictionary_columns",
    "generate",
    "generate_range",
    "list_presets",
    "referenced_datasets",
    "with_seed",
]
