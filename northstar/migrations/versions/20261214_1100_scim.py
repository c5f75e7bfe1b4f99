"""SCIM 2.0 provisioning: ``core.scim_tokens`` (an org's bearer tokens, kept as HMACs) and ``core.scim_users`` (the
people its identity provider provisions: the user each is, active or not, the role given), both under forced
row-level security; a presented token's id is visible before its org is known, as an API key's is.

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-14 11:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0035"
down_revision: str | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"
CREDENTIAL = "nullif(current_setting('northstar.credential_id', true), '')::uuid"
ORG = "REFERENCES core.organizations (id) ON DELETE CASCADE"
ROLES = "('founder', 'admin', 'member', 'analyst', 'investor')"


def upgrade() -> None:
    op.execute(f"""
        CREATE TABLE core.scim_tokens (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          secret_hash text NOT NULL,
          created_by uuid,
          created_at timestamptz DEFAULT now() NOT NULL,
          last_used_at timestamptz,
          revoked_at timestamptz,
          CONSTRAINT pk_scim_tokens PRIMARY KEY (id),
          CONSTRAINT fk_scim_tokens_org_id_organizations FOREIGN KEY (org_id) {ORG}
        )""")
    op.execute("CREATE INDEX ix_scim_tokens_org_id ON core.scim_tokens (org_id)")
    op.execute(f"""
        CREATE TABLE core.scim_users (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          user_id uuid NOT NULL,
          external_id varchar(255),
          active boolean DEFAULT true NOT NULL,
          role varchar(20) DEFAULT 'member' NOT NULL,
          created_at timestamptz DEFAULT now() NOT NULL,
          updated_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_scim_users PRIMARY KEY (id),
          CONSTRAINT fk_scim_users_org_id_organizations FOREIGN KEY (org_id) {ORG},
          CONSTRAINT fk_scim_users_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
          CONSTRAINT uq_scim_users_org_user UNIQUE (org_id, user_id),
          CONSTRAINT ck_scim_users_role CHECK (role IN {ROLES})
        )""")
    op.execute("CREATE INDEX ix_scim_users_org_id_created_at ON core.scim_users (org_id, created_at)")
    policies = {
        "core.scim_tokens": (f"org_id = {CURRENT_ORG} OR id = {CREDENTIAL}", f"org_id = {CURRENT_ORG}"),
        "core.scim_users": (f"org_id = {CURRENT_ORG}", f"org_id = {CURRENT_ORG}"),
    }
    for table, (using, check) in policies.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING ({using}) WITH CHECK ({check})")
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP TABLE core.scim_users")
    op.execute("DROP TABLE core.scim_tokens")
