"""Billing of social proof (seed 001 ``/sites/{siteId}/subscription``): ``socialproof.subscriptions``, one row per
organization with its plan, its provider's ids, its quota state and which usage alerts went out this period.

A change of plan or of quota state drops every process's widget caches (``socialproof.changed``, as for sites), so
a site over quota goes silent, and back, at once; usage measurements alone do not.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-09 11:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"


def upgrade() -> None:
    op.execute("""
        CREATE TABLE socialproof.subscriptions (
          org_id uuid NOT NULL,
          plan varchar(40),
          status varchar(20) DEFAULT 'active' NOT NULL,
          provider varchar(20) DEFAULT 'manual' NOT NULL,
          customer_id varchar(255),
          provider_subscription_id varchar(255),
          provider_event_created bigint,
          pending_plan varchar(40),
          period_start timestamptz,
          period_end timestamptz,
          usage_visitors bigint DEFAULT 0 NOT NULL,
          usage_measured_at timestamptz,
          alert_period_start timestamptz,
          alerted_percent smallint DEFAULT 0 NOT NULL,
          quota_reached_at timestamptz,
          quota_until timestamptz,
          changed_by uuid,
          created_at timestamptz DEFAULT now() NOT NULL,
          updated_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_subscriptions PRIMARY KEY (org_id),
          CONSTRAINT fk_subscriptions_org_id_organizations FOREIGN KEY (org_id)
            REFERENCES core.organizations (id) ON DELETE CASCADE,
          CONSTRAINT ck_subscriptions_provider CHECK (provider IN ('manual', 'stripe')),
          CONSTRAINT ck_subscriptions_alerted_percent CHECK (alerted_percent BETWEEN 0 AND 100)
        )""")
    op.execute("ALTER TABLE socialproof.subscriptions ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE socialproof.subscriptions FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON socialproof.subscriptions USING (org_id = {CURRENT_ORG})")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON socialproof.subscriptions TO {APP_ROLE}")
    op.execute(
        "CREATE TRIGGER publish_change AFTER INSERT OR DELETE ON socialproof.subscriptions "
        "FOR EACH ROW EXECUTE FUNCTION socialproof.publish_change('org_id')"
    )
    op.execute(
        "CREATE TRIGGER publish_plan_change AFTER UPDATE ON socialproof.subscriptions FOR EACH ROW "
        "WHEN (OLD.plan IS DISTINCT FROM NEW.plan OR OLD.quota_reached_at IS DISTINCT FROM NEW.quota_reached_at"
        " OR OLD.quota_until IS DISTINCT FROM NEW.quota_until) "
        "EXECUTE FUNCTION socialproof.publish_change('org_id')"
    )


def downgrade() -> None:
    op.execute("DROP TABLE socialproof.subscriptions")
