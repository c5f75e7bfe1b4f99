"""A/B tests of social proof notifications (seed 001 ``ab_tests``, issue 14).

* ``ab_tests``: the seed's columns (``notification_id``, ``status``, ``winner_variant_id``, ``winner_selected_at``)
  plus the org, site, name, primary metric, minimum sample per variant, auto-winner, the sample-ratio-mismatch
  flag and when it started and stopped. ``ab_test_variants``: 2 to 5 per test, each a message and/or template,
  display-rule overrides, an integer traffic weight, one of them the control.
* ``ab_test_visitors``: one row per test and visitor (the unit of analysis), so a visitor is counted once however
  many popups they saw; it is written by ingestion only and never scanned for results.
* ``ab_test_counts``: the rollup results come from, per test, variant and UTC day: visitors exposed, visitors who
  clicked, visitors who converted. Kept in the same statement that inserts the events (``ingest_staged``).
* ``notification_events.variant_id`` and ``conversions.variant_id``: the variant the widget showed rides on each
  impression and click, and a conversion is credited to the variant of the click it follows (the variant shown,
  whatever the visitor's assignment is on the day they convert).
* A change to a test or its variants publishes ``socialproof.changed`` like notifications do: feeds are rebuilt.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-09 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"
NO_NOTIFICATION = "'00000000-0000-0000-0000-000000000000'::uuid"
TENANT_TABLES = ("ab_tests", "ab_test_variants", "ab_test_visitors", "ab_test_counts")

AB_ROLLUPS = """
  ), ab_seen AS (
    -- Impressions and clicks of a running test's variants, one line per test and visitor: the first variant
    -- seen is the visitor's (a visitor is one unit however many popups they saw).
    SELECT va.test_id, va.site_id, i.visitor_id,
           (array_agg(i.variant_id ORDER BY i.occurred_at, i.id))[1] AS variant_id,
           min(i.occurred_at) AS exposed_at,
           min(i.occurred_at) FILTER (WHERE i.event_type = 'click') AS clicked_at
    FROM inserted i
    JOIN socialproof.ab_test_variants va ON va.id = i.variant_id AND va.notification_id = i.notification_id
    JOIN socialproof.ab_tests t ON t.id = va.test_id AND t.status = 'running'
    WHERE i.variant_id IS NOT NULL AND i.visitor_id IS NOT NULL AND i.event_type IN ('impression', 'click')
    GROUP BY va.test_id, va.site_id, i.visitor_id
  ), ab_units AS (
    INSERT INTO socialproof.ab_test_visitors AS v (org_id, site_id, test_id, variant_id, visitor_id, exposed_at,
                                                   clicked_at)
    SELECT p_org, s.site_id, s.test_id, s.variant_id, s.visitor_id, s.exposed_at, s.clicked_at
    FROM ab_seen s ORDER BY s.test_id, s.visitor_id
    ON CONFLICT ON CONSTRAINT pk_ab_test_visitors DO UPDATE SET clicked_at = excluded.clicked_at
      WHERE v.clicked_at IS NULL AND excluded.clicked_at IS NOT NULL
    RETURNING v.site_id, v.test_id, v.variant_id, (v.xmax = 0) AS fresh, v.exposed_at, v.clicked_at
  ), ab_counted AS (
    SELECT u.site_id, u.test_id, u.variant_id, CASE WHEN u.fresh THEN u.exposed_at ELSE u.clicked_at END AS at,
           u.fresh::int AS exposures, (u.clicked_at IS NOT NULL)::int AS clicks, 0 AS conversions
    FROM ab_units u
    UNION ALL
    SELECT c.site_id, va.test_id, va.id, c.converted_at, 0, 0, 1
    FROM converted c
    JOIN socialproof.ab_test_variants va ON va.id = c.variant_id
    JOIN socialproof.ab_tests t ON t.id = va.test_id AND t.status = 'running'
  ), ab_rolled AS (
    INSERT INTO socialproof.ab_test_counts AS r (org_id, site_id, test_id, variant_id, day, exposures, clicks,
                                                 conversions)
    SELECT p_org, a.site_id, a.test_id, a.variant_id, (a.at AT TIME ZONE 'UTC')::date,
           sum(a.exposures), sum(a.clicks), sum(a.conversions)
    FROM ab_counted a
    GROUP BY 2, 3, 4, 5
    ORDER BY 3, 4, 5
    ON CONFLICT ON CONSTRAINT pk_ab_test_counts DO UPDATE
      SET exposures = r.exposures + excluded.exposures, clicks = r.clicks + excluded.clicks,
          conversions = r.conversions + excluded.conversions
"""


def ingest_staged(*, variants: bool) -> str:
    """The ingestion function of revision 0007; with ``variants``, the variant carried through and the A/B
    rollups kept (without: 0007's function as it was, for the downgrade)."""
    variant = ", variant_id" if variants else ""
    return f"""
CREATE OR REPLACE FUNCTION socialproof.ingest_staged(p_org uuid, p_oldest timestamptz)
RETURNS TABLE (site_id uuid, id uuid)
LANGUAGE plpgsql AS $$
BEGIN
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
      (id, org_id, site_id, event_type, event_name, notification_id, visitor_id, url, payload, occurred_at{variant})
    SELECT f.id, f.org_id, f.site_id, f.event_type, f.event_name, f.notification_id, f.visitor_id, f.url,
           f.payload, f.occurred_at{variant.replace(" ", " f.")}
    FROM fresh f
    ON CONFLICT DO NOTHING
    RETURNING e.id, e.site_id, e.event_type, e.event_name, e.notification_id, e.visitor_id, e.occurred_at{variant.replace(" ", " e.")}
  ), converted AS (
    INSERT INTO socialproof.conversions AS c
      (org_id, site_id, notification_id, visitor_id, clicked_at, converted_at, event_id{variant})
    SELECT DISTINCT ON (click.site_id, click.notification_id, goal.visitor_id)
           p_org, click.site_id, click.notification_id, goal.visitor_id, click.occurred_at, goal.occurred_at,
           goal.id{variant.replace(" ", " click.")}
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
    RETURNING c.site_id, c.notification_id, c.converted_at{variant.replace(" ", " c.")}
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
{AB_ROLLUPS if variants else ""}  )
  SELECT i.site_id, i.id FROM inserted i;
END $$"""


def upgrade() -> None:
    op.execute("ALTER TABLE socialproof.notification_events ADD COLUMN variant_id uuid")
    op.execute("ALTER TABLE socialproof.conversions ADD COLUMN variant_id uuid")
    op.execute("""
        CREATE TABLE socialproof.ab_tests (
          id uuid NOT NULL DEFAULT gen_random_uuid(),
          org_id uuid NOT NULL,
          site_id uuid NOT NULL,
          notification_id uuid NOT NULL,
          name varchar(200) NOT NULL,
          status varchar(20) NOT NULL DEFAULT 'draft',
          primary_metric varchar(20) NOT NULL DEFAULT 'ctr',
          min_sample integer NOT NULL DEFAULT 1000,
          auto_winner boolean NOT NULL DEFAULT false,
          winner_variant_id uuid,
          winner_selected_at timestamptz,
          srm_flagged boolean NOT NULL DEFAULT false,
          srm_p_value double precision,
          started_at timestamptz,
          stopped_at timestamptz,
          created_by uuid,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_ab_tests PRIMARY KEY (id),
          CONSTRAINT uq_ab_tests_org_id_id UNIQUE (org_id, id),
          CONSTRAINT ck_ab_tests_status CHECK (status IN ('draft', 'running', 'stopped', 'completed')),
          CONSTRAINT ck_ab_tests_primary_metric CHECK (primary_metric IN ('ctr', 'conversion_rate')),
          CONSTRAINT ck_ab_tests_min_sample CHECK (min_sample >= 1),
          CONSTRAINT fk_ab_tests_org_id_organizations FOREIGN KEY (org_id)
            REFERENCES core.organizations (id) ON DELETE CASCADE,
          CONSTRAINT fk_ab_tests_site FOREIGN KEY (org_id, site_id)
            REFERENCES socialproof.sites (org_id, id) ON DELETE CASCADE,
          CONSTRAINT fk_ab_tests_notification FOREIGN KEY (org_id, notification_id)
            REFERENCES socialproof.notifications (org_id, id) ON DELETE CASCADE
        )""")
    op.execute("CREATE INDEX ix_ab_tests_org_id_site_id ON socialproof.ab_tests (org_id, site_id, created_at)")
    # one running test per notification: the feed serves one split per popup
    op.execute(
        "CREATE UNIQUE INDEX uq_ab_tests_running_notification ON socialproof.ab_tests (notification_id) "
        "WHERE status = 'running'"
    )
    op.execute("CREATE INDEX ix_ab_tests_running ON socialproof.ab_tests (status) WHERE status = 'running'")
    op.execute("""
        CREATE TABLE socialproof.ab_test_variants (
          id uuid NOT NULL DEFAULT gen_random_uuid(),
          org_id uuid NOT NULL,
          site_id uuid NOT NULL,
          test_id uuid NOT NULL,
          notification_id uuid NOT NULL,
          position smallint NOT NULL,
          name varchar(100) NOT NULL,
          is_control boolean NOT NULL DEFAULT false,
          weight integer NOT NULL,
          message text,
          template_id uuid,
          display jsonb NOT NULL DEFAULT '{}'::jsonb,
          created_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_ab_test_variants PRIMARY KEY (id),
          CONSTRAINT uq_ab_test_variants_org_id_id UNIQUE (org_id, id),
          CONSTRAINT uq_ab_test_variants_test_id_position UNIQUE (test_id, position),
          CONSTRAINT ck_ab_test_variants_weight CHECK (weight BETWEEN 1 AND 100),
          CONSTRAINT fk_ab_test_variants_test FOREIGN KEY (org_id, test_id)
            REFERENCES socialproof.ab_tests (org_id, id) ON DELETE CASCADE,
          CONSTRAINT fk_ab_test_variants_template FOREIGN KEY (org_id, template_id)
            REFERENCES socialproof.templates (org_id, id)
        )""")
    op.execute("CREATE INDEX ix_ab_test_variants_org_id_test_id ON socialproof.ab_test_variants (org_id, test_id)")
    op.execute(
        "CREATE INDEX ix_ab_test_variants_template ON socialproof.ab_test_variants (org_id, template_id) "
        "WHERE template_id IS NOT NULL"
    )
    op.execute("""
        ALTER TABLE socialproof.ab_tests ADD CONSTRAINT fk_ab_tests_winner FOREIGN KEY (org_id, winner_variant_id)
          REFERENCES socialproof.ab_test_variants (org_id, id) DEFERRABLE INITIALLY DEFERRED""")
    op.execute("""
        CREATE TABLE socialproof.ab_test_visitors (
          org_id uuid NOT NULL,
          site_id uuid NOT NULL,
          test_id uuid NOT NULL,
          visitor_id varchar(64) NOT NULL,
          variant_id uuid NOT NULL,
          exposed_at timestamptz NOT NULL,
          clicked_at timestamptz,
          CONSTRAINT pk_ab_test_visitors PRIMARY KEY (test_id, visitor_id),
          CONSTRAINT fk_ab_test_visitors_test FOREIGN KEY (org_id, test_id)
            REFERENCES socialproof.ab_tests (org_id, id) ON DELETE CASCADE
        )""")
    op.execute("CREATE INDEX ix_ab_test_visitors_org_id ON socialproof.ab_test_visitors (org_id, test_id)")
    op.execute("""
        CREATE TABLE socialproof.ab_test_counts (
          org_id uuid NOT NULL,
          site_id uuid NOT NULL,
          test_id uuid NOT NULL,
          variant_id uuid NOT NULL,
          day date NOT NULL,
          exposures bigint NOT NULL DEFAULT 0,
          clicks bigint NOT NULL DEFAULT 0,
          conversions bigint NOT NULL DEFAULT 0,
          CONSTRAINT pk_ab_test_counts PRIMARY KEY (test_id, variant_id, day),
          CONSTRAINT fk_ab_test_counts_test FOREIGN KEY (org_id, test_id)
            REFERENCES socialproof.ab_tests (org_id, id) ON DELETE CASCADE
        )""")
    op.execute("CREATE INDEX ix_ab_test_counts_org_id ON socialproof.ab_test_counts (org_id, test_id)")
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE socialproof.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE socialproof.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON socialproof.{table} USING (org_id = {CURRENT_ORG})")
    op.execute(
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON socialproof.ab_tests, socialproof.ab_test_variants TO {APP_ROLE}"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON socialproof.ab_test_visitors TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON socialproof.ab_test_counts TO {APP_ROLE}")
    for table in ("ab_tests", "ab_test_variants"):
        op.execute(
            f"CREATE TRIGGER publish_change AFTER INSERT OR UPDATE OR DELETE ON socialproof.{table} "
            "FOR EACH ROW EXECUTE FUNCTION socialproof.publish_change('site_id')"
        )
    op.execute(ingest_staged(variants=True))


def downgrade() -> None:
    op.execute(ingest_staged(variants=False))
    for table in ("ab_tests", "ab_test_variants"):
        op.execute(f"DROP TRIGGER publish_change ON socialproof.{table}")
    op.execute("ALTER TABLE socialproof.ab_tests DROP CONSTRAINT fk_ab_tests_winner")
    for table in reversed(TENANT_TABLES):
        op.execute(f"DROP TABLE socialproof.{table}")
    op.execute("ALTER TABLE socialproof.conversions DROP COLUMN variant_id")
    op.execute("ALTER TABLE socialproof.notification_events DROP COLUMN variant_id")
