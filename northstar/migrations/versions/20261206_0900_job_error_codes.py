"""Job failures carry a stable code beside their message; job events carry the code and the expected row count.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PUBLISH = """
    CREATE OR REPLACE FUNCTION jobs.publish_job_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('northstar_events', json_build_object(
        'org', NEW.org_id,
        'topic', CASE WHEN TG_OP = 'UPDATE' AND OLD.status = NEW.status THEN 'job.progress' ELSE 'job.status' END,
        'data', json_build_object('jobId', NEW.id, 'type', NEW.type, 'status', NEW.status,
                                  'progress', NEW.progress, 'rowsDone', NEW.rows_done, {extra}
                                  'error', left(NEW.error_message, 1000)))::text);
      RETURN NULL;
    END $$"""


def upgrade() -> None:
    op.execute("ALTER TABLE jobs.jobs ADD COLUMN error_code varchar(60)")
    op.execute(PUBLISH.format(extra="'rowsTotal', NEW.rows_total, 'errorCode', NEW.error_code,"))


def downgrade() -> None:
    op.execute(PUBLISH.format(extra=""))
    op.execute("ALTER TABLE jobs.jobs DROP COLUMN error_code")
