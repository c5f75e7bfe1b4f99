"""Webhooks out and in (seed 001 "HMAC-signed webhooks"):

* ``webhooks.endpoints``: merchants' receivers, their subscribed event types and encrypted signing secrets (the
  previous one too, during a rotation's grace period), and their failure record;
* ``webhooks.webhook_deliveries``: each message to each endpoint (the seed's table, a superset of its columns);
* ``webhooks.delivery_attempts``: every attempt of a delivery;
* ``socialproof.inbound_hooks``: a site's inbound hooks (Shopify, WooCommerce, a generic or Zapier hook) and their
  encrypted secrets; a hook's row is visible by its id before its org is known (the credential-id policy), since
  the vendor's request names only the hook.

Revision ID: 0020
Revises: 0025
Create Date: 2026-12-09 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"
CREDENTIAL = "nullif(current_setting('northstar.credential_id', true), '')::uuid"
TABLES = ("webhooks.endpoints", "webhooks.webhook_deliveries", "webhooks.delivery_attempts")


def _org(table: str) -> str:
    return (
        f"CONSTRAINT fk_{table}_org_id_organizations FOREIGN KEY (org_id)"
        " REFERENCES core.organizations (id) ON DELETE CASCADE"
    )


def upgrade() -> None:
    op.execute("CREATE SCHEMA webhooks")
    op.execute(f"""
        CREATE TABLE webhooks.endpoints (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          url varchar(2048) NOT NULL,
          description varchar(500) DEFAULT '' NOT NULL,
          event_types text[] NOT NULL,
          status varchar(10) DEFAULT 'active' NOT NULL,
          secret_encrypted text NOT NULL,
          previous_secret_encrypted text,
          previous_secret_expires_at timestamptz,
          failing_since timestamptz,
          last_error text,
          disabled_at timestamptz,
          disabled_reason text,
          created_by uuid,
          created_at timestamptz DEFAULT now() NOT NULL,
          updated_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_endpoints PRIMARY KEY (id),
          CONSTRAINT uq_endpoints_org_id_id UNIQUE (org_id, id),
          {_org("endpoints")},
          CONSTRAINT ck_endpoints_status CHECK (status IN ('active', 'disabled'))
        )""")
    op.execute("CREATE INDEX ix_endpoints_org_id_created_at ON webhooks.endpoints (org_id, created_at)")
    op.execute(f"""
        CREATE TABLE webhooks.webhook_deliveries (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          endpoint_id uuid NOT NULL,
          integration_id uuid,
          message_id varchar(64) NOT NULL,
          event_type varchar(40) NOT NULL,
          payload jsonb NOT NULL,
          status varchar(10) DEFAULT 'pending' NOT NULL,
          attempt_count integer DEFAULT 0 NOT NULL,
          next_attempt_at timestamptz,
          last_attempt_at timestamptz,
          last_response_code integer,
          last_response_ms integer,
          last_response_body text,
          last_error text,
          delivered_at timestamptz,
          created_at timestamptz DEFAULT now() NOT NULL,
          updated_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_webhook_deliveries PRIMARY KEY (id),
          CONSTRAINT uq_webhook_deliveries_org_id_id UNIQUE (org_id, id),
          {_org("webhook_deliveries")},
          CONSTRAINT fk_webhook_deliveries_endpoint FOREIGN KEY (org_id, endpoint_id)
            REFERENCES webhooks.endpoints (org_id, id) ON DELETE CASCADE,
          CONSTRAINT ck_webhook_deliveries_status CHECK (status IN ('pending', 'retrying', 'succeeded', 'failed'))
        )""")
    op.execute(
        "CREATE INDEX ix_webhook_deliveries_endpoint ON webhooks.webhook_deliveries (org_id, endpoint_id, created_at)"
    )
    op.execute(f"""
        CREATE TABLE webhooks.delivery_attempts (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          delivery_id uuid NOT NULL,
          number integer NOT NULL,
          manual boolean DEFAULT false NOT NULL,
          attempted_at timestamptz NOT NULL,
          response_code integer,
          response_ms integer,
          response_body text,
          error text,
          CONSTRAINT pk_delivery_attempts PRIMARY KEY (id),
          {_org("delivery_attempts")},
          CONSTRAINT fk_delivery_attempts_delivery FOREIGN KEY (org_id, delivery_id)
            REFERENCES webhooks.webhook_deliveries (org_id, id) ON DELETE CASCADE
        )""")
    op.execute(
        "CREATE INDEX ix_delivery_attempts_delivery ON webhooks.delivery_attempts (org_id, delivery_id, attempted_at)"
    )
    op.execute(f"""
        CREATE TABLE socialproof.inbound_hooks (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          site_id uuid NOT NULL,
          provider varchar(20) NOT NULL,
          name varchar(200) NOT NULL,
          secret_encrypted text NOT NULL,
          share_details boolean DEFAULT false NOT NULL,
          last_received_at timestamptz,
          created_by uuid,
          created_at timestamptz DEFAULT now() NOT NULL,
          updated_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_inbound_hooks PRIMARY KEY (id),
          CONSTRAINT uq_inbound_hooks_org_id_id UNIQUE (org_id, id),
          {_org("inbound_hooks")},
          CONSTRAINT fk_inbound_hooks_site FOREIGN KEY (org_id, site_id)
            REFERENCES socialproof.sites (org_id, id) ON DELETE CASCADE,
          CONSTRAINT ck_inbound_hooks_provider CHECK (provider IN ('shopify', 'woocommerce', 'generic'))
        )""")
    op.execute("CREATE INDEX ix_inbound_hooks_org_id_site_id ON socialproof.inbound_hooks (org_id, site_id)")
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING (org_id = {CURRENT_ORG})")
    op.execute("ALTER TABLE socialproof.inbound_hooks ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE socialproof.inbound_hooks FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON socialproof.inbound_hooks"
        f" USING (org_id = {CURRENT_ORG} OR id = {CREDENTIAL})"
    )
    op.execute(f"GRANT USAGE ON SCHEMA webhooks TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA webhooks TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON socialproof.inbound_hooks TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP TABLE socialproof.inbound_hooks")
    op.execute("DROP SCHEMA webhooks CASCADE")
