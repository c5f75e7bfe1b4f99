"""Reports (seed 000 "Reports"): generated reports with their facts, narrative and files, their schedules per
organization, and the links that share a report or the live investor dashboard.

* ``reports.reports``: kind (weekly digest, monthly report, investor update), period, status, the fact-sheet snapshot,
  the narrative and its generator, and the object-store keys of its files (HTML, PDF, MP4, WebVTT, poster).
* ``reports.schedules``: per org and kind, when it is made in the org's time zone and the last period made.
* ``reports.share_links``: the hash of a link's token (and of its optional passcode), its expiry and revocation.

A share link is opened before its org is known: its policy also admits the one row whose id is in
``northstar.credential_id``, as for other credentials.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"
ORG_FK = "FOREIGN KEY (org_id) REFERENCES core.organizations (id) ON DELETE CASCADE"
KINDS = "('weekly_digest', 'monthly_report', 'investor_update')"
TABLES = ("reports", "schedules", "share_links")


def upgrade() -> None:
    op.execute(f"""
        CREATE TABLE reports.reports (
          id uuid NOT NULL,
          org_id uuid NOT NULL,
          kind varchar(20) NOT NULL,
          period_start date NOT NULL,
          period_end date NOT NULL,
          formats text[] NOT NULL,
          status varchar(10) DEFAULT 'queued' NOT NULL,
          title text,
          narrative text,
          facts jsonb DEFAULT '[]' NOT NULL,
          recommendations jsonb DEFAULT '[]' NOT NULL,
          generator varchar(120),
          checks jsonb DEFAULT '[]' NOT NULL,
          files jsonb DEFAULT '{{}}' NOT NULL,
          error text,
          scheduled boolean DEFAULT false NOT NULL,
          requested_by uuid,
          created_at timestamptz DEFAULT now() NOT NULL,
          completed_at timestamptz,
          CONSTRAINT pk_reports PRIMARY KEY (id),
          CONSTRAINT fk_reports_org_id_organizations {ORG_FK},
          CONSTRAINT uq_reports_org_id_id UNIQUE (org_id, id),
          CONSTRAINT ck_reports_kind CHECK (kind IN {KINDS}),
          CONSTRAINT ck_reports_status CHECK (status IN ('queued', 'running', 'completed', 'failed'))
        )""")
    op.execute("CREATE INDEX ix_reports_org_id_created_at ON reports.reports (org_id, created_at)")
    op.execute(f"""
        CREATE TABLE reports.schedules (
          org_id uuid NOT NULL,
          kind varchar(20) NOT NULL,
          enabled boolean DEFAULT true NOT NULL,
          weekday integer DEFAULT 0 NOT NULL,
          day integer DEFAULT 1 NOT NULL,
          hour integer DEFAULT 8 NOT NULL,
          formats text[] DEFAULT '{{html,pdf}}' NOT NULL,
          last_period date,
          updated_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_schedules PRIMARY KEY (org_id, kind),
          CONSTRAINT fk_schedules_org_id_organizations {ORG_FK},
          CONSTRAINT ck_schedules_kind CHECK (kind IN {KINDS}),
          CONSTRAINT ck_schedules_weekday CHECK (weekday BETWEEN 0 AND 6),
          CONSTRAINT ck_schedules_day CHECK (day BETWEEN 1 AND 28),
          CONSTRAINT ck_schedules_hour CHECK (hour BETWEEN 0 AND 23)
        )""")
    op.execute(f"""
        CREATE TABLE reports.share_links (
          id uuid NOT NULL,
          org_id uuid NOT NULL,
          report_id uuid,
          token_hash varchar(64) NOT NULL,
          passcode_hash text,
          label varchar(200) NOT NULL,
          expires_at timestamptz NOT NULL,
          revoked_at timestamptz,
          views integer DEFAULT 0 NOT NULL,
          last_viewed_at timestamptz,
          created_by uuid,
          created_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_share_links PRIMARY KEY (id),
          CONSTRAINT fk_share_links_org_id_organizations {ORG_FK},
          CONSTRAINT fk_share_links_report FOREIGN KEY (org_id, report_id)
            REFERENCES reports.reports (org_id, id) ON DELETE CASCADE,
          CONSTRAINT uq_share_links_token_hash UNIQUE (token_hash)
        )""")
    op.execute("CREATE INDEX ix_share_links_org_id ON reports.share_links (org_id)")
    for table in TABLES:
        op.execute(f"ALTER TABLE reports.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE reports.{table} FORCE ROW LEVEL SECURITY")
        policy = f"org_id = {CURRENT_ORG}"
        if table == "share_links":
            policy += " OR id = nullif(current_setting('northstar.credential_id', true), '')::uuid"
        op.execute(f"CREATE POLICY tenant_isolation ON reports.{table} USING ({policy})")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA reports TO {APP_ROLE}")


def downgrade() -> None:
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE reports.{table}")
