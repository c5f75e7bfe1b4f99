"""DevBizOps' links to the business: ``devbizops.links`` ties a work item to a billing customer or a CRM deal (linked
by hand, found in a deal's notes, or from an approved proposal), and ``devbizops.change_work_items`` ties a change to
the work items its title or body names. Both under forced row-level security.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-12 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"
ORG = "REFERENCES core.organizations (id) ON DELETE CASCADE"


def upgrade() -> None:
    op.execute("ALTER TABLE devbizops.work_items ADD CONSTRAINT uq_work_items_org_id_id UNIQUE (org_id, id)")
    op.execute("ALTER TABLE devbizops.changes ADD CONSTRAINT uq_changes_org_id_id UNIQUE (org_id, id)")
    op.execute(f"""
        CREATE TABLE devbizops.links (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          work_item_id uuid NOT NULL,
          customer_id uuid,
          deal_integration_id uuid,
          deal_external_id varchar(255),
          source varchar(10) NOT NULL,
          evidence text,
          created_by uuid,
          created_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_links PRIMARY KEY (id),
          CONSTRAINT fk_links_org_id_organizations FOREIGN KEY (org_id) {ORG},
          CONSTRAINT fk_links_work_item FOREIGN KEY (org_id, work_item_id)
            REFERENCES devbizops.work_items (org_id, id) ON DELETE CASCADE,
          CONSTRAINT ck_links_source CHECK (source IN ('manual', 'mention', 'agent')),
          CONSTRAINT ck_links_one_target CHECK ((customer_id IS NULL) <> (deal_external_id IS NULL)),
          CONSTRAINT ck_links_deal_key CHECK ((deal_external_id IS NULL) = (deal_integration_id IS NULL))
        )""")
    op.execute(
        "CREATE UNIQUE INDEX uq_links_customer ON devbizops.links (work_item_id, customer_id)"
        " WHERE customer_id IS NOT NULL"
    )
    op.execute(
        "CREATE UNIQUE INDEX uq_links_deal ON devbizops.links (work_item_id, deal_integration_id, deal_external_id)"
        " WHERE deal_external_id IS NOT NULL"
    )
    op.execute(f"""
        CREATE TABLE devbizops.change_work_items (
          org_id uuid NOT NULL,
          change_id uuid NOT NULL,
          work_item_id uuid NOT NULL,
          CONSTRAINT pk_change_work_items PRIMARY KEY (change_id, work_item_id),
          CONSTRAINT fk_change_work_items_org_id_organizations FOREIGN KEY (org_id) {ORG},
          CONSTRAINT fk_change_work_items_change FOREIGN KEY (org_id, change_id)
            REFERENCES devbizops.changes (org_id, id) ON DELETE CASCADE,
          CONSTRAINT fk_change_work_items_work_item FOREIGN KEY (org_id, work_item_id)
            REFERENCES devbizops.work_items (org_id, id) ON DELETE CASCADE
        )""")
    op.execute("CREATE INDEX ix_change_work_items_work_item ON devbizops.change_work_items (org_id, work_item_id)")
    for table in ("links", "change_work_items"):
        op.execute(f"ALTER TABLE devbizops.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE devbizops.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON devbizops.{table} USING (org_id = {CURRENT_ORG})")
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON devbizops.{table} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP TABLE devbizops.change_work_items")
    op.execute("DROP TABLE devbizops.links")
    op.execute("ALTER TABLE devbizops.changes DROP CONSTRAINT uq_changes_org_id_id")
    op.execute("ALTER TABLE devbizops.work_items DROP CONSTRAINT uq_work_items_org_id_id")
