"""Job queue: Procrastinate's schema, usable by the app role so jobs enqueue in request transactions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 02:10:00
"""

from collections.abc import Sequence

from alembic import op
from procrastinate.schema import SchemaManager

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUE_TABLES = ("procrastinate_jobs", "procrastinate_events", "procrastinate_periodic_defers", "procrastinate_workers")


def upgrade() -> None:
    op.execute(SchemaManager.get_schema())
    for table in QUEUE_TABLES:
        op.execute(f"GRANT SELECT, INSERT, UPDATE ON public.{table} TO northstar_app")
    op.execute("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO northstar_app")


def downgrade() -> None:
    for table in QUEUE_TABLES:
        op.execute(f"DROP TABLE IF EXISTS public.{table} CASCADE")
    op.execute("""
        DO $$ DECLARE fn regprocedure;
        BEGIN
          FOR fn IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                    WHERE n.nspname = 'public' AND p.proname LIKE 'procrastinate%' LOOP
            EXECUTE 'DROP FUNCTION ' || fn || ' CASCADE';
          END LOOP;
        END $$""")
    op.execute(
        "DROP TYPE IF EXISTS procrastinate_job_to_defer_v1, procrastinate_job_event_type, "
        "procrastinate_job_status CASCADE"
    )
