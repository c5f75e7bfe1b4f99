"""SCIM Groups are the organization's teams: ``core.teams.scim_external_id`` keeps the identity provider's id of a
team it provisions.

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-14 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0036"
down_revision: str | None = "0035"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE core.teams ADD COLUMN scim_external_id varchar(255)")


def downgrade() -> None:
    op.execute("ALTER TABLE core.teams DROP COLUMN scim_external_id")
