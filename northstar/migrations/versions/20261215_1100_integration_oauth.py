"""OAuth connect for integrations: ``integrations.oauth_states`` (trips to a provider's consent screen, kept as the
SHA-256 of their state, bound to the org and the person who started them, used once) and
``integrations.oauth_consents`` (who connected which provider account, the scopes granted, when, and its
revocation; kept after a disconnect), both under forced row-level security. An integration whose grant can no longer
be refreshed is ``reconnect``.

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-15 11:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0038"
down_revision: str | None = "0037"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"
ORG = "REFERENCES core.organizations (id) ON DELETE CASCADE"
TABLES = ("integrations.oauth_states", "integrations.oauth_consents")


def upgrade() -> None:
    op.execute("ALTER TABLE integrations.integrations DROP CONSTRAINT ck_integrations_status")
    op.execute(
        "ALTER TABLE integrations.integrations ADD CONSTRAINT ck_integrations_status"
        " CHECK (status IN ('active', 'paused', 'error', 'reconnect'))"
    )
    op.execute(f"""
        CREATE TABLE integrations.oauth_states (
          state_hash varchar(64) NOT NULL,
          org_id uuid NOT NULL,
          user_id uuid NOT NULL,
          provider varchar(20) NOT NULL,
          name varchar(200) NOT NULL,
          config jsonb NOT NULL,
          integration_id uuid,
          code_verifier varchar(128) NOT NULL,
          created_at timestamptz DEFAULT now() NOT NULL,
          expires_at timestamptz NOT NULL,
          used_at timestamptz,
          CONSTRAINT pk_oauth_states PRIMARY KEY (state_hash),
          CONSTRAINT fk_oauth_states_org_id_organizations FOREIGN KEY (org_id) {ORG},
          CONSTRAINT fk_oauth_states_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
          CONSTRAINT fk_oauth_states_integration FOREIGN KEY (org_id, integration_id)
            REFERENCES integrations.integrations (org_id, id) ON DELETE CASCADE
        )""")
    op.execute("CREATE INDEX ix_oauth_states_expires_at ON integrations.oauth_states (expires_at)")
    op.execute(f"""
        CREATE TABLE integrations.oauth_consents (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          integration_id uuid NOT NULL,
          provider varchar(20) NOT NULL,
          user_id uuid NOT NULL,
          account varchar(255),
          scopes text[] NOT NULL,
          granted_at timestamptz DEFAULT now() NOT NULL,
          expires_at timestamptz,
          refreshed_at timestamptz,
          revoked_at timestamptz,
          revoked_by uuid,
          revocation varchar(20),
          provider_revocation varchar(300),
          CONSTRAINT pk_oauth_consents PRIMARY KEY (id),
          CONSTRAINT fk_oauth_consents_org_id_organizations FOREIGN KEY (org_id) {ORG},
          CONSTRAINT ck_oauth_consents_revocation CHECK (revocation IN ('disconnected', 'reconnected'))
        )""")
    op.execute("CREATE INDEX ix_oauth_consents_org_id_granted_at ON integrations.oauth_consents (org_id, granted_at)")
    op.execute(
        "CREATE UNIQUE INDEX uq_oauth_consents_integration_id ON integrations.oauth_consents (integration_id)"
        " WHERE revoked_at IS NULL"
    )
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} USING (org_id = {CURRENT_ORG}) WITH CHECK (org_id = {CURRENT_ORG})"
        )
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP TABLE integrations.oauth_consents")
    op.execute("DROP TABLE integrations.oauth_states")
    op.execute("UPDATE integrations.integrations SET status = 'error' WHERE status = 'reconnect'")
    op.execute("ALTER TABLE integrations.integrations DROP CONSTRAINT ck_integrations_status")
    op.execute(
        "ALTER TABLE integrations.integrations ADD CONSTRAINT ck_integrations_status"
        " CHECK (status IN ('active', 'paused', 'error'))"
    )
