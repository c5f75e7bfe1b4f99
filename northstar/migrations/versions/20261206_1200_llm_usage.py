"""Each organization's use of the language model per month (``core/llm.py``): calls, tokens and their cost in
millionths of a currency, against which its monthly budget is checked before a call.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"


def upgrade() -> None:
    op.execute("""
        CREATE TABLE core.llm_usage (
          org_id uuid NOT NULL,
          month date NOT NULL,
          currency varchar(3) NOT NULL,
          calls integer NOT NULL,
          input_tokens bigint NOT NULL,
          output_tokens bigint NOT NULL,
          cost_micros bigint NOT NULL,
          CONSTRAINT pk_llm_usage PRIMARY KEY (org_id, month, currency),
          CONSTRAINT fk_llm_usage_org_id_organizations FOREIGN KEY (org_id)
            REFERENCES core.organizations (id) ON DELETE CASCADE
        )""")
    op.execute("ALTER TABLE core.llm_usage ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE core.llm_usage FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON core.llm_usage USING (org_id = {CURRENT_ORG})")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON core.llm_usage TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP TABLE core.llm_usage")
