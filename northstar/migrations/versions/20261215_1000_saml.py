"""SAML 2.0 single sign-on per organization: ``core.saml_connections`` (the org's identity provider: its entity id,
sign-on address and signing certificates, attribute and group-to-role mapping, just-in-time provisioning, whether
sign-on is required), ``core.saml_requests`` (the AuthnRequests we sent, so a response's ``InResponseTo`` must name
one, once), ``core.saml_assertions`` (assertion ids already accepted, refused again until they expire) and
``core.saml_identities`` (the person the IdP's NameID is), all under forced row-level security.
``auth.refresh_tokens.single_sign_on`` marks sessions the org's IdP made. ``core.saml_org_of_slug`` finds the org
behind the login page's "organization" field before any org is in context, and only an org that has single sign-on.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-15 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0037"
down_revision: str | None = "0036"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"
ORG = "REFERENCES core.organizations (id) ON DELETE CASCADE"
GRANTED_ROLES = "('admin', 'member', 'analyst', 'investor')"
TABLES = ("core.saml_connections", "core.saml_requests", "core.saml_assertions", "core.saml_identities")


def upgrade() -> None:
    op.execute(f"""
        CREATE TABLE core.saml_connections (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          idp_entity_id varchar(1000) NOT NULL,
          idp_sso_url varchar(2000) NOT NULL,
          idp_certificates text[] NOT NULL,
          metadata_url varchar(2000),
          metadata_fetched_at timestamptz,
          email_attribute varchar(255) DEFAULT '' NOT NULL,
          name_attribute varchar(255) DEFAULT '' NOT NULL,
          groups_attribute varchar(255) DEFAULT '' NOT NULL,
          group_roles jsonb DEFAULT '{{}}'::jsonb NOT NULL,
          default_role varchar(20) DEFAULT 'member' NOT NULL,
          just_in_time boolean DEFAULT true NOT NULL,
          allow_idp_initiated boolean DEFAULT true NOT NULL,
          enforced boolean DEFAULT false NOT NULL,
          created_at timestamptz DEFAULT now() NOT NULL,
          updated_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_saml_connections PRIMARY KEY (id),
          CONSTRAINT fk_saml_connections_org_id_organizations FOREIGN KEY (org_id) {ORG},
          CONSTRAINT uq_saml_connections_org_id UNIQUE (org_id),
          CONSTRAINT ck_saml_connections_default_role CHECK (default_role IN {GRANTED_ROLES})
        )""")
    op.execute(f"""
        CREATE TABLE core.saml_requests (
          id varchar(100) NOT NULL,
          org_id uuid NOT NULL,
          return_to text NOT NULL,
          link_user_id uuid REFERENCES auth.users (id) ON DELETE CASCADE,
          created_at timestamptz DEFAULT now() NOT NULL,
          expires_at timestamptz NOT NULL,
          used_at timestamptz,
          CONSTRAINT pk_saml_requests PRIMARY KEY (id),
          CONSTRAINT fk_saml_requests_org_id_organizations FOREIGN KEY (org_id) {ORG}
        )""")
    op.execute("CREATE INDEX ix_saml_requests_org_id_expires_at ON core.saml_requests (org_id, expires_at)")
    op.execute(f"""
        CREATE TABLE core.saml_assertions (
          org_id uuid NOT NULL,
          assertion_id varchar(255) NOT NULL,
          expires_at timestamptz NOT NULL,
          created_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_saml_assertions PRIMARY KEY (org_id, assertion_id),
          CONSTRAINT fk_saml_assertions_org_id_organizations FOREIGN KEY (org_id) {ORG}
        )""")
    op.execute(f"""
        CREATE TABLE core.saml_identities (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          user_id uuid NOT NULL,
          name_id varchar(255) NOT NULL,
          created_at timestamptz DEFAULT now() NOT NULL,
          last_used_at timestamptz,
          CONSTRAINT pk_saml_identities PRIMARY KEY (id),
          CONSTRAINT fk_saml_identities_org_id_organizations FOREIGN KEY (org_id) {ORG},
          CONSTRAINT fk_saml_identities_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
          CONSTRAINT uq_saml_identities_org_name_id UNIQUE (org_id, name_id),
          CONSTRAINT uq_saml_identities_org_user UNIQUE (org_id, user_id)
        )""")
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} USING (org_id = {CURRENT_ORG}) WITH CHECK (org_id = {CURRENT_ORG})"
        )
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}")
    op.execute("ALTER TABLE auth.refresh_tokens ADD COLUMN single_sign_on boolean DEFAULT false NOT NULL")
    op.execute("""
        CREATE FUNCTION core.saml_org_of_slug(p_slug text) RETURNS uuid
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, core AS $$
          SELECT o.id FROM core.organizations o JOIN core.saml_connections c ON c.org_id = o.id WHERE o.slug = p_slug
        $$""")
    op.execute("REVOKE ALL ON FUNCTION core.saml_org_of_slug(text) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION core.saml_org_of_slug(text) TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION core.saml_org_of_slug(text)")
    op.execute("ALTER TABLE auth.refresh_tokens DROP COLUMN single_sign_on")
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE {table}")
