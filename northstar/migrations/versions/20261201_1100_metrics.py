"""Metrics (seed 000 "KPIs"): normalised billing data, MRR movements, the KPI time series, cohorts, goals.

* ``customers``, ``subscriptions``, ``invoice_lines``: billing data from any source, normalised (docs/metrics.md);
  unique per integration and external id, so a sync that runs again updates instead of duplicating.
* ``fx_rates``: daily rates per organization (units per US dollar).
* ``policies``: how an organization counts: reporting currency and time zone, discounts deducted or not, and which
  metrics investors may see.
* ``movements``: each customer's MRR changes, with the invoice lines behind them (for "why did MRR drop?").
* ``kpis``: the seed's KPIs table: metric, value, time, plus grain, source and dimensions; what dashboards read.
* ``summaries``: each organization's additive totals (``engine.Totals``), so a change to a few customers updates
  them without recomputing everyone.
* ``cohorts``, ``spend`` (for CAC), ``goals``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 11:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"
ORG_FK = "FOREIGN KEY (org_id) REFERENCES core.organizations (id) ON DELETE CASCADE"
TABLES = (
    "policies",
    "customers",
    "subscriptions",
    "invoice_lines",
    "fx_rates",
    "movements",
    "summaries",
    "kpis",
    "cohorts",
    "spend",
    "goals",
)


def upgrade() -> None:
    op.execute("CREATE SCHEMA metrics")
    op.execute(f"""
        CREATE TABLE metrics.policies (
          org_id uuid NOT NULL,
          reporting_currency varchar(3) NOT NULL DEFAULT 'USD',
          timezone varchar(64) NOT NULL DEFAULT 'UTC',
          deduct_discounts boolean NOT NULL DEFAULT true,
          investor_metrics text[] NOT NULL DEFAULT '{{}}',
          updated_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_policies PRIMARY KEY (org_id),
          CONSTRAINT fk_policies_org_id_organizations {ORG_FK}
        )""")
    op.execute(f"""
        CREATE TABLE metrics.customers (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          integration_id uuid NOT NULL,
          external_id varchar(255) NOT NULL,
          name varchar(300),
          email varchar(320),
          country varchar(2),
          source_created_at timestamptz,
          CONSTRAINT pk_customers PRIMARY KEY (id),
          CONSTRAINT fk_customers_org_id_organizations {ORG_FK},
          CONSTRAINT fk_customers_integration FOREIGN KEY (org_id, integration_id)
            REFERENCES integrations.integrations (org_id, id) ON DELETE CASCADE,
          CONSTRAINT uq_customers_integration_id UNIQUE (integration_id, external_id),
          CONSTRAINT uq_customers_org_id_id UNIQUE (org_id, id)
        )""")
    op.execute(f"""
        CREATE TABLE metrics.subscriptions (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          integration_id uuid NOT NULL,
          external_id varchar(255) NOT NULL,
          customer_id uuid NOT NULL,
          status varchar(30) NOT NULL,
          started_at timestamptz,
          current_period_end timestamptz,
          cancel_at_period_end boolean NOT NULL DEFAULT false,
          canceled_at timestamptz,
          ended_at timestamptz,
          trial_end timestamptz,
          CONSTRAINT pk_subscriptions PRIMARY KEY (id),
          CONSTRAINT fk_subscriptions_org_id_organizations {ORG_FK},
          CONSTRAINT fk_subscriptions_customer FOREIGN KEY (org_id, customer_id)
            REFERENCES metrics.customers (org_id, id) ON DELETE CASCADE,
          CONSTRAINT uq_subscriptions_integration_id UNIQUE (integration_id, external_id)
        )""")
    op.execute(f"""
        CREATE TABLE metrics.invoice_lines (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          integration_id uuid NOT NULL,
          external_id varchar(255) NOT NULL,
          invoice_external_id varchar(255) NOT NULL,
          customer_id uuid NOT NULL,
          subscription_external_id varchar(255),
          item_external_id varchar(255),
          kind varchar(10) NOT NULL,
          proration boolean NOT NULL,
          period_start timestamptz NOT NULL,
          period_end timestamptz NOT NULL,
          currency varchar(3) NOT NULL,
          unit_amount bigint NOT NULL,
          quantity bigint NOT NULL,
          amount bigint NOT NULL,
          amount_excluding_tax bigint NOT NULL,
          net_amount bigint NOT NULL,
          interval varchar(5) NOT NULL,
          interval_count integer NOT NULL,
          invoice_status varchar(15) NOT NULL,
          issued_at timestamptz,
          CONSTRAINT pk_invoice_lines PRIMARY KEY (id),
          CONSTRAINT fk_invoice_lines_org_id_organizations {ORG_FK},
          CONSTRAINT fk_invoice_lines_customer FOREIGN KEY (org_id, customer_id)
            REFERENCES metrics.customers (org_id, id) ON DELETE CASCADE,
          CONSTRAINT uq_invoice_lines_integration_id UNIQUE (integration_id, external_id),
          CONSTRAINT ck_invoice_lines_kind CHECK (kind IN ('recurring', 'one_time', 'metered')),
          CONSTRAINT ck_invoice_lines_interval CHECK (interval IN ('day', 'week', 'month', 'year'))
        )""")
    op.execute("CREATE INDEX ix_invoice_lines_org_id_customer_id ON metrics.invoice_lines (org_id, customer_id)")
    op.execute(f"""
        CREATE TABLE metrics.fx_rates (
          org_id uuid NOT NULL,
          currency varchar(3) NOT NULL,
          day date NOT NULL,
          per_usd numeric(24, 10) NOT NULL,
          CONSTRAINT pk_fx_rates PRIMARY KEY (org_id, currency, day),
          CONSTRAINT fk_fx_rates_org_id_organizations {ORG_FK},
          CONSTRAINT ck_fx_rates_positive CHECK (per_usd > 0)
        )""")
    op.execute("""
        CREATE TABLE metrics.movements (
          id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
          org_id uuid NOT NULL,
          customer_id uuid NOT NULL,
          day date NOT NULL,
          kind varchar(15) NOT NULL,
          amount bigint NOT NULL,
          lines text[] NOT NULL,
          CONSTRAINT pk_movements PRIMARY KEY (id),
          CONSTRAINT fk_movements_customer FOREIGN KEY (org_id, customer_id)
            REFERENCES metrics.customers (org_id, id) ON DELETE CASCADE
        )""")
    op.execute("CREATE INDEX ix_movements_org_id_day ON metrics.movements (org_id, day)")
    op.execute("CREATE INDEX ix_movements_org_id_customer_id ON metrics.movements (org_id, customer_id)")
    op.execute(f"""
        CREATE TABLE metrics.summaries (
          org_id uuid NOT NULL,
          policy jsonb NOT NULL,
          totals jsonb NOT NULL,
          problem text,
          computed_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_summaries PRIMARY KEY (org_id),
          CONSTRAINT fk_summaries_org_id_organizations {ORG_FK}
        )""")
    op.execute(f"""
        CREATE TABLE metrics.kpis (
          org_id uuid NOT NULL,
          metric varchar(60) NOT NULL,
          grain varchar(5) NOT NULL,
          day date NOT NULL,
          source varchar(30) NOT NULL,
          dims varchar(200) NOT NULL DEFAULT '',
          value numeric NOT NULL,
          CONSTRAINT pk_kpis PRIMARY KEY (org_id, metric, grain, source, dims, day),
          CONSTRAINT fk_kpis_org_id_organizations {ORG_FK},
          CONSTRAINT ck_kpis_grain CHECK (grain IN ('day', 'month'))
        )""")
    op.execute(f"""
        CREATE TABLE metrics.cohorts (
          org_id uuid NOT NULL,
          cohort date NOT NULL,
          k integer NOT NULL,
          customers integer NOT NULL,
          mrr bigint NOT NULL,
          nrr numeric,
          grr numeric,
          CONSTRAINT pk_cohorts PRIMARY KEY (org_id, cohort, k),
          CONSTRAINT fk_cohorts_org_id_organizations {ORG_FK}
        )""")
    op.execute(f"""
        CREATE TABLE metrics.spend (
          org_id uuid NOT NULL,
          month date NOT NULL,
          channel varchar(60) NOT NULL,
          amount bigint NOT NULL,
          CONSTRAINT pk_spend PRIMARY KEY (org_id, month, channel),
          CONSTRAINT fk_spend_org_id_organizations {ORG_FK},
          CONSTRAINT ck_spend_amount CHECK (amount >= 0)
        )""")
    op.execute(f"""
        CREATE TABLE metrics.goals (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          metric varchar(60) NOT NULL,
          target numeric NOT NULL,
          target_date date NOT NULL,
          start_date date NOT NULL,
          created_by uuid,
          created_at timestamptz DEFAULT now() NOT NULL,
          updated_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_goals PRIMARY KEY (id),
          CONSTRAINT fk_goals_org_id_organizations {ORG_FK}
        )""")
    op.execute("CREATE INDEX ix_goals_org_id_metric ON metrics.goals (org_id, metric)")
    for table in TABLES:
        op.execute(f"ALTER TABLE metrics.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE metrics.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON metrics.{table} USING (org_id = {CURRENT_ORG})")
    op.execute(f"GRANT USAGE ON SCHEMA metrics TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA metrics TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP SCHEMA metrics CASCADE")
