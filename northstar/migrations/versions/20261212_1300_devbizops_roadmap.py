"""DevBizOps' roadmap: ``devbizops.roadmap_items`` (status, target quarter, rank) and
``devbizops.roadmap_work_items`` (the work items that deliver each), under forced row-level security.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-12 13:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"
ORG = "REFERENCES core.organizations (id) ON DELETE CASCADE"


def upgrade() -> None:
    op.execute(f"""
        CREATE TABLE devbizops.roadmap_items (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          title varchar(200) NOT NULL,
          description text DEFAULT '' NOT NULL,
          status varchar(12) NOT NULL,
          target_quarter varchar(7) NOT NULL,
          rank integer NOT NULL,
          created_by uuid,
          created_at timestamptz DEFAULT now() NOT NULL,
          updated_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_roadmap_items PRIMARY KEY (id),
          CONSTRAINT uq_roadmap_items_org_id_id UNIQUE (org_id, id),
          CONSTRAINT fk_roadmap_items_org_id_organizations FOREIGN KEY (org_id) {ORG},
          CONSTRAINT ck_roadmap_items_status CHECK (status IN ('planned', 'in_progress', 'shipped', 'dropped'))
        )""")
    op.execute("CREATE INDEX ix_roadmap_items_org_id_rank ON devbizops.roadmap_items (org_id, rank)")
    op.execute(f"""
        CREATE TABLE devbizops.roadmap_work_items (
          org_id uuid NOT NULL,
          roadmap_item_id uuid NOT NULL,
          work_item_id uuid NOT NULL,
          CONSTRAINT pk_roadmap_work_items PRIMARY KEY (roadmap_item_id, work_item_id),
          CONSTRAINT fk_roadmap_work_items_org_id_organizations FOREIGN KEY (org_id) {ORG},
          CONSTRAINT fk_roadmap_work_items_item FOREIGN KEY (org_id, roadmap_item_id)
            REFERENCES devbizops.roadmap_items (org_id, id) ON DELETE CASCADE,
          CONSTRAINT fk_roadmap_work_items_work_item FOREIGN KEY (org_id, work_item_id)
            REFERENCES devbizops.work_items (org_id, id) ON DELETE CASCADE
        )""")
    for table in ("roadmap_items", "roadmap_work_items"):
        op.execute(f"ALTER TABLE devbizops.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE devbizops.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON devbizops.{table} USING (org_id = {CURRENT_ORG})")
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON devbizops.{table} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP TABLE devbizops.roadmap_work_items")
    op.execute("DROP TABLE devbizops.roadmap_items")
