"""DevBizOps' engineering sources (``devbizops.sources``): each engineering integration synced, with its provider,
name and whether approved tickets can be filed in it, under forced row-level security.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-12 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"


def upgrade() -> None:
    op.execute("""
        CREATE TABLE devbizops.sources (
          integration_id uuid NOT NULL,
          org_id uuid NOT NULL,
          provider varchar(20) NOT NULL,
          name varchar(200) NOT NULL,
          files_tickets boolean NOT NULL,
          synced_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_sources PRIMARY KEY (integration_id),
          CONSTRAINT fk_sources_org_id_organizations FOREIGN KEY (org_id)
            REFERENCES core.organizations (id) ON DELETE CASCADE,
          CONSTRAINT fk_sources_integration FOREIGN KEY (org_id, integration_id)
            REFERENCES integrations.integrations (org_id, id) ON DELETE CASCADE
        )""")
    op.execute("ALTER TABLE devbizops.sources ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE devbizops.sources FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON devbizops.sources USING (org_id = {CURRENT_ORG})")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON devbizops.sources TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP TABLE devbizops.sources")
