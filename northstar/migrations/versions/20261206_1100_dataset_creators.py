"""Datasets record who created them, so members change only their own (datasets made before: their job's creator).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 11:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE jobs.datasets ADD COLUMN created_by uuid")
    op.execute("""
        UPDATE jobs.datasets AS d SET created_by = j.created_by
        FROM jobs.jobs AS j WHERE j.org_id = d.org_id AND j.id = d.job_id
    """)


def downgrade() -> None:
    op.execute("ALTER TABLE jobs.datasets DROP COLUMN created_by")
