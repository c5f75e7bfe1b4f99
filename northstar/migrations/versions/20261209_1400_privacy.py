"""Privacy: users' e-mail and full name encrypted, GDPR/CCPA requests, consent logs, audit pseudonymisation and
retention.

* ``auth.users``: ``email`` and ``name`` become AES-256-GCM tokens (``email_encrypted``, ``full_name_encrypted``,
  each with its key id) and ``email_blind_index`` (HMAC of the normalised address) for lookup and uniqueness.
  Existing rows are encrypted here with the application's own keys (``core.security.field_cipher`` of the
  configured settings), so a migrated database is read by the app exactly like a new one.
* ``core.audit_events``: the hash chain now covers ``personal_hash`` (SHA-256 of a random per-row salt and the
  personal fields) instead of the personal fields themselves, so erasure may overwrite those fields and drop the
  salt without breaking the chain. Existing chains are verified (the migration stops if one does not verify) and
  sealed again in the new form. ``core.audit_checkpoints`` remembers where retention cut each chain.
* ``privacy.requests``, ``privacy.consent_logs``, ``privacy.settings``: tenant tables under forced RLS.
* ``socialproof.notification_events``: an index on ``(visitor_id, site_id)`` so erasing a visitor does not scan,
  and ``DELETE`` for the app role (under RLS). The visitor leads: an index led by ``site_id`` also matches
  ingestion's duplicate check (``site_id`` and ``id``), and on a partition without statistics the planner took it
  there, reading every stored event of the visitor for each new one (ingestion slowed with each visitor's history).

Revision ID: 0024
Revises: 0019
Create Date: 2026-12-09 14:00:00
"""

import uuid
from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0024"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"
TABLES = ("requests", "consent_logs", "settings")

OLD_CANONICAL = """concat_ws('|', e.prev_hash, e.org_id::text, e.seq::text,
    to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), e.actor_type,
    coalesce(e.actor_id::text, ''), e.action, e.target_type, e.target_id, e.ip, e.user_agent,
    e.request_id, e.details::text)"""
# What the chain covers from now on: the personal fields only through ``personal_hash``.
PERSONAL = """concat_ws('|', e.personal_salt, coalesce(e.actor_id::text, ''), e.target_id, e.ip, e.user_agent,
    e.request_id, e.details::text)"""
CANONICAL = """concat_ws('|', e.prev_hash, e.org_id::text, e.seq::text,
    to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), e.actor_type, e.action,
    e.target_type, e.personal_hash)"""


def _sha(expression: str) -> str:
    return f"encode(sha256(convert_to({expression}, 'UTF8')), 'hex')"


def upgrade() -> None:
    _users()
    _audit()
    _privacy_tables()
    op.execute("CREATE INDEX ix_notification_events_visitor ON socialproof.notification_events (visitor_id, site_id)")
    op.execute(f"GRANT DELETE ON socialproof.notification_events TO {APP_ROLE}")


def _users() -> None:
    from northstar.accounts.service.pii import email_index  # the application's own derivations
    from northstar.core.security import field_cipher
    from northstar.settings import get_settings

    op.execute("ALTER TABLE auth.users ADD COLUMN email_encrypted text, ADD COLUMN email_encryption_key_id varchar(40)")
    op.execute("ALTER TABLE auth.users ADD COLUMN email_blind_index varchar(64)")
    op.execute("ALTER TABLE auth.users ADD COLUMN full_name_encrypted text")
    op.execute("ALTER TABLE auth.users ADD COLUMN full_name_encryption_key_id varchar(40)")
    bind = op.get_bind()
    rows = bind.execute(text("SELECT id, email, name FROM auth.users")).all()
    if rows:
        settings = get_settings()
        cipher = field_cipher(settings)
        for user_id, email, name in rows:
            email_token = cipher.encrypt(email, associated_data=str(user_id))
            name_token = cipher.encrypt(name, associated_data=str(user_id))
            bind.execute(
                text(
                    "UPDATE auth.users SET email_encrypted = :email, email_encryption_key_id = :key_id, "
                    "email_blind_index = :blind, full_name_encrypted = :name, full_name_encryption_key_id = :key_id "
                    "WHERE id = :id"
                ),
                {
                    "email": email_token,
                    "name": name_token,
                    "key_id": cipher.current_key_id,
                    "blind": email_index(settings, email),
                    "id": uuid.UUID(str(user_id)),
                },
            )
    op.execute("ALTER TABLE auth.users ALTER COLUMN email_encrypted SET NOT NULL")
    op.execute("ALTER TABLE auth.users ALTER COLUMN email_encryption_key_id SET NOT NULL")
    op.execute("ALTER TABLE auth.users ALTER COLUMN email_blind_index SET NOT NULL")
    op.execute("ALTER TABLE auth.users ADD CONSTRAINT uq_users_email_blind_index UNIQUE (email_blind_index)")
    op.execute("ALTER TABLE auth.users DROP COLUMN email, DROP COLUMN name")


def _audit() -> None:
    op.execute("""
        ALTER TABLE core.audit_events ADD COLUMN personal_salt text,
          ADD COLUMN personal_hash text, ADD COLUMN pseudonymised_at timestamptz""")
    op.execute("""
        CREATE TABLE core.audit_checkpoints (
          org_id uuid NOT NULL,
          seq bigint NOT NULL,
          hash text NOT NULL,
          pruned_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_audit_checkpoints PRIMARY KEY (org_id),
          CONSTRAINT fk_audit_checkpoints_org_id_organizations FOREIGN KEY (org_id)
            REFERENCES core.organizations (id) ON DELETE CASCADE
        )""")
    op.execute("ALTER TABLE core.audit_checkpoints ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE core.audit_checkpoints FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON core.audit_checkpoints USING (org_id = {CURRENT_ORG})")
    op.execute(f"GRANT SELECT ON core.audit_checkpoints TO {APP_ROLE}")
    # Verify every chain in its old form, then seal it again in the new one (in seq order, per org).
    op.execute(f"""
        DO $$
        DECLARE bad bigint;
        BEGIN
          SELECT count(*) INTO bad FROM core.audit_events e WHERE e.hash <> {_sha(OLD_CANONICAL)};
          IF bad > 0 THEN
            RAISE EXCEPTION 'audit trail: % entries do not match their hash; verify the chain before migrating', bad;
          END IF;
        END $$""")
    op.execute(f"""
        DO $$
        DECLARE e record; prev text; org uuid := NULL;
        BEGIN
          FOR e IN SELECT * FROM core.audit_events ORDER BY org_id, seq LOOP
            IF org IS DISTINCT FROM e.org_id THEN org := e.org_id; prev := repeat('0', 64); END IF;
            e.prev_hash := prev;
            e.personal_salt := replace(gen_random_uuid()::text, '-', '');
            e.personal_hash := {_sha(PERSONAL)};
            e.hash := {_sha(CANONICAL)};
            UPDATE core.audit_events SET prev_hash = e.prev_hash, personal_salt = e.personal_salt,
              personal_hash = e.personal_hash, hash = e.hash WHERE id = e.id;
            UPDATE core.audit_chain_heads SET hash = e.hash WHERE org_id = e.org_id AND seq = e.seq;
            prev := e.hash;
          END LOOP;
        END $$""")
    op.execute("ALTER TABLE core.audit_events ALTER COLUMN personal_hash SET NOT NULL")
    op.execute(f"""
        CREATE OR REPLACE FUNCTION core.audit_chain() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, core, public AS $$
        DECLARE head record;
        BEGIN
          INSERT INTO core.audit_chain_heads (org_id, seq, hash)
            VALUES (NEW.org_id, 0, repeat('0', 64)) ON CONFLICT (org_id) DO NOTHING;
          SELECT seq, hash INTO head FROM core.audit_chain_heads WHERE org_id = NEW.org_id FOR UPDATE;
          NEW.seq := head.seq + 1;
          NEW.prev_hash := head.hash;
          NEW.pseudonymised_at := NULL;
          NEW.personal_salt := replace(gen_random_uuid()::text, '-', '');
          NEW.personal_hash := (SELECT {_sha(PERSONAL)} FROM (SELECT NEW.*) e);
          NEW.hash := (SELECT {_sha(CANONICAL)} FROM (SELECT NEW.*) e);
          UPDATE core.audit_chain_heads SET seq = NEW.seq, hash = NEW.hash WHERE org_id = NEW.org_id;
          RETURN NEW;
        END $$""")
    # Erasure: the subject's id and address leave the trail; the chain keeps verifying (personal_hash is kept,
    # the salt that could confirm a guess at the old content is dropped).
    op.execute(f"""
        CREATE FUNCTION core.audit_pseudonymise(p_terms text[], p_pseudonym text, p_actor uuid, p_actor_pseudonym uuid)
        RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, core AS $$
        DECLARE changed integer; term text;
        BEGIN
          WITH hit AS (
            SELECT id FROM core.audit_events
            WHERE org_id = {CURRENT_ORG}
              AND ((p_actor IS NOT NULL AND actor_id = p_actor)
                   OR EXISTS (SELECT 1 FROM unnest(p_terms) t
                              WHERE strpos(target_id, t) > 0 OR strpos(details::text, t) > 0))
          )
          UPDATE core.audit_events e SET
            actor_id = CASE WHEN e.actor_id = p_actor THEN p_actor_pseudonym ELSE e.actor_id END,
            ip = CASE WHEN e.actor_id = p_actor THEN '' ELSE e.ip END,
            user_agent = CASE WHEN e.actor_id = p_actor THEN '' ELSE e.user_agent END,
            personal_salt = NULL,
            pseudonymised_at = now()
          FROM hit WHERE e.id = hit.id;
          GET DIAGNOSTICS changed = ROW_COUNT;
          FOREACH term IN ARRAY p_terms LOOP
            UPDATE core.audit_events SET
              target_id = replace(target_id, term, p_pseudonym),
              details = replace(details::text, term, p_pseudonym)::jsonb
            WHERE org_id = {CURRENT_ORG} AND pseudonymised_at IS NOT NULL
              AND (strpos(target_id, term) > 0 OR strpos(details::text, term) > 0);
          END LOOP;
          RETURN changed;
        END $$""")
    # Retention: entries older than the cut-off leave the trail; the checkpoint keeps where the chain now starts.
    op.execute(f"""
        CREATE FUNCTION core.audit_prune(p_before timestamptz) RETURNS integer
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, core AS $$
        DECLARE last record; removed integer;
        BEGIN
          SELECT seq, hash INTO last FROM core.audit_events
            WHERE org_id = {CURRENT_ORG} AND occurred_at < p_before ORDER BY seq DESC LIMIT 1;
          IF last IS NULL THEN RETURN 0; END IF;
          DELETE FROM core.audit_events WHERE org_id = {CURRENT_ORG} AND seq <= last.seq;
          GET DIAGNOSTICS removed = ROW_COUNT;
          INSERT INTO core.audit_checkpoints (org_id, seq, hash) VALUES ({CURRENT_ORG}, last.seq, last.hash)
            ON CONFLICT (org_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, pruned_at = now();
          RETURN removed;
        END $$""")
    for function in ("audit_pseudonymise(text[], text, uuid, uuid)", "audit_prune(timestamptz)"):
        op.execute(f"REVOKE ALL ON FUNCTION core.{function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION core.{function} TO {APP_ROLE}")


def _privacy_tables() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS privacy")
    op.execute(f"GRANT USAGE ON SCHEMA privacy TO {APP_ROLE}")
    op.execute("""
        CREATE TABLE privacy.requests (
          id uuid NOT NULL DEFAULT gen_random_uuid(),
          org_id uuid NOT NULL,
          kind varchar(10) NOT NULL,
          subject_type varchar(20) NOT NULL,
          subject_digest varchar(64) NOT NULL,
          subject_encrypted text,
          status varchar(12) NOT NULL DEFAULT 'pending',
          requested_by uuid,
          job_id bigint,
          result jsonb NOT NULL DEFAULT '{}'::jsonb,
          file_key text,
          error text,
          created_at timestamptz NOT NULL DEFAULT now(),
          completed_at timestamptz,
          CONSTRAINT pk_requests PRIMARY KEY (id),
          CONSTRAINT uq_requests_org_id_id UNIQUE (org_id, id),
          CONSTRAINT ck_requests_kind CHECK (kind IN ('export', 'erasure')),
          CONSTRAINT ck_requests_subject_type CHECK (subject_type IN ('user', 'visitor', 'visitor_hash')),
          CONSTRAINT ck_requests_status CHECK (status IN ('pending', 'running', 'completed', 'failed')),
          CONSTRAINT fk_requests_org_id_organizations FOREIGN KEY (org_id)
            REFERENCES core.organizations (id) ON DELETE CASCADE
        )""")
    op.execute("CREATE INDEX ix_requests_org_id_created_at ON privacy.requests (org_id, created_at)")
    op.execute("""
        CREATE TABLE privacy.consent_logs (
          id uuid NOT NULL DEFAULT gen_random_uuid(),
          org_id uuid NOT NULL,
          site_id uuid,
          source varchar(10) NOT NULL,
          action varchar(20) NOT NULL,
          subject_digest varchar(64),
          actor_id uuid,
          details jsonb NOT NULL DEFAULT '{}'::jsonb,
          occurred_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_consent_logs PRIMARY KEY (id),
          CONSTRAINT ck_consent_logs_source CHECK (source IN ('widget', 'merchant')),
          CONSTRAINT ck_consent_logs_action CHECK (action IN ('opt_in', 'opt_out', 'settings_changed')),
          CONSTRAINT fk_consent_logs_org_id_organizations FOREIGN KEY (org_id)
            REFERENCES core.organizations (id) ON DELETE CASCADE
        )""")
    op.execute("CREATE INDEX ix_consent_logs_org_id_occurred_at ON privacy.consent_logs (org_id, occurred_at)")
    op.execute("""
        CREATE TABLE privacy.settings (
          org_id uuid NOT NULL,
          audit_retention_days integer NOT NULL DEFAULT 2557,
          updated_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_settings PRIMARY KEY (org_id),
          CONSTRAINT ck_settings_audit_retention_days CHECK (audit_retention_days BETWEEN 30 AND 2557),
          CONSTRAINT fk_settings_org_id_organizations FOREIGN KEY (org_id)
            REFERENCES core.organizations (id) ON DELETE CASCADE
        )""")
    for table in TABLES:
        op.execute(f"ALTER TABLE privacy.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE privacy.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON privacy.{table} USING (org_id = {CURRENT_ORG})")
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON privacy.requests, privacy.settings TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON privacy.consent_logs TO {APP_ROLE}")  # UPDATE: erasure


def downgrade() -> None:
    from northstar.core.security import field_cipher
    from northstar.settings import get_settings

    op.execute("DROP INDEX IF EXISTS socialproof.ix_notification_events_visitor")
    op.execute(f"REVOKE DELETE ON socialproof.notification_events FROM {APP_ROLE}")
    op.execute("DROP SCHEMA privacy CASCADE")
    op.execute("DROP FUNCTION core.audit_pseudonymise(text[], text, uuid, uuid)")
    op.execute("DROP FUNCTION core.audit_prune(timestamptz)")
    op.execute(f"""
        CREATE OR REPLACE FUNCTION core.audit_chain() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, core AS $$
        DECLARE head record;
        BEGIN
          INSERT INTO core.audit_chain_heads (org_id, seq, hash)
            VALUES (NEW.org_id, 0, repeat('0', 64)) ON CONFLICT (org_id) DO NOTHING;
          SELECT seq, hash INTO head FROM core.audit_chain_heads WHERE org_id = NEW.org_id FOR UPDATE;
          NEW.seq := head.seq + 1;
          NEW.prev_hash := head.hash;
          NEW.hash := (SELECT {_sha(OLD_CANONICAL)} FROM (SELECT NEW.*) e);
          UPDATE core.audit_chain_heads SET seq = NEW.seq, hash = NEW.hash WHERE org_id = NEW.org_id;
          RETURN NEW;
        END $$""")
    op.execute(f"""
        DO $$
        DECLARE e record; prev text; org uuid := NULL;
        BEGIN
          FOR e IN SELECT * FROM core.audit_events ORDER BY org_id, seq LOOP
            IF org IS DISTINCT FROM e.org_id THEN org := e.org_id; prev := repeat('0', 64); END IF;
            e.prev_hash := prev;
            e.hash := {_sha(OLD_CANONICAL)};
            UPDATE core.audit_events SET prev_hash = e.prev_hash, hash = e.hash WHERE id = e.id;
            UPDATE core.audit_chain_heads SET hash = e.hash WHERE org_id = e.org_id AND seq = e.seq;
            prev := e.hash;
          END LOOP;
        END $$""")
    op.execute("DROP TABLE core.audit_checkpoints")
    op.execute(
        "ALTER TABLE core.audit_events DROP COLUMN personal_salt, DROP COLUMN personal_hash, "
        "DROP COLUMN pseudonymised_at"
    )
    op.execute("ALTER TABLE auth.users ADD COLUMN email varchar(320), ADD COLUMN name varchar(200) NOT NULL DEFAULT ''")
    bind = op.get_bind()
    rows = bind.execute(text("SELECT id, email_encrypted, full_name_encrypted FROM auth.users")).all()
    if rows:
        cipher = field_cipher(get_settings())
        for user_id, email, name in rows:
            bind.execute(
                text("UPDATE auth.users SET email = :email, name = :name WHERE id = :id"),
                {
                    "email": cipher.decrypt(email, associated_data=str(user_id)),
                    "name": cipher.decrypt(name, associated_data=str(user_id)) if name else "",
                    "id": uuid.UUID(str(user_id)),
                },
            )
    op.execute("ALTER TABLE auth.users ALTER COLUMN email SET NOT NULL")
    op.execute("ALTER TABLE auth.users ADD CONSTRAINT uq_users_email UNIQUE (email)")
    op.execute("ALTER TABLE auth.users ADD CONSTRAINT ck_users_email_lowercase CHECK (email = lower(email))")
    op.execute(
        "ALTER TABLE auth.users DROP COLUMN email_encrypted, DROP COLUMN email_encryption_key_id, "
        "DROP COLUMN email_blind_index, DROP COLUMN full_name_encrypted, DROP COLUMN full_name_encryption_key_id"
    )
