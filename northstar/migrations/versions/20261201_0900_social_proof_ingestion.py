"""Social proof ingestion and analytics storage (seed 001 "Time-Series Schema", "Data Retention & Archival").

* Sites can be found by their public key before the tenant is known: the sites policy also admits the one row
  whose ``site_key`` is in ``northstar.site_key`` (as credentials are found by ``northstar.credential_id``).
* Notifications get a conversion ``goal`` (event types, custom event name).
* ``event_counts``: per minute / hour (UTC) and day (the site's time zone) by site, notification and event type,
  maintained in the same transaction as the raw events, so a dashboard never scans raw events.
* ``visitor_hashes`` (what each ingest added) are folded into ``visitor_sketches`` (HyperLogLog registers per
  minute / hour / day) by a periodic task; queries merge both, so unique visitors are exact-to-the-sketch at once.
* ``conversions``: a goal event within 7 days after a click on a notification, one per visitor and notification.
* ``socialproof.ingest_staged(org, oldest)`` moves the rows of the session's ``event_stage`` temporary table into
  ``notification_events`` and updates all of the above in one statement; PL/pgSQL, so its plan is cached per
  connection. Ingests of one site take turns (an advisory lock until commit), so a replay that two transactions
  carry at once is stored once.
* ``visitor_salts`` (global): the random daily salt of the cookieless visitor hash; old ones are deleted, after
  which yesterday's hashes cannot be linked to anyone.
* ``event_months`` (global): per raw event month, when its rollups were complete, archived and dropped.
* A change to a site, template or notification publishes ``socialproof.changed`` (NOTIFY, on commit), which
  every API process uses to drop its cached widget feeds at once.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"
NO_NOTIFICATION = "'00000000-0000-0000-0000-000000000000'::uuid"
TENANT_TABLES = ("event_counts", "visitor_hashes", "visitor_sketches", "conversions")


def upgrade() -> None:
    op.execute("DROP POLICY tenant_isolation ON socialproof.sites")
    op.execute(f"""CREATE POLICY tenant_isolation ON socialproof.sites USING (
        org_id = {CURRENT_ORG} OR site_key = nullif(current_setting('northstar.site_key', true), ''))""")
    op.execute("""ALTER TABLE socialproof.notifications
                  ADD COLUMN goal jsonb NOT NULL DEFAULT '{"eventTypes": ["purchase", "signup"]}'::jsonb""")

    op.execute(
        "CREATE INDEX ix_notification_events_clicks ON socialproof.notification_events "
        "(site_id, visitor_id, occurred_at) WHERE event_type = 'click'"
    )
    op.execute(
        "CREATE INDEX ix_notification_events_received ON socialproof.notification_events USING brin (received_at)"
    )

    op.execute(f"""
        CREATE TABLE socialproof.event_counts (
          org_id uuid NOT NULL,
          site_id uuid NOT NULL,
          grain varchar(6) NOT NULL,
          bucket timestamptz NOT NULL,
          notification_id uuid NOT NULL DEFAULT {NO_NOTIFICATION},
          event_type varchar(20) NOT NULL,
          events bigint NOT NULL,
          CONSTRAINT pk_event_counts PRIMARY KEY (site_id, grain, bucket, notification_id, event_type),
          CONSTRAINT ck_event_counts_grain CHECK (grain IN ('minute', 'hour', 'day')),
          CONSTRAINT fk_event_counts_site FOREIGN KEY (org_id, site_id)
            REFERENCES socialproof.sites (org_id, id) ON DELETE CASCADE
        )""")
    op.execute(f"""
        CREATE TABLE socialproof.visitor_hashes (
          id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
          org_id uuid NOT NULL,
          site_id uuid NOT NULL,
          notification_id uuid NOT NULL DEFAULT {NO_NOTIFICATION},
          minute timestamptz NOT NULL,
          day timestamptz NOT NULL,
          hashes bigint[] NOT NULL,
          CONSTRAINT pk_visitor_hashes PRIMARY KEY (id),
          CONSTRAINT fk_visitor_hashes_site FOREIGN KEY (org_id, site_id)
            REFERENCES socialproof.sites (org_id, id) ON DELETE CASCADE
        )""")
    op.execute("CREATE INDEX ix_visitor_hashes_site_minute ON socialproof.visitor_hashes (site_id, minute)")
    op.execute("CREATE INDEX ix_visitor_hashes_org_id ON socialproof.visitor_hashes (org_id, id)")
    op.execute(f"""
        CREATE TABLE socialproof.visitor_sketches (
          org_id uuid NOT NULL,
          site_id uuid NOT NULL,
          grain varchar(6) NOT NULL,
          bucket timestamptz NOT NULL,
          notification_id uuid NOT NULL DEFAULT {NO_NOTIFICATION},
          registers bytea NOT NULL,
          CONSTRAINT pk_visitor_sketches PRIMARY KEY (site_id, grain, bucket, notification_id),
          CONSTRAINT ck_visitor_sketches_grain CHECK (grain IN ('minute', 'hour', 'day')),
          CONSTRAINT fk_visitor_sketches_site FOREIGN KEY (org_id, site_id)
            REFERENCES socialproof.sites (org_id, id) ON DELETE CASCADE
        )""")
    op.execute("""
        CREATE TABLE socialproof.conversions (
          org_id uuid NOT NULL,
          site_id uuid NOT NULL,
          notification_id uuid NOT NULL,
          visitor_id varchar(64) NOT NULL,
          clicked_at timestamptz NOT NULL,
          converted_at timestamptz NOT NULL,
          event_id uuid NOT NULL,
          CONSTRAINT pk_conversions PRIMARY KEY (site_id, notification_id, visitor_id),
          CONSTRAINT fk_conversions_site FOREIGN KEY (org_id, site_id)
            REFERENCES socialproof.sites (org_id, id) ON DELETE CASCADE
        )""")
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE socialproof.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE socialproof.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON socialproof.{table} USING (org_id = {CURRENT_ORG})")
    op.execute(
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON socialproof.event_counts, socialproof.visitor_sketches TO {APP_ROLE}"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON socialproof.visitor_hashes TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, DELETE ON socialproof.conversions TO {APP_ROLE}")

    op.execute(
        "CREATE TABLE socialproof.visitor_salts (day date NOT NULL, salt bytea NOT NULL, "
        "CONSTRAINT pk_visitor_salts PRIMARY KEY (day))"
    )
    op.execute(f"GRANT SELECT, INSERT ON socialproof.visitor_salts TO {APP_ROLE}")
    op.execute("""
        CREATE TABLE socialproof.event_months (
          month date NOT NULL,
          rolled_up_at timestamptz,
          archived_at timestamptz,
          dropped_at timestamptz,
          CONSTRAINT pk_event_months PRIMARY KEY (month)
        )""")

    op.execute(f"""
        CREATE FUNCTION socialproof.ingest_staged(p_org uuid, p_oldest timestamptz)
        RETURNS TABLE (site_id uuid, id uuid)
        LANGUAGE plpgsql AS $$
        BEGIN
          -- Event ids are unique per site only through the check below (the key must hold the partition column),
          -- so concurrent ingests of one site take turns; the query after the lock sees what the other committed.
          PERFORM pg_advisory_xact_lock(hashtextextended('socialproof.ingest:' || s.site_id::text, 0))
          FROM (SELECT DISTINCT st.site_id FROM pg_temp.event_stage st WHERE st.org_id = p_org ORDER BY 1) s;
          RETURN QUERY
          WITH fresh AS (
            SELECT DISTINCT ON (s.site_id, s.id) s.*
            FROM pg_temp.event_stage s
            WHERE s.org_id = p_org
              AND NOT EXISTS (SELECT 1 FROM socialproof.notification_events e
                              WHERE e.site_id = s.site_id AND e.id = s.id AND e.occurred_at >= p_oldest)
            ORDER BY s.site_id, s.id
          ), inserted AS (
            INSERT INTO socialproof.notification_events AS e
              (id, org_id, site_id, event_type, event_name, notification_id, visitor_id, url, payload, occurred_at)
            SELECT f.id, f.org_id, f.site_id, f.event_type, f.event_name, f.notification_id, f.visitor_id, f.url,
                   f.payload, f.occurred_at
            FROM fresh f
            ON CONFLICT DO NOTHING
            RETURNING e.id, e.site_id, e.event_type, e.event_name, e.notification_id, e.visitor_id, e.occurred_at
          ), converted AS (
            INSERT INTO socialproof.conversions AS c
              (org_id, site_id, notification_id, visitor_id, clicked_at, converted_at, event_id)
            SELECT DISTINCT ON (click.site_id, click.notification_id, goal.visitor_id)
                   p_org, click.site_id, click.notification_id, goal.visitor_id, click.occurred_at, goal.occurred_at,
                   goal.id
            FROM inserted goal
            JOIN socialproof.notification_events click
              ON click.site_id = goal.site_id AND click.visitor_id = goal.visitor_id AND click.event_type = 'click'
             AND click.occurred_at > goal.occurred_at - interval '7 days' AND click.occurred_at <= goal.occurred_at
            JOIN socialproof.notifications n ON n.id = click.notification_id AND n.site_id = click.site_id
            WHERE goal.visitor_id IS NOT NULL AND goal.event_type IN ('purchase', 'signup', 'custom', 'review')
              AND (n.goal -> 'eventTypes') ? goal.event_type
              AND (goal.event_type <> 'custom' OR goal.event_name = n.goal ->> 'customEvent')
            ORDER BY click.site_id, click.notification_id, goal.visitor_id, click.occurred_at DESC
            ON CONFLICT DO NOTHING
            RETURNING c.site_id, c.notification_id, c.converted_at
          ), counted AS (
            SELECT i.site_id, coalesce(i.notification_id, {NO_NOTIFICATION}) AS notification_id, i.event_type,
                   i.occurred_at
            FROM inserted i
            UNION ALL
            SELECT v.site_id, v.notification_id, 'conversion', v.converted_at FROM converted v
          ), zoned AS (
            SELECT c.*, coalesce(st.settings ->> 'timezone', 'UTC') AS tz
            FROM counted c JOIN socialproof.sites st ON st.id = c.site_id
          ), rolled AS (
            INSERT INTO socialproof.event_counts AS r
              (org_id, site_id, grain, bucket, notification_id, event_type, events)
            SELECT p_org, z.site_id, g.grain,
                   CASE g.grain WHEN 'day' THEN date_trunc('day', z.occurred_at, z.tz)
                                ELSE date_trunc(g.grain, z.occurred_at, 'UTC') END,
                   z.notification_id, z.event_type, count(*)
            FROM zoned z CROSS JOIN (VALUES ('minute'), ('hour'), ('day')) AS g(grain)
            GROUP BY 2, 3, 4, 5, 6
            ORDER BY 2, 3, 4, 5, 6
            ON CONFLICT ON CONSTRAINT pk_event_counts DO UPDATE SET events = r.events + excluded.events
          ), hashed AS (
            INSERT INTO socialproof.visitor_hashes (org_id, site_id, notification_id, minute, day, hashes)
            SELECT p_org, i.site_id, n.notification_id, date_trunc('minute', i.occurred_at, 'UTC'),
                   date_trunc('day', i.occurred_at, coalesce(st.settings ->> 'timezone', 'UTC')),
                   array_agg(DISTINCT hashtextextended(i.visitor_id, 0))
            FROM inserted i
            JOIN socialproof.sites st ON st.id = i.site_id
            CROSS JOIN LATERAL (VALUES ({NO_NOTIFICATION}), (i.notification_id)) AS n(notification_id)
            WHERE i.visitor_id IS NOT NULL AND n.notification_id IS NOT NULL
            GROUP BY 2, 3, 4, 5
          )
          SELECT i.site_id, i.id FROM inserted i;
        END $$""")
    op.execute(f"GRANT EXECUTE ON FUNCTION socialproof.ingest_staged(uuid, timestamptz) TO {APP_ROLE}")

    op.execute("""
        CREATE FUNCTION socialproof.publish_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
          changed jsonb := to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END);
        BEGIN
          PERFORM pg_notify('northstar_events', json_build_object(
            'org', changed ->> 'org_id', 'topic', 'socialproof.changed',
            'data', json_build_object('kind', TG_TABLE_NAME, 'id', changed ->> 'id', 'op', lower(TG_OP),
                                      'siteId', changed ->> TG_ARGV[0]))::text);
          RETURN NULL;
        END $$""")
    for table, site_column in (("sites", "id"), ("templates", "site_id"), ("notifications", "site_id")):
        op.execute(
            f"CREATE TRIGGER publish_change AFTER INSERT OR UPDATE OR DELETE ON socialproof.{table} "
            f"FOR EACH ROW EXECUTE FUNCTION socialproof.publish_change('{site_column}')"
        )

    op.execute("""
        CREATE FUNCTION socialproof.drop_event_month(p_month date) RETURNS boolean
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
        DECLARE
          month_table text := 'notification_events_' || to_char(date_trunc('month', p_month), 'YYYY_MM');
        BEGIN
          IF to_regclass('socialproof.' || month_table) IS NULL THEN
            RETURN false;
          END IF;
          EXECUTE format('DROP TABLE socialproof.%I', month_table);
          RETURN true;
        END $$""")
    op.execute("REVOKE ALL ON FUNCTION socialproof.drop_event_month(date) FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP FUNCTION socialproof.drop_event_month(date)")
    for table in ("sites", "templates", "notifications"):
        op.execute(f"DROP TRIGGER publish_change ON socialproof.{table}")
    op.execute("DROP FUNCTION socialproof.publish_change()")
    op.execute("DROP FUNCTION socialproof.ingest_staged(uuid, timestamptz)")
    op.execute("DROP TABLE socialproof.event_months, socialproof.visitor_salts")
    for table in TENANT_TABLES:
        op.execute(f"DROP TABLE socialproof.{table}")
    op.execute("DROP INDEX socialproof.ix_notification_events_received")
    op.execute("DROP INDEX socialproof.ix_notification_events_clicks")
    op.execute("ALTER TABLE socialproof.notifications DROP COLUMN goal")
    op.execute("DROP POLICY tenant_isolation ON socialproof.sites")
    op.execute(f"CREATE POLICY tenant_isolation ON socialproof.sites USING (org_id = {CURRENT_ORG})")
