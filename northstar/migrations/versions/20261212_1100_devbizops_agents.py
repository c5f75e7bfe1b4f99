"""DevBizOps' agents: ``devbizops.agent_runs`` (each run's input, output, generator, tokens, cost and trace id),
``devbizops.agent_steps`` (each step with what it found and its span) and ``devbizops.proposals`` (what a run
proposes, and who approved or rejected it), under forced row-level security.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-12 11:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"
TABLES = ("agent_runs", "agent_steps", "proposals")


def _org(table: str) -> str:
    return (
        f"CONSTRAINT fk_{table}_org_id_organizations FOREIGN KEY (org_id)"
        " REFERENCES core.organizations (id) ON DELETE CASCADE"
    )


def upgrade() -> None:
    op.execute(f"""
        CREATE TABLE devbizops.agent_runs (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          agent varchar(40) NOT NULL,
          status varchar(10) NOT NULL,
          mode varchar(15) NOT NULL,
          input jsonb NOT NULL,
          output jsonb,
          generator varchar(120),
          input_tokens integer DEFAULT 0 NOT NULL,
          output_tokens integer DEFAULT 0 NOT NULL,
          cost_micros bigint DEFAULT 0 NOT NULL,
          trace_id varchar(32),
          error text,
          replay_of uuid,
          created_by uuid,
          created_at timestamptz DEFAULT now() NOT NULL,
          started_at timestamptz,
          finished_at timestamptz,
          CONSTRAINT pk_agent_runs PRIMARY KEY (id),
          CONSTRAINT uq_agent_runs_org_id_id UNIQUE (org_id, id),
          {_org("agent_runs")},
          CONSTRAINT ck_agent_runs_status CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
          CONSTRAINT ck_agent_runs_mode CHECK (mode IN ('deterministic', 'llm'))
        )""")
    op.execute("CREATE INDEX ix_agent_runs_org_id_created_at ON devbizops.agent_runs (org_id, created_at)")
    op.execute(f"""
        CREATE TABLE devbizops.agent_steps (
          org_id uuid NOT NULL,
          run_id uuid NOT NULL,
          position integer NOT NULL,
          name varchar(60) NOT NULL,
          detail jsonb NOT NULL,
          span_id varchar(16),
          started_at timestamptz NOT NULL,
          finished_at timestamptz NOT NULL,
          CONSTRAINT pk_agent_steps PRIMARY KEY (run_id, position),
          {_org("agent_steps")},
          CONSTRAINT fk_agent_steps_run FOREIGN KEY (org_id, run_id)
            REFERENCES devbizops.agent_runs (org_id, id) ON DELETE CASCADE
        )""")
    op.execute(f"""
        CREATE TABLE devbizops.proposals (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          run_id uuid NOT NULL,
          position integer NOT NULL,
          kind varchar(20) NOT NULL,
          payload jsonb NOT NULL,
          status varchar(10) NOT NULL,
          work_item_id uuid,
          target_integration_id uuid,
          external_key varchar(255),
          external_url varchar(2048),
          decided_by uuid,
          decided_at timestamptz,
          reason text,
          error text,
          created_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_proposals PRIMARY KEY (id),
          CONSTRAINT uq_proposals_org_id_id UNIQUE (org_id, id),
          {_org("proposals")},
          CONSTRAINT fk_proposals_run FOREIGN KEY (org_id, run_id)
            REFERENCES devbizops.agent_runs (org_id, id) ON DELETE CASCADE,
          CONSTRAINT uq_proposals_run_id_position UNIQUE (run_id, position),
          CONSTRAINT ck_proposals_kind CHECK (
            kind IN ('create_ticket', 'add_to_work_item', 'roadmap_status', 'roadmap_slip', 'roadmap_rank')),
          CONSTRAINT ck_proposals_status CHECK (
            status IN ('proposed', 'approved', 'filing', 'rejected', 'applied', 'failed'))
        )""")
    op.execute("CREATE INDEX ix_proposals_org_id_status ON devbizops.proposals (org_id, status)")
    for table in TABLES:
        op.execute(f"ALTER TABLE devbizops.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE devbizops.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON devbizops.{table} USING (org_id = {CURRENT_ORG})")
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON devbizops.{table} TO {APP_ROLE}")


def downgrade() -> None:
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE devbizops.{table}")
