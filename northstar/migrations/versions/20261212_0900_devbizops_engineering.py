"""DevBizOps' unified engineering model (schema ``devbizops``): repositories, changes (pull or merge requests) and
their reviews, deployments, incidents, work items and people, each keyed by the integration it came from and the
source's id, under forced row-level security.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-12 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"
TABLES = ("repositories", "changes", "reviews", "deployments", "incidents", "work_items", "people")


def _owned(table: str) -> str:
    """The org and integration keys every table has: its rows go with either."""
    return (
        f"CONSTRAINT fk_{table}_org_id_organizations FOREIGN KEY (org_id)"
        " REFERENCES core.organizations (id) ON DELETE CASCADE,"
        f" CONSTRAINT fk_{table}_integration FOREIGN KEY (org_id, integration_id)"
        " REFERENCES integrations.integrations (org_id, id) ON DELETE CASCADE"
    )


def _keyed(table: str) -> str:
    return (
        f"CONSTRAINT pk_{table} PRIMARY KEY (id),"
        f" CONSTRAINT uq_{table}_integration_id UNIQUE (integration_id, external_id), {_owned(table)}"
    )


def upgrade() -> None:
    op.execute("CREATE SCHEMA devbizops")
    op.execute(f"""
        CREATE TABLE devbizops.repositories (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          integration_id uuid NOT NULL,
          external_id varchar(255) NOT NULL,
          name varchar(255) NOT NULL,
          url varchar(2048),
          default_branch varchar(255),
          archived boolean NOT NULL,
          source_created_at timestamptz,
          team_id uuid,
          {_keyed("repositories")},
          CONSTRAINT uq_repositories_org_id_id UNIQUE (org_id, id),
          CONSTRAINT fk_repositories_team FOREIGN KEY (org_id, team_id)
            REFERENCES core.teams (org_id, id) ON DELETE SET NULL (team_id)
        )""")
    op.execute(f"""
        CREATE TABLE devbizops.changes (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          integration_id uuid NOT NULL,
          external_id varchar(255) NOT NULL,
          repository varchar(255) NOT NULL,
          number integer NOT NULL,
          title text NOT NULL,
          body text,
          url varchar(2048),
          author varchar(255),
          state varchar(10) NOT NULL,
          created_at timestamptz NOT NULL,
          first_commit_at timestamptz,
          merged_at timestamptz,
          closed_at timestamptz,
          merge_sha varchar(64),
          additions integer,
          deletions integer,
          source_updated_at timestamptz,
          {_keyed("changes")},
          CONSTRAINT ck_changes_state CHECK (state IN ('open', 'closed', 'merged'))
        )""")
    op.execute("CREATE INDEX ix_changes_org_id_merged_at ON devbizops.changes (org_id, merged_at)")
    op.execute(f"""
        CREATE TABLE devbizops.reviews (
          org_id uuid NOT NULL,
          integration_id uuid NOT NULL,
          change_external_id varchar(255) NOT NULL,
          position integer NOT NULL,
          reviewer varchar(255) NOT NULL,
          state varchar(30) NOT NULL,
          submitted_at timestamptz NOT NULL,
          CONSTRAINT pk_reviews PRIMARY KEY (integration_id, change_external_id, position),
          {_owned("reviews")}
        )""")
    op.execute(f"""
        CREATE TABLE devbizops.deployments (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          integration_id uuid NOT NULL,
          external_id varchar(255) NOT NULL,
          repository varchar(255) NOT NULL,
          environment varchar(255) NOT NULL,
          production boolean NOT NULL,
          status varchar(10) NOT NULL,
          created_at timestamptz NOT NULL,
          finished_at timestamptz,
          sha varchar(64),
          ref varchar(255),
          {_keyed("deployments")},
          CONSTRAINT ck_deployments_status CHECK (status IN ('pending', 'success', 'failure'))
        )""")
    op.execute(f"""
        CREATE TABLE devbizops.incidents (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          integration_id uuid NOT NULL,
          external_id varchar(255) NOT NULL,
          repository varchar(255),
          title text NOT NULL,
          url varchar(2048),
          started_at timestamptz NOT NULL,
          resolved_at timestamptz,
          {_keyed("incidents")}
        )""")
    op.execute(f"""
        CREATE TABLE devbizops.work_items (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          integration_id uuid NOT NULL,
          external_id varchar(255) NOT NULL,
          key varchar(255) NOT NULL,
          title text NOT NULL,
          body text,
          url varchar(2048),
          repository varchar(255),
          assignee varchar(255),
          labels text[] NOT NULL,
          status varchar(12) NOT NULL,
          created_at timestamptz NOT NULL,
          started_at timestamptz,
          completed_at timestamptz,
          source_updated_at timestamptz,
          {_keyed("work_items")},
          CONSTRAINT ck_work_items_status CHECK (status IN ('todo', 'in_progress', 'done', 'canceled'))
        )""")
    op.execute("CREATE INDEX ix_work_items_org_id_key ON devbizops.work_items (org_id, key)")
    op.execute(f"""
        CREATE TABLE devbizops.people (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          integration_id uuid NOT NULL,
          external_id varchar(255) NOT NULL,
          login varchar(255) NOT NULL,
          name varchar(300),
          {_keyed("people")}
        )""")
    for table in TABLES:
        op.execute(f"ALTER TABLE devbizops.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE devbizops.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON devbizops.{table} USING (org_id = {CURRENT_ORG})")
    op.execute(f"GRANT USAGE ON SCHEMA devbizops TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA devbizops TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP SCHEMA devbizops CASCADE")
