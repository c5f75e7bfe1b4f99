"""Every installed module's tables, from the manifests, so that metadata is complete for migrations and checks."""

from northstar.core.db import Base
from northstar.modules import MANIFESTS

MODEL_MODULES = tuple(module for manifest in MANIFESTS for module in manifest.model_modules)
SCHEMAS = frozenset(schema for manifest in MANIFESTS for schema in manifest.schemas)
SQL_MANAGED_TABLES = tuple(name for manifest in MANIFESTS for name in manifest.sql_managed_tables)
target_metadata = Base.metadata


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Compare only the modules' schemas' objects; the queue's tables, Alembic's own and the tables a module keeps
    with SQL (such as partitions) are managed elsewhere."""
    if type_ == "schema":
        return name in SCHEMAS
    return not (type_ in ("table", "index") and name is not None and any(part in name for part in SQL_MANAGED_TABLES))
