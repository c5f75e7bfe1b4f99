"""Metrics from non-billing sources: store orders and refunds, web traffic, product events, sales deals.

* ``orders``, ``order_refunds`` (Shopify): unique per integration and the store's id; refunds count on their own day.
* ``traffic`` (GA4): sessions, users and conversions per day and channel; a day synced again replaces itself.
* ``product_events`` (Mixpanel): one row per ``$insert_id``, so an event exported twice is counted once.
* ``deals`` (HubSpot): each deal's pipeline, stage, amount and dates as last synced.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"
ORG_FK = "FOREIGN KEY (org_id) REFERENCES core.organizations (id) ON DELETE CASCADE"
TABLES = ("orders", "order_refunds", "traffic", "product_events", "deals")


def _integration_fk(table: str) -> str:
    return (
        f"CONSTRAINT fk_{table}_integration FOREIGN KEY (org_id, integration_id) "
        "REFERENCES integrations.integrations (org_id, id) ON DELETE CASCADE"
    )


def upgrade() -> None:
    op.execute(f"""
        CREATE TABLE metrics.orders (
          org_id uuid NOT NULL,
          integration_id uuid NOT NULL,
          external_id varchar(255) NOT NULL,
          customer varchar(255),
          placed_at timestamptz NOT NULL,
          currency varchar(3) NOT NULL,
          subtotal bigint NOT NULL,
          shipping bigint NOT NULL,
          tax bigint NOT NULL,
          total bigint NOT NULL,
          financial_status varchar(30) NOT NULL,
          cancelled_at timestamptz,
          test boolean NOT NULL DEFAULT false,
          CONSTRAINT pk_orders PRIMARY KEY (integration_id, external_id),
          CONSTRAINT fk_orders_org_id_organizations {ORG_FK},
          {_integration_fk("orders")}
        )""")
    op.execute("CREATE INDEX ix_orders_org_id_placed_at ON metrics.orders (org_id, placed_at)")
    op.execute(f"""
        CREATE TABLE metrics.order_refunds (
          org_id uuid NOT NULL,
          integration_id uuid NOT NULL,
          external_id varchar(255) NOT NULL,
          "order" varchar(255) NOT NULL,
          refunded_at timestamptz NOT NULL,
          currency varchar(3) NOT NULL,
          amount bigint NOT NULL,
          CONSTRAINT pk_order_refunds PRIMARY KEY (integration_id, external_id),
          CONSTRAINT fk_order_refunds_org_id_organizations {ORG_FK},
          {_integration_fk("order_refunds")}
        )""")
    op.execute(f"""
        CREATE TABLE metrics.traffic (
          org_id uuid NOT NULL,
          integration_id uuid NOT NULL,
          day date NOT NULL,
          channel varchar(100) NOT NULL,
          sessions bigint NOT NULL,
          users bigint NOT NULL,
          new_users bigint NOT NULL,
          conversions numeric NOT NULL,
          CONSTRAINT pk_traffic PRIMARY KEY (integration_id, day, channel),
          CONSTRAINT fk_traffic_org_id_organizations {ORG_FK},
          {_integration_fk("traffic")}
        )""")
    op.execute(f"""
        CREATE TABLE metrics.product_events (
          org_id uuid NOT NULL,
          integration_id uuid NOT NULL,
          insert_id varchar(255) NOT NULL,
          name varchar(255) NOT NULL,
          distinct_id varchar(255) NOT NULL,
          occurred_at timestamptz NOT NULL,
          CONSTRAINT pk_product_events PRIMARY KEY (integration_id, insert_id),
          CONSTRAINT fk_product_events_org_id_organizations {ORG_FK},
          {_integration_fk("product_events")}
        )""")
    op.execute("CREATE INDEX ix_product_events_org_id_occurred_at ON metrics.product_events (org_id, occurred_at)")
    op.execute(f"""
        CREATE TABLE metrics.deals (
          org_id uuid NOT NULL,
          integration_id uuid NOT NULL,
          external_id varchar(255) NOT NULL,
          name varchar(500),
          pipeline varchar(255) NOT NULL,
          stage varchar(255) NOT NULL,
          amount bigint,
          currency varchar(3) NOT NULL,
          created_at timestamptz,
          close_date timestamptz,
          closed boolean NOT NULL,
          won boolean NOT NULL,
          updated_at timestamptz,
          CONSTRAINT pk_deals PRIMARY KEY (integration_id, external_id),
          CONSTRAINT fk_deals_org_id_organizations {ORG_FK},
          {_integration_fk("deals")}
        )""")
    for table in TABLES:
        op.execute(f"ALTER TABLE metrics.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE metrics.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON metrics.{table} USING (org_id = {CURRENT_ORG})")
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON metrics.{table} TO {APP_ROLE}")


def downgrade() -> None:
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE metrics.{table}")
