"""Archives of raw social proof events (seed 001 "Data Retention & Archival").

* ``socialproof.archives`` (platform): one row per archive file of a raw event month, its manifest (rows, sha256,
  time range, schema version, object key) and status (writing, written, verified, failed). Partitions hold every
  org's events, so an archive is not any one org's; the table holds no tenant data and the app role may read it.
* ``socialproof.archive_orgs`` (tenant): each org's share of an archive (rows, first and last event), which is what
  an org is shown of the archives; forced RLS.
* ``socialproof.archive_restores`` and ``socialproof.restored_events`` (tenant): an org's restore of a period of an
  archive and the events it brought back, until it expires; forced RLS.
* The archiver reads a whole month across orgs as the table owner, who under forced RLS sees nothing unless it is a
  superuser: a policy for the owner role only (not the app role, which every request switches to) admits every
  row when the transaction sets ``northstar.archive`` to ``on``; the same lets it record each org's share.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-09 15:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"
ARCHIVING = "current_setting('northstar.archive', true) = 'on'"
TENANT_TABLES = ("archive_orgs", "archive_restores", "restored_events")


def _org(table: str) -> str:
    return (
        f"CONSTRAINT fk_{table}_org_id_organizations FOREIGN KEY (org_id)"
        " REFERENCES core.organizations (id) ON DELETE CASCADE"
    )


def upgrade() -> None:
    op.execute("""
        CREATE TABLE socialproof.archives (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          month date NOT NULL,
          object_key varchar(1024) NOT NULL,
          status varchar(12) NOT NULL,
          schema_version smallint NOT NULL,
          range_start timestamptz NOT NULL,
          range_end timestamptz NOT NULL,
          rows bigint,
          size_bytes bigint,
          checksum varchar(64),
          first_occurred_at timestamptz,
          last_occurred_at timestamptz,
          error text,
          created_at timestamptz DEFAULT now() NOT NULL,
          written_at timestamptz,
          verified_at timestamptz,
          CONSTRAINT pk_archives PRIMARY KEY (id),
          CONSTRAINT ck_archives_status CHECK (status IN ('writing', 'written', 'verified', 'failed'))
        )""")
    op.execute("CREATE INDEX ix_archives_month ON socialproof.archives (month)")
    op.execute(f"""
        CREATE TABLE socialproof.archive_orgs (
          archive_id uuid NOT NULL,
          org_id uuid NOT NULL,
          rows bigint NOT NULL,
          first_occurred_at timestamptz NOT NULL,
          last_occurred_at timestamptz NOT NULL,
          CONSTRAINT pk_archive_orgs PRIMARY KEY (archive_id, org_id),
          CONSTRAINT fk_archive_orgs_archive FOREIGN KEY (archive_id)
            REFERENCES socialproof.archives (id) ON DELETE CASCADE,
          {_org("archive_orgs")}
        )""")
    op.execute("CREATE INDEX ix_archive_orgs_org_id_archive_id ON socialproof.archive_orgs (org_id, archive_id)")
    op.execute(f"""
        CREATE TABLE socialproof.archive_restores (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          archive_id uuid NOT NULL,
          site_id uuid,
          period_start timestamptz NOT NULL,
          period_end timestamptz NOT NULL,
          status varchar(12) NOT NULL,
          rows bigint DEFAULT 0 NOT NULL,
          keep_days smallint NOT NULL,
          error text,
          requested_by uuid,
          created_at timestamptz DEFAULT now() NOT NULL,
          finished_at timestamptz,
          expires_at timestamptz,
          CONSTRAINT pk_archive_restores PRIMARY KEY (id),
          CONSTRAINT uq_archive_restores_org_id_id UNIQUE (org_id, id),
          CONSTRAINT ck_archive_restores_status
            CHECK (status IN ('pending', 'running', 'ready', 'failed', 'expired')),
          CONSTRAINT fk_archive_restores_archive FOREIGN KEY (archive_id)
            REFERENCES socialproof.archives (id) ON DELETE CASCADE,
          CONSTRAINT fk_archive_restores_site FOREIGN KEY (org_id, site_id)
            REFERENCES socialproof.sites (org_id, id) ON DELETE CASCADE,
          {_org("archive_restores")}
        )""")
    op.execute(
        "CREATE INDEX ix_archive_restores_org_id_created_at ON socialproof.archive_restores (org_id, created_at)"
    )
    op.execute("CREATE INDEX ix_archive_restores_expires_at ON socialproof.archive_restores (expires_at)")
    op.execute("""
        CREATE TABLE socialproof.restored_events (
          org_id uuid NOT NULL,
          restore_id uuid NOT NULL,
          id uuid NOT NULL,
          site_id uuid NOT NULL,
          event_type varchar(20) NOT NULL,
          event_name varchar(100),
          notification_id uuid,
          visitor_id varchar(64),
          url text,
          payload jsonb NOT NULL,
          variant_id uuid,
          occurred_at timestamptz NOT NULL,
          received_at timestamptz NOT NULL,
          CONSTRAINT pk_restored_events PRIMARY KEY (restore_id, occurred_at, site_id, id),
          CONSTRAINT fk_restored_events_restore FOREIGN KEY (org_id, restore_id)
            REFERENCES socialproof.archive_restores (org_id, id) ON DELETE CASCADE
        )""")
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE socialproof.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE socialproof.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON socialproof.{table} USING (org_id = {CURRENT_ORG})")
    op.execute(
        f"CREATE POLICY archiver_write ON socialproof.archive_orgs FOR INSERT TO CURRENT_USER WITH CHECK ({ARCHIVING})"
    )
    op.execute(
        f"CREATE POLICY archiver_read ON socialproof.notification_events FOR SELECT TO CURRENT_USER USING ({ARCHIVING})"
    )
    op.execute(f"GRANT SELECT ON socialproof.archives, socialproof.archive_orgs TO {APP_ROLE}")
    op.execute(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON socialproof.archive_restores, socialproof.restored_events "
        f"TO {APP_ROLE}"
    )


def downgrade() -> None:
    op.execute("DROP POLICY archiver_read ON socialproof.notification_events")
    op.execute("DROP TABLE socialproof.restored_events")
    op.execute("DROP TABLE socialproof.archive_restores")
    op.execute("DROP TABLE socialproof.archive_orgs")
    op.execute("DROP TABLE socialproof.archives")
