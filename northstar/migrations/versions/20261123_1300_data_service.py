"""Data service (seed 003): jobs, stored files, datasets; schema ``datasets`` for dataset row tables.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 13:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"
TABLES = ("jobs.jobs", "jobs.files", "jobs.datasets")


def upgrade() -> None:
    op.execute("CREATE SCHEMA jobs")
    op.execute("CREATE SCHEMA datasets")
    op.execute("""
        CREATE TABLE jobs.jobs (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          type varchar(20) NOT NULL,
          params jsonb NOT NULL,
          status varchar(20) DEFAULT 'pending' NOT NULL,
          progress double precision DEFAULT '0' NOT NULL,
          rows_done bigint DEFAULT '0' NOT NULL,
          rows_total bigint,
          result jsonb DEFAULT '{}'::jsonb NOT NULL,
          error_message text,
          attempts integer DEFAULT '0' NOT NULL,
          cancel_requested boolean DEFAULT false NOT NULL,
          queue_job_id bigint,
          created_by uuid,
          created_at timestamptz DEFAULT now() NOT NULL,
          updated_at timestamptz DEFAULT now() NOT NULL,
          started_at timestamptz,
          finished_at timestamptz,
          CONSTRAINT pk_jobs PRIMARY KEY (id),
          CONSTRAINT fk_jobs_org_id_organizations FOREIGN KEY (org_id)
            REFERENCES core.organizations (id) ON DELETE CASCADE,
          CONSTRAINT uq_jobs_org_id_id UNIQUE (org_id, id),
          CONSTRAINT ck_jobs_type CHECK (type IN ('generation', 'upload', 'export')),
          CONSTRAINT ck_jobs_status CHECK (status IN ('pending', 'in-progress', 'completed', 'failed', 'cancelled')),
          CONSTRAINT ck_jobs_progress CHECK (progress >= 0 AND progress <= 1)
        )""")
    op.execute("CREATE INDEX ix_jobs_org_id_created_at ON jobs.jobs (org_id, created_at)")
    op.execute("CREATE INDEX ix_jobs_org_id_status ON jobs.jobs (org_id, status)")
    op.execute("""
        CREATE TABLE jobs.files (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          job_id uuid,
          kind varchar(20) NOT NULL,
          original_name text NOT NULL,
          stored_path text NOT NULL,
          mime_type varchar(120),
          size_bytes bigint,
          checksum varchar(64),
          status varchar(20) DEFAULT 'pending' NOT NULL,
          uploaded_at timestamptz DEFAULT now() NOT NULL,
          expires_at timestamptz,
          CONSTRAINT pk_files PRIMARY KEY (id),
          CONSTRAINT fk_files_org_id_organizations FOREIGN KEY (org_id)
            REFERENCES core.organizations (id) ON DELETE CASCADE,
          CONSTRAINT fk_files_job FOREIGN KEY (org_id, job_id)
            REFERENCES jobs.jobs (org_id, id) ON DELETE SET NULL (job_id) DEFERRABLE INITIALLY DEFERRED,
          CONSTRAINT uq_files_org_id_id UNIQUE (org_id, id),
          CONSTRAINT ck_files_kind CHECK (kind IN ('upload', 'export', 'rejects')),
          CONSTRAINT ck_files_status CHECK (status IN ('pending', 'completed', 'failed'))
        )""")
    op.execute("CREATE INDEX ix_files_org_id_checksum ON jobs.files (org_id, checksum)")
    op.execute("CREATE INDEX ix_files_expires_at ON jobs.files (expires_at)")
    op.execute("""
        CREATE TABLE jobs.datasets (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          name varchar(200) NOT NULL,
          source varchar(20) NOT NULL,
          job_id uuid,
          file_id uuid,
          columns jsonb NOT NULL,
          row_count bigint DEFAULT '0' NOT NULL,
          status varchar(20) DEFAULT 'building' NOT NULL,
          created_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_datasets PRIMARY KEY (id),
          CONSTRAINT fk_datasets_org_id_organizations FOREIGN KEY (org_id)
            REFERENCES core.organizations (id) ON DELETE CASCADE,
          CONSTRAINT fk_datasets_job FOREIGN KEY (org_id, job_id)
            REFERENCES jobs.jobs (org_id, id) ON DELETE SET NULL (job_id) DEFERRABLE INITIALLY DEFERRED,
          CONSTRAINT fk_datasets_file FOREIGN KEY (org_id, file_id)
            REFERENCES jobs.files (org_id, id) ON DELETE SET NULL (file_id) DEFERRABLE INITIALLY DEFERRED,
          CONSTRAINT uq_datasets_org_id_id UNIQUE (org_id, id),
          CONSTRAINT ck_datasets_status CHECK (status IN ('building', 'ready', 'failed'))
        )""")
    op.execute("CREATE INDEX ix_datasets_org_id_created_at ON jobs.datasets (org_id, created_at)")
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING (org_id = {CURRENT_ORG})")
    # A dataset's row table lives exactly as long as its row: deleting the dataset, or its org (by cascade),
    # drops the table. (The row tables carry no foreign key: one RI check per loaded row would cost more
    # than the load itself.)
    op.execute("""
        CREATE FUNCTION jobs.drop_dataset_table() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
        BEGIN
          EXECUTE format('DROP TABLE IF EXISTS datasets.%I', 'd_' || replace(OLD.id::text, '-', ''));
          RETURN OLD;
        END $$""")
    op.execute("REVOKE ALL ON FUNCTION jobs.drop_dataset_table() FROM PUBLIC")
    op.execute("""CREATE TRIGGER drop_dataset_table AFTER DELETE ON jobs.datasets
                  FOR EACH ROW EXECUTE FUNCTION jobs.drop_dataset_table()""")
    # Every change of a job's status or progress is published (delivered on commit, like the change itself),
    # whoever made it: the API, a worker, or an operator with psql.
    op.execute("""
        CREATE FUNCTION jobs.publish_job_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify('northstar_events', json_build_object(
            'org', NEW.org_id,
            'topic', CASE WHEN TG_OP = 'UPDATE' AND OLD.status = NEW.status THEN 'job.progress' ELSE 'job.status' END,
            'data', json_build_object('jobId', NEW.id, 'type', NEW.type, 'status', NEW.status,
                                      'progress', NEW.progress, 'rowsDone', NEW.rows_done,
                                      'error', left(NEW.error_message, 1000)))::text);
          RETURN NULL;
        END $$""")
    op.execute("""CREATE TRIGGER publish_job_change AFTER INSERT OR UPDATE OF status, progress, rows_done
                  ON jobs.jobs FOR EACH ROW EXECUTE FUNCTION jobs.publish_job_change()""")
    op.execute(f"GRANT USAGE ON SCHEMA jobs, datasets TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA jobs TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP SCHEMA datasets CASCADE")
    op.execute("DROP SCHEMA jobs CASCADE")
