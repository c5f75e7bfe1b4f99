"""Ingestion's functions are planned at each call (``plan_cache_mode = force_custom_plan``).

PL/pgSQL keeps a generic plan for a function's statements once it has run a few times, made from what the tables
looked like then. A month's event partitions start empty and unanalyzed, so every index led by ``site_id`` looks
equally cheap, and the generic plan of the duplicate check (``NOT EXISTS`` on ``site_id`` and ``id``) could keep an
index that reads all of a site's stored events for each new one until autovacuum analyzed the partition: a flush of
200 events went from 27 ms to 233 ms within 12,000 rows. Planned at each call with its actual arguments, the check
takes the ``(site_id, id)`` index as the partitions grow, and the month bound prunes partitions at planning time. A
later migration that replaces either function must set this again (``CREATE OR REPLACE`` drops it).

Revision ID: 0026
Revises: 0022
Create Date: 2026-12-10 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTIONS = ("socialproof.ingest_staged(uuid, timestamptz)", "socialproof.ingest_profiled(uuid, timestamptz)")


def upgrade() -> None:
    for function in FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function} SET plan_cache_mode = force_custom_plan")


def downgrade() -> None:
    for function in FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function} RESET plan_cache_mode")
