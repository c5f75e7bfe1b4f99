"""Integrations (seed 000 "Integrations"): connected data sources, their syncs, source records, inbound webhooks.

* ``integrations.integrations``: one connected account of a provider; credentials AES-256-GCM encrypted
  (``core/crypto.py``, the row id as associated data); ``state`` holds each stream's sync cursor, written in the same
  transaction as the records of the page it follows, so a killed sync resumes exactly where it stopped.
* ``integrations.sync_runs``: every sync, with what it fetched and why it failed.
* ``integrations.records``: the source objects as fetched (the records behind every metric), by stream and id.
* ``integrations.webhook_deliveries``: inbound deliveries, unique per provider event id (a replay is processed once).

Inbound webhooks name the integration in their URL and authenticate by signature; the integrations policy also
admits the one row whose id is in ``northstar.credential_id``, as for other credentials.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"
TABLES = ("integrations", "sync_runs", "records", "webhook_deliveries")


def upgrade() -> None:
    op.execute("CREATE SCHEMA integrations")
    op.execute("""
        CREATE TABLE integrations.integrations (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          provider varchar(20) NOT NULL,
          name varchar(200) NOT NULL,
          status varchar(20) NOT NULL,
          config jsonb NOT NULL,
          credentials_encrypted text NOT NULL,
          state jsonb NOT NULL DEFAULT '{}'::jsonb,
          last_sync_at timestamptz,
          last_success_at timestamptz,
          last_error text,
          last_error_at timestamptz,
          created_by uuid,
          created_at timestamptz DEFAULT now() NOT NULL,
          updated_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_integrations PRIMARY KEY (id),
          CONSTRAINT fk_integrations_org_id_organizations FOREIGN KEY (org_id)
            REFERENCES core.organizations (id) ON DELETE CASCADE,
          CONSTRAINT uq_integrations_org_id_id UNIQUE (org_id, id),
          CONSTRAINT ck_integrations_status CHECK (status IN ('active', 'paused', 'error'))
        )""")
    op.execute("CREATE INDEX ix_integrations_org_id_created_at ON integrations.integrations (org_id, created_at)")
    op.execute("""
        CREATE TABLE integrations.sync_runs (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          integration_id uuid NOT NULL,
          trigger varchar(20) NOT NULL,
          status varchar(20) NOT NULL,
          queued_at timestamptz DEFAULT now() NOT NULL,
          started_at timestamptz,
          finished_at timestamptz,
          fetched jsonb NOT NULL DEFAULT '{}'::jsonb,
          error text,
          CONSTRAINT pk_sync_runs PRIMARY KEY (id),
          CONSTRAINT fk_sync_runs_integration FOREIGN KEY (org_id, integration_id)
            REFERENCES integrations.integrations (org_id, id) ON DELETE CASCADE,
          CONSTRAINT ck_sync_runs_status CHECK (status IN ('queued', 'running', 'succeeded', 'failed'))
        )""")
    op.execute("CREATE INDEX ix_sync_runs_integration ON integrations.sync_runs (org_id, integration_id, queued_at)")
    op.execute("""
        CREATE TABLE integrations.records (
          org_id uuid NOT NULL,
          integration_id uuid NOT NULL,
          stream varchar(40) NOT NULL,
          external_id varchar(255) NOT NULL,
          data jsonb NOT NULL,
          synced_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_records PRIMARY KEY (integration_id, stream, external_id),
          CONSTRAINT fk_records_integration FOREIGN KEY (org_id, integration_id)
            REFERENCES integrations.integrations (org_id, id) ON DELETE CASCADE
        )""")
    op.execute("""
        CREATE TABLE integrations.webhook_deliveries (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          integration_id uuid NOT NULL,
          event_id varchar(255) NOT NULL,
          topic varchar(120) NOT NULL,
          status varchar(20) NOT NULL,
          payload jsonb NOT NULL,
          received_at timestamptz DEFAULT now() NOT NULL,
          processed_at timestamptz,
          error text,
          CONSTRAINT pk_webhook_deliveries PRIMARY KEY (id),
          CONSTRAINT fk_webhook_deliveries_integration FOREIGN KEY (org_id, integration_id)
            REFERENCES integrations.integrations (org_id, id) ON DELETE CASCADE,
          CONSTRAINT uq_webhook_deliveries_integration_id UNIQUE (integration_id, event_id),
          CONSTRAINT ck_webhook_deliveries_status CHECK (status IN ('queued', 'processed', 'failed'))
        )""")
    for table in TABLES:
        op.execute(f"ALTER TABLE integrations.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE integrations.{table} FORCE ROW LEVEL SECURITY")
        policy = f"org_id = {CURRENT_ORG}"
        if table == "integrations":
            policy += " OR id = nullif(current_setting('northstar.credential_id', true), '')::uuid"
        op.execute(f"CREATE POLICY tenant_isolation ON integrations.{table} USING ({policy})")
    op.execute(f"GRANT USAGE ON SCHEMA integrations TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA integrations TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP SCHEMA integrations CASCADE")
