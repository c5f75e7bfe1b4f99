"""Social proof events (seed 001 "Data Partitioning Strategy"): RANGE by month on ``occurred_at``, HASH by site (8).

Every partition, down to the leaves, has row-level security enabled and forced with the tenant policy, so
the rule "every table with org_id is protected" holds even for a query that names a leaf directly.
``socialproof.ensure_event_partitions(month)`` creates a month and its eight leaves (idempotent); a periodic
task keeps the next months ready. Replays are harmless: an event id already stored for the site is skipped (index on site and id).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 16:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
HASH_PARTITIONS = 8


def upgrade() -> None:
    op.execute("""
        CREATE TABLE socialproof.notification_events (
          id uuid NOT NULL,
          org_id uuid NOT NULL,
          site_id uuid NOT NULL,
          event_type varchar(20) NOT NULL,
          event_name varchar(100),
          notification_id uuid,
          visitor_id varchar(64),
          url text,
          payload jsonb NOT NULL DEFAULT '{}'::jsonb,
          occurred_at timestamptz NOT NULL,
          received_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_notification_events PRIMARY KEY (site_id, occurred_at, id)
        ) PARTITION BY RANGE (occurred_at)""")
    op.execute(
        "CREATE INDEX ix_notification_events_site_time ON socialproof.notification_events "
        "(site_id, event_type, occurred_at)"
    )
    op.execute("CREATE INDEX ix_notification_events_site_id ON socialproof.notification_events (site_id, id)")
    op.execute(f"""
        CREATE FUNCTION socialproof.ensure_event_partitions(p_month date) RETURNS integer
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
        DECLARE
          first date := date_trunc('month', p_month)::date;
          month_table text := 'notification_events_' || to_char(first, 'YYYY_MM');
          leaf text;
          created integer := 0;
        BEGIN
          IF to_regclass('socialproof.' || month_table) IS NULL THEN
            EXECUTE format('CREATE TABLE socialproof.%I PARTITION OF socialproof.notification_events '
                           'FOR VALUES FROM (%L) TO (%L) PARTITION BY HASH (site_id)',
                           month_table, first, (first + interval '1 month')::date);
            created := created + 1;
          END IF;
          FOR remainder IN 0..{HASH_PARTITIONS - 1} LOOP
            leaf := month_table || '_' || remainder;
            IF to_regclass('socialproof.' || leaf) IS NULL THEN
              EXECUTE format('CREATE TABLE socialproof.%I PARTITION OF socialproof.%I '
                             'FOR VALUES WITH (MODULUS {HASH_PARTITIONS}, REMAINDER %s)', leaf, month_table, remainder);
              created := created + 1;
            END IF;
          END LOOP;
          FOR leaf IN SELECT month_table UNION ALL
                      SELECT month_table || '_' || r FROM generate_series(0, {HASH_PARTITIONS - 1}) r LOOP
            EXECUTE format('ALTER TABLE socialproof.%I ENABLE ROW LEVEL SECURITY', leaf);
            EXECUTE format('ALTER TABLE socialproof.%I FORCE ROW LEVEL SECURITY', leaf);
            IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'socialproof' AND tablename = leaf) THEN
              EXECUTE format('CREATE POLICY tenant_isolation ON socialproof.%I USING '
                             '(org_id = nullif(current_setting(''northstar.org_id'', true), '''')::uuid)', leaf);
            END IF;
            EXECUTE format('GRANT SELECT, INSERT ON socialproof.%I TO {APP_ROLE}', leaf);
          END LOOP;
          RETURN created;
        END $$""")
    op.execute("REVOKE ALL ON FUNCTION socialproof.ensure_event_partitions(date) FROM PUBLIC")
    op.execute("ALTER TABLE socialproof.notification_events ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE socialproof.notification_events FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON socialproof.notification_events "
        "USING (org_id = nullif(current_setting('northstar.org_id', true), '')::uuid)"
    )
    op.execute(f"GRANT SELECT, INSERT ON socialproof.notification_events TO {APP_ROLE}")
    op.execute(
        "SELECT socialproof.ensure_event_partitions((now() + make_interval(months => m))::date) "
        "FROM generate_series(-1, 2) m"
    )


def downgrade() -> None:
    op.execute("DROP TABLE socialproof.notification_events")
    op.execute("DROP FUNCTION socialproof.ensure_event_partitions(date)")
