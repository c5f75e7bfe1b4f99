"""Every module's tables, imported so that metadata is complete for migrations and checks."""

from northstar.accounts import models as accounts_models
from northstar.audit import models as audit_models
from northstar.core import idempotency
from northstar.core.db import Base
from northstar.datasets import models as datasets_models
from northstar.integrations import models as integrations_models
from northstar.metrics import models as metrics_models
from northstar.socialproof import models as socialproof_models

MODEL_MODULES = (accounts_models, audit_models, idempotency, integrations_models, datasets_models, metrics_models,
                 socialproof_models)
target_metadata = Base.metadata


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Compare only our schemas' objects; the queue's tables, Alembic's own and the partitioned event tables
    (created by ``socialproof.ensure_event_partitions`` and written with SQL) are managed elsewhere."""
    if type_ == "schema":
        return name in ("auth", "core", "integrations", "jobs", "metrics", "socialproof")
    return not (type_ in ("table", "index") and name is not None and "notification_events" in name)
