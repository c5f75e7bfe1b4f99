"""Why a source's metrics are stale (commerce, traffic, product, pipeline), as billing's ``summaries.problem`` says
it for billing: a rebuild that cannot finish (a missing exchange rate) leaves its series as they were and says so.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 13:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"


def upgrade() -> None:
    op.execute("""
        CREATE TABLE metrics.source_problems (
          org_id uuid NOT NULL,
          source varchar(20) NOT NULL,
          problem text NOT NULL,
          noted_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_source_problems PRIMARY KEY (org_id, source),
          CONSTRAINT fk_source_problems_org_id_organizations FOREIGN KEY (org_id)
            REFERENCES core.organizations (id) ON DELETE CASCADE
        )""")
    op.execute("ALTER TABLE metrics.source_problems ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE metrics.source_problems FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON metrics.source_problems USING (org_id = {CURRENT_ORG})")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON metrics.source_problems TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP TABLE metrics.source_problems")
