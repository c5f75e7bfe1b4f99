"""The coach (seed 000 "AI-powered insights"): each organization's coaching voice, in a schema of its own.

* ``reports.coach_settings``: tone (upbeat, neutral) and length (short, standard, detailed) of the narratives.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"


def upgrade() -> None:
    op.execute("CREATE SCHEMA reports")
    op.execute("""
        CREATE TABLE reports.coach_settings (
          org_id uuid NOT NULL,
          tone varchar(10) DEFAULT 'upbeat' NOT NULL,
          length varchar(10) DEFAULT 'standard' NOT NULL,
          updated_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_coach_settings PRIMARY KEY (org_id),
          CONSTRAINT fk_coach_settings_org_id_organizations FOREIGN KEY (org_id)
            REFERENCES core.organizations (id) ON DELETE CASCADE,
          CONSTRAINT ck_coach_settings_tone CHECK (tone IN ('upbeat', 'neutral')),
          CONSTRAINT ck_coach_settings_length CHECK (length IN ('short', 'standard', 'detailed'))
        )""")
    op.execute("ALTER TABLE reports.coach_settings ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE reports.coach_settings FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON reports.coach_settings USING (org_id = {CURRENT_ORG})")
    op.execute(f"GRANT USAGE ON SCHEMA reports TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA reports TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP SCHEMA reports CASCADE")
