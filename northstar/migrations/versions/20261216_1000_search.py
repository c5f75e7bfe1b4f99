"""Search: ``core.search_documents`` (one row per findable thing of an org: its type and id, title, body, facets,
the permission resource and project it is read under, the roles it is hidden from, whether it holds personal data (then sealed: its text encrypted, its words as blind
tokens), its link, and a weighted ``tsvector`` in the org's language
and in ``simple``), hash-partitioned by org so a query reads one org's slice; ``core.search_words`` (each org's
words, with their trigrams prefixed by the org, for typo tolerance without pg_trgm); ``core.search_settings`` (the
org's search language). All, partitions included, under forced row-level security.

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-16 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0039"
down_revision: str | None = "0038"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"
ORG = "REFERENCES core.organizations (id) ON DELETE CASCADE"
PARTITIONS = 32
PARTITION_TABLES = tuple(f"core.search_documents_{number:02d}" for number in range(PARTITIONS))
TABLES = ("core.search_documents", *PARTITION_TABLES, "core.search_words", "core.search_settings")
# The indexed tables of this revision (each module's manifest declares its search sources): a deleted row, also by a
# cascade or a bulk delete, takes its document with it in the same statement.
INDEXED = {
    "core.projects": ("project", "id"),
    "core.teams": ("team", "id"),
    "core.memberships": ("member", "user_id"),
    "socialproof.sites": ("site", "id"),
    "socialproof.notifications": ("notification", "id"),
    "socialproof.templates": ("template", "id"),
    "jobs.datasets": ("dataset", "id"),
    "jobs.files": ("file", "id"),
    "integrations.integrations": ("integration", "id"),
    "metrics.goals": ("goal", "id"),
    "reports.reports": ("report", "id"),
    "alerts.rules": ("alert_rule", "id"),
    "devbizops.work_items": ("work_item", "id"),
    "devbizops.roadmap_items": ("roadmap_item", "id"),
}


def upgrade() -> None:
    op.execute(f"""
        CREATE TABLE core.search_documents (
          org_id uuid NOT NULL {ORG},
          doc_type varchar(40) NOT NULL,
          doc_id varchar(80) NOT NULL,
          title text NOT NULL,
          body text NOT NULL DEFAULT '',
          facets jsonb NOT NULL DEFAULT '{{}}'::jsonb,
          resource varchar(60) NOT NULL,
          project_id uuid,
          hidden_from text[] NOT NULL DEFAULT '{{}}',
          sealed boolean NOT NULL DEFAULT false,
          url text NOT NULL,
          search tsvector NOT NULL,
          updated_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_search_documents PRIMARY KEY (org_id, doc_type, doc_id)
        ) PARTITION BY HASH (org_id)""")
    for number, partition in enumerate(PARTITION_TABLES):
        op.execute(
            f"CREATE TABLE {partition} PARTITION OF core.search_documents "
            f"FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {number})"
        )
    op.execute("CREATE INDEX ix_search_documents_search ON core.search_documents USING gin (search)")
    op.execute("""
        CREATE TABLE core.search_words (
          org_id uuid NOT NULL REFERENCES core.organizations (id) ON DELETE CASCADE,
          word varchar(60) NOT NULL,
          trigrams text[] NOT NULL,
          CONSTRAINT pk_search_words PRIMARY KEY (org_id, word)
        )""")
    op.execute("CREATE INDEX ix_search_words_trigrams ON core.search_words USING gin (trigrams)")
    op.execute(f"""
        CREATE TABLE core.search_settings (
          org_id uuid NOT NULL {ORG},
          language varchar(20) NOT NULL DEFAULT 'english',
          reindex_total integer,
          reindex_done integer NOT NULL DEFAULT 0,
          reindex_started_at timestamptz,
          reindexed_at timestamptz,
          updated_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_search_settings PRIMARY KEY (org_id),
          CONSTRAINT ck_search_settings_language CHECK (language IN ('english', 'german', 'french', 'spanish', 'simple'))
        )""")
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} USING (org_id = {CURRENT_ORG}) WITH CHECK (org_id = {CURRENT_ORG})"
        )
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}")
    op.execute("""
        CREATE FUNCTION core.search_forget() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          DELETE FROM core.search_documents
           WHERE org_id = OLD.org_id AND doc_type = TG_ARGV[0] AND doc_id = to_jsonb(OLD) ->> TG_ARGV[1];
          RETURN OLD;
        END $$""")
    for table, (doc_type, id_column) in INDEXED.items():
        op.execute(
            f"CREATE TRIGGER search_forget AFTER DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION core.search_forget('{doc_type}', '{id_column}')"
        )


def downgrade() -> None:
    for table in INDEXED:
        op.execute(f"DROP TRIGGER search_forget ON {table}")
    op.execute("DROP FUNCTION core.search_forget()")
    for table in ("core.search_settings", "core.search_words", "core.search_documents"):
        op.execute(f"DROP TABLE {table}")
