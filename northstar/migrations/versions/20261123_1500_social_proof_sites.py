"""Social proof (seed 001): schema ``socialproof`` with sites, templates and notifications, under forced RLS.

The domain is unique across the platform (a domain belongs to one site); the site key is the public id the
embed snippet carries.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 15:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"


def upgrade() -> None:
    op.execute("CREATE SCHEMA socialproof")
    op.execute("""
        CREATE TABLE socialproof.sites (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          name varchar(200) NOT NULL,
          domain varchar(253) NOT NULL,
          site_key varchar(64) NOT NULL,
          settings jsonb NOT NULL,
          data_region varchar(16) NOT NULL,
          created_by uuid,
          created_at timestamptz DEFAULT now() NOT NULL,
          updated_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_sites PRIMARY KEY (id),
          CONSTRAINT fk_sites_org_id_organizations FOREIGN KEY (org_id)
            REFERENCES core.organizations (id) ON DELETE CASCADE,
          CONSTRAINT uq_sites_domain UNIQUE (domain),
          CONSTRAINT uq_sites_site_key UNIQUE (site_key),
          CONSTRAINT uq_sites_org_id_id UNIQUE (org_id, id)
        )""")
    op.execute("CREATE INDEX ix_sites_org_id_created_at ON socialproof.sites (org_id, created_at)")
    op.execute("""
        CREATE TABLE socialproof.templates (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          site_id uuid NOT NULL,
          name varchar(200) NOT NULL,
          message text NOT NULL,
          css_content text DEFAULT '' NOT NULL,
          created_at timestamptz DEFAULT now() NOT NULL,
          updated_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_templates PRIMARY KEY (id),
          CONSTRAINT fk_templates_org_id_organizations FOREIGN KEY (org_id)
            REFERENCES core.organizations (id) ON DELETE CASCADE,
          CONSTRAINT fk_templates_site FOREIGN KEY (org_id, site_id)
            REFERENCES socialproof.sites (org_id, id) ON DELETE CASCADE,
          CONSTRAINT uq_templates_org_id_id UNIQUE (org_id, id)
        )""")
    op.execute("CREATE INDEX ix_templates_org_id_site_id ON socialproof.templates (org_id, site_id)")
    op.execute("""
        CREATE TABLE socialproof.notifications (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          site_id uuid NOT NULL,
          template_id uuid,
          name varchar(200) NOT NULL,
          type varchar(30) NOT NULL,
          status varchar(20) NOT NULL,
          channels text[] NOT NULL,
          source jsonb NOT NULL,
          targeting jsonb NOT NULL,
          display jsonb NOT NULL,
          anonymization jsonb NOT NULL,
          created_by uuid,
          created_at timestamptz DEFAULT now() NOT NULL,
          updated_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_notifications PRIMARY KEY (id),
          CONSTRAINT fk_notifications_org_id_organizations FOREIGN KEY (org_id)
            REFERENCES core.organizations (id) ON DELETE CASCADE,
          CONSTRAINT fk_notifications_site FOREIGN KEY (org_id, site_id)
            REFERENCES socialproof.sites (org_id, id) ON DELETE CASCADE,
          CONSTRAINT fk_notifications_template FOREIGN KEY (org_id, template_id)
            REFERENCES socialproof.templates (org_id, id),
          CONSTRAINT uq_notifications_org_id_id UNIQUE (org_id, id)
        )""")
    op.execute("CREATE INDEX ix_notifications_org_id_site_id ON socialproof.notifications (org_id, site_id)")
    for table in ("socialproof.sites", "socialproof.templates", "socialproof.notifications"):
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING (org_id = {CURRENT_ORG})")
    op.execute(f"GRANT USAGE ON SCHEMA socialproof TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA socialproof TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP SCHEMA socialproof CASCADE")
