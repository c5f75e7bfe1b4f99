"""Platform core: identity, organizations, projects, teams, API keys, audit trail, row-level security.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 02:01:30.438153
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"
CURRENT_USER_ID = "nullif(current_setting('northstar.user_id', true), '')::uuid"
CREDENTIAL = "nullif(current_setting('northstar.credential_id', true), '')::uuid"

# table -> (USING, WITH CHECK); every policy fails closed when no tenant is bound.
POLICIES = {
    "core.projects": (f"org_id = {CURRENT_ORG}", None),
    "core.project_members": (f"org_id = {CURRENT_ORG}", None),
    "core.teams": (f"org_id = {CURRENT_ORG}", None),
    "core.team_members": (f"org_id = {CURRENT_ORG}", None),
    "core.idempotency_keys": (f"org_id = {CURRENT_ORG}", None),
    "core.audit_events": (f"org_id = {CURRENT_ORG}", None),
    "core.audit_chain_heads": (f"org_id = {CURRENT_ORG}", None),
    # A user sees their own memberships in every org (to list and switch orgs).
    "core.memberships": (f"org_id = {CURRENT_ORG} OR user_id = {CURRENT_USER_ID}", f"org_id = {CURRENT_ORG}"),
    # A presented credential (its id in northstar.credential_id) is visible before the org is known.
    "core.invitations": (f"org_id = {CURRENT_ORG} OR id = {CREDENTIAL}", f"org_id = {CURRENT_ORG}"),
    "core.api_keys": (f"org_id = {CURRENT_ORG} OR id = {CREDENTIAL}", f"org_id = {CURRENT_ORG}"),
    "auth.refresh_tokens": (
        f"org_id = {CURRENT_ORG} OR user_id = {CURRENT_USER_ID} OR id = {CREDENTIAL}",
        f"org_id = {CURRENT_ORG} OR user_id = {CURRENT_USER_ID}",
    ),
    "core.organizations": (
        f"id = {CURRENT_ORG} OR id IN (SELECT org_id FROM core.memberships WHERE user_id = {CURRENT_USER_ID})"
        " OR current_setting('northstar.maintenance', true) = 'on'",
        f"id = {CURRENT_ORG}",
    ),
}

AUDIT_CANONICAL = """concat_ws('|', e.prev_hash, e.org_id::text, e.seq::text,
    to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), e.actor_type,
    coalesce(e.actor_id::text, ''), e.action, e.target_type, e.target_id, e.ip, e.user_agent,
    e.request_id, e.details::text)"""


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS auth")
    op.execute("CREATE SCHEMA IF NOT EXISTS core")
    op.execute(f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
            CREATE ROLE {APP_ROLE} NOLOGIN NOBYPASSRLS;
          END IF;
        END $$""")
    op.execute(f"GRANT {APP_ROLE} TO current_user")
    op.create_table(
        "users",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), server_default="", nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("mfa_secret_encrypted", sa.Text(), nullable=True),
        sa.Column("mfa_enabled", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("mfa_last_step", sa.Integer(), server_default="0", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_users_email_lowercase")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        schema="auth",
    )
    op.create_table(
        "organizations",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("slug", sa.String(length=80), nullable=False),
        sa.Column("subscription_tier", sa.String(length=50), server_default="free", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("slug", name=op.f("uq_organizations_slug")),
        schema="core",
    )
    op.create_table(
        "mfa_recovery_codes",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("code_hash", sa.Text(), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["auth.users.id"], name=op.f("fk_mfa_recovery_codes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mfa_recovery_codes")),
        schema="auth",
    )
    op.create_index(
        op.f("ix_auth_mfa_recovery_codes_user_id"), "mfa_recovery_codes", ["user_id"], unique=False, schema="auth"
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("environment", sa.String(length=10), server_default="live", nullable=False),
        sa.Column("secret_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("created_by", sa.UUID(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rotated_to", sa.UUID(), nullable=True),
        sa.CheckConstraint("environment IN ('live', 'test')", name=op.f("ck_api_keys_environment")),
        sa.CheckConstraint(
            "role IN ('founder', 'admin', 'member', 'analyst', 'investor')", name=op.f("ck_api_keys_role")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["core.organizations.id"], name=op.f("fk_api_keys_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        schema="core",
    )
    op.create_index("ix_api_keys_org_id", "api_keys", ["org_id"], unique=False, schema="core")
    op.create_table(
        "audit_chain_heads",
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["core.organizations.id"],
            name=op.f("fk_audit_chain_heads_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_audit_chain_heads")),
        schema="core",
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor_type", sa.String(length=20), nullable=False),
        sa.Column("actor_id", sa.UUID(), nullable=True),
        sa.Column("action", sa.String(length=120), nullable=False),
        sa.Column("target_type", sa.String(length=60), server_default="", nullable=False),
        sa.Column("target_id", sa.String(length=120), server_default="", nullable=False),
        sa.Column("ip", sa.String(length=64), server_default="", nullable=False),
        sa.Column("user_agent", sa.String(length=500), server_default="", nullable=False),
        sa.Column("request_id", sa.String(length=64), server_default="", nullable=False),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("prev_hash", sa.Text(), nullable=False),
        sa.Column("hash", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["core.organizations.id"], name=op.f("fk_audit_events_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        sa.UniqueConstraint("org_id", "seq", name="uq_audit_events_org_id_seq"),
        schema="core",
    )
    op.create_index(
        "ix_audit_events_org_id_occurred_at", "audit_events", ["org_id", "occurred_at"], unique=False, schema="core"
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("principal", sa.String(length=80), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["core.organizations.id"],
            name=op.f("fk_idempotency_keys_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "principal", "key", name=op.f("pk_idempotency_keys")),
        schema="core",
    )
    op.create_table(
        "invitations",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("invited_by", sa.UUID(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IN ('founder', 'admin', 'member', 'analyst', 'investor')", name=op.f("ck_invitations_role")
        ),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_invitations_email_lowercase")),
        sa.ForeignKeyConstraint(
            ["org_id"], ["core.organizations.id"], name=op.f("fk_invitations_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        schema="core",
    )
    op.create_table(
        "memberships",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "role IN ('founder', 'admin', 'member', 'analyst', 'investor')", name=op.f("ck_memberships_role")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["core.organizations.id"], name=op.f("fk_memberships_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["auth.users.id"], name=op.f("fk_memberships_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memberships")),
        sa.UniqueConstraint("org_id", "user_id", name="uq_memberships_org_id_user_id"),
        schema="core",
    )
    op.create_index("ix_memberships_user_id", "memberships", ["user_id"], unique=False, schema="core")
    op.create_table(
        "projects",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("created_by", sa.UUID(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["core.organizations.id"], name=op.f("fk_projects_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("org_id", "id", name="uq_projects_org_id_id"),
        schema="core",
    )
    op.create_index("ix_projects_org_id_created_at", "projects", ["org_id", "created_at"], unique=False, schema="core")
    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("family_id", sa.UUID(), nullable=False),
        sa.Column("secret_hash", sa.Text(), nullable=False),
        sa.Column("user_agent", sa.String(length=500), server_default="", nullable=False),
        sa.Column("ip", sa.String(length=64), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id", "user_id"],
            ["core.memberships.org_id", "core.memberships.user_id"],
            name=op.f("fk_refresh_tokens_org_id_memberships"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["core.organizations.id"],
            name=op.f("fk_refresh_tokens_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_tokens")),
        schema="auth",
    )
    op.create_index("ix_refresh_tokens_family_id", "refresh_tokens", ["family_id"], unique=False, schema="auth")
    op.create_index("ix_refresh_tokens_user_id", "refresh_tokens", ["user_id"], unique=False, schema="auth")
    op.create_table(
        "project_members",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "role IN ('founder', 'admin', 'member', 'analyst', 'investor')", name=op.f("ck_project_members_role")
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "project_id"],
            ["core.projects.org_id", "core.projects.id"],
            name=op.f("fk_project_members_org_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "user_id"],
            ["core.memberships.org_id", "core.memberships.user_id"],
            name=op.f("fk_project_members_org_id_memberships"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["core.organizations.id"],
            name=op.f("fk_project_members_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_members")),
        sa.UniqueConstraint("org_id", "project_id", "user_id", name="uq_project_members_org_project_user"),
        schema="core",
    )
    op.create_table(
        "teams",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("project_id", sa.UUID(), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id", "project_id"],
            ["core.projects.org_id", "core.projects.id"],
            name=op.f("fk_teams_org_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["core.organizations.id"], name=op.f("fk_teams_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
        sa.UniqueConstraint("org_id", "id", name="uq_teams_org_id_id"),
        sa.UniqueConstraint("org_id", "name", name="uq_teams_org_id_name"),
        schema="core",
    )
    op.create_table(
        "team_members",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("team_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "role IN ('founder', 'admin', 'member', 'analyst', 'investor')", name=op.f("ck_team_members_role")
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "team_id"],
            ["core.teams.org_id", "core.teams.id"],
            name=op.f("fk_team_members_org_id_teams"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "user_id"],
            ["core.memberships.org_id", "core.memberships.user_id"],
            name=op.f("fk_team_members_org_id_memberships"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["core.organizations.id"], name=op.f("fk_team_members_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_members")),
        sa.UniqueConstraint("org_id", "team_id", "user_id", name="uq_team_members_org_team_user"),
        schema="core",
    )
    _secure()


def _secure() -> None:
    for table, (using, check) in POLICIES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING ({using}) WITH CHECK ({check or using})")
    op.execute(f"GRANT USAGE ON SCHEMA auth, core TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA auth, core TO {APP_ROLE}")
    # The audit trail is append-only for the application; only the chaining trigger moves the head.
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON core.audit_events FROM {APP_ROLE}")
    op.execute(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON core.audit_chain_heads FROM {APP_ROLE}")
    op.execute(f"""
        CREATE FUNCTION core.audit_chain() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, core AS $$
        DECLARE head record;
        BEGIN
          INSERT INTO core.audit_chain_heads (org_id, seq, hash)
            VALUES (NEW.org_id, 0, repeat('0', 64)) ON CONFLICT (org_id) DO NOTHING;
          SELECT seq, hash INTO head FROM core.audit_chain_heads WHERE org_id = NEW.org_id FOR UPDATE;
          NEW.seq := head.seq + 1;
          NEW.prev_hash := head.hash;
          NEW.hash := encode(sha256(convert_to((SELECT {AUDIT_CANONICAL} FROM (SELECT NEW.*) e), 'UTF8')), 'hex');
          UPDATE core.audit_chain_heads SET seq = NEW.seq, hash = NEW.hash WHERE org_id = NEW.org_id;
          RETURN NEW;
        END $$""")
    op.execute("REVOKE ALL ON FUNCTION core.audit_chain() FROM PUBLIC")
    op.execute("""CREATE TRIGGER audit_chain BEFORE INSERT ON core.audit_events
                  FOR EACH ROW EXECUTE FUNCTION core.audit_chain()""")


def downgrade() -> None:
    for table in POLICIES:
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
    op.execute("DROP TRIGGER IF EXISTS audit_chain ON core.audit_events")
    op.execute("DROP FUNCTION IF EXISTS core.audit_chain()")
    op.drop_table("team_members", schema="core")
    op.drop_table("teams", schema="core")
    op.drop_table("project_members", schema="core")
    op.drop_index("ix_refresh_tokens_user_id", table_name="refresh_tokens", schema="auth")
    op.drop_index("ix_refresh_tokens_family_id", table_name="refresh_tokens", schema="auth")
    op.drop_table("refresh_tokens", schema="auth")
    op.drop_index("ix_projects_org_id_created_at", table_name="projects", schema="core")
    op.drop_table("projects", schema="core")
    op.drop_index("ix_memberships_user_id", table_name="memberships", schema="core")
    op.drop_table("memberships", schema="core")
    op.drop_table("invitations", schema="core")
    op.drop_table("idempotency_keys", schema="core")
    op.drop_index("ix_audit_events_org_id_occurred_at", table_name="audit_events", schema="core")
    op.drop_table("audit_events", schema="core")
    op.drop_table("audit_chain_heads", schema="core")
    op.drop_index("ix_api_keys_org_id", table_name="api_keys", schema="core")
    op.drop_table("api_keys", schema="core")
    op.drop_index(op.f("ix_auth_mfa_recovery_codes_user_id"), table_name="mfa_recovery_codes", schema="auth")
    op.drop_table("mfa_recovery_codes", schema="auth")
    op.drop_table("organizations", schema="core")
    op.drop_table("users", schema="auth")
