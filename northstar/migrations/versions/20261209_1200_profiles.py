"""Visitor profiles and custom fields (seed 001 ``visitor_profiles``, ``custom_field_definitions``).

* ``socialproof.custom_field_definitions`` (per organization): a field's name, key, type (text, number, boolean,
  date, enum with its options), whether it is required and its default. A change publishes
  ``socialproof.changed``, so every process drops its cached definitions at once.
* ``socialproof.visitor_profiles`` (per site and visitor id): first and last seen, sessions, page views, clicks,
  conversions, country, device, custom values, and the behaviour score. ``behavior_score`` is a generated column
  of ``engagement`` (decayed points, see docs/socialproof.md), so the two can never disagree.
* ``socialproof.ingest_profiled(org, oldest)`` runs ``ingest_staged`` and folds the events it stored into the
  profiles with one upsert per organization and flush: profiles grow with ingestion, never by rescanning events.
  The device class and the custom values an event gave itself (without the fields' defaults, which never
  overwrite a profile's values) come from the staging table's ``device`` and ``custom`` columns, which the writer
  fills and raw events do not keep.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-09 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"
TABLES = ("custom_field_definitions", "visitor_profiles")
SESSION_GAP = "interval '30 minutes'"
HALF_LIFE_SECONDS = 14 * 86400


def upgrade() -> None:
    op.execute("""
        CREATE TABLE socialproof.custom_field_definitions (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          name varchar(100) NOT NULL,
          key varchar(40) NOT NULL,
          field_type varchar(10) NOT NULL,
          options text[] DEFAULT '{}' NOT NULL,
          required boolean DEFAULT false NOT NULL,
          default_value jsonb,
          created_at timestamptz DEFAULT now() NOT NULL,
          updated_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_custom_field_definitions PRIMARY KEY (id),
          CONSTRAINT uq_custom_field_definitions_org_id_key UNIQUE (org_id, key),
          CONSTRAINT ck_custom_field_definitions_field_type
            CHECK (field_type IN ('text', 'number', 'boolean', 'date', 'enum')),
          CONSTRAINT fk_custom_field_definitions_org_id_organizations FOREIGN KEY (org_id)
            REFERENCES core.organizations (id) ON DELETE CASCADE
        )""")
    op.execute("""
        CREATE TABLE socialproof.visitor_profiles (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          site_id uuid NOT NULL,
          visitor_id varchar(64) NOT NULL,
          first_seen_at timestamptz NOT NULL,
          last_seen_at timestamptz NOT NULL,
          session_count integer NOT NULL,
          page_views integer DEFAULT 0 NOT NULL,
          clicks integer DEFAULT 0 NOT NULL,
          conversions integer DEFAULT 0 NOT NULL,
          engagement double precision DEFAULT 0 NOT NULL,
          behavior_score double precision GENERATED ALWAYS AS
            (round((100 * (1 - exp(-engagement / 25)))::numeric, 1)::double precision) STORED,
          country char(2),
          device varchar(10),
          custom jsonb DEFAULT '{}' NOT NULL,
          created_at timestamptz DEFAULT now() NOT NULL,
          updated_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_visitor_profiles PRIMARY KEY (id),
          CONSTRAINT uq_visitor_profiles_site_id_visitor_id UNIQUE (site_id, visitor_id),
          CONSTRAINT fk_visitor_profiles_site FOREIGN KEY (org_id, site_id)
            REFERENCES socialproof.sites (org_id, id) ON DELETE CASCADE
        )""")
    op.execute(
        "CREATE INDEX ix_visitor_profiles_org_id_site_id_last_seen_at"
        " ON socialproof.visitor_profiles (org_id, site_id, last_seen_at)"
    )
    op.execute(
        "CREATE INDEX ix_visitor_profiles_site_id_behavior_score ON socialproof.visitor_profiles (site_id, behavior_score)"
    )
    for table in TABLES:
        op.execute(f"ALTER TABLE socialproof.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE socialproof.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON socialproof.{table} USING (org_id = {CURRENT_ORG})")
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON socialproof.{table} TO {APP_ROLE}")
    op.execute(
        "CREATE TRIGGER publish_change AFTER INSERT OR UPDATE OR DELETE ON socialproof.custom_field_definitions "
        "FOR EACH ROW EXECUTE FUNCTION socialproof.publish_change('site_id')"
    )

    # Points: a page view 1, a click on a notification 3, a purchase or signup 10, a session 2. Engagement halves
    # every 14 days between a visitor's events; the score is 100 * (1 - exp(-engagement / 25)).
    op.execute(f"""
        CREATE FUNCTION socialproof.ingest_profiled(p_org uuid, p_oldest timestamptz)
        RETURNS TABLE (site_id uuid, id uuid)
        LANGUAGE plpgsql AS $$
        #variable_conflict use_column
        BEGIN
          RETURN QUERY
          WITH stored AS (
            SELECT s.site_id, s.id FROM socialproof.ingest_staged(p_org, p_oldest) s
          ), events AS (
            SELECT DISTINCT ON (st.site_id, st.id) st.site_id, st.visitor_id, st.event_type, st.occurred_at,
                   st.payload, st.device, st.custom
            FROM pg_temp.event_stage st
            JOIN stored ON stored.site_id = st.site_id AND stored.id = st.id
            WHERE st.org_id = p_org AND st.visitor_id IS NOT NULL
            ORDER BY st.site_id, st.id
          ), gaps AS (
            SELECT e.*, e.occurred_at - lag(e.occurred_at)
                     OVER (PARTITION BY e.site_id, e.visitor_id ORDER BY e.occurred_at) AS gap
            FROM events e
          ), batch AS (
            SELECT g.site_id, g.visitor_id, min(g.occurred_at) AS first_at, max(g.occurred_at) AS last_at,
                   1 + count(*) FILTER (WHERE g.gap > {SESSION_GAP}) AS sessions,
                   count(*) FILTER (WHERE g.event_type = 'page_view') AS pages,
                   count(*) FILTER (WHERE g.event_type = 'click') AS clicks,
                   count(*) FILTER (WHERE g.event_type IN ('purchase', 'signup')) AS conversions,
                   (array_agg(g.payload ->> 'country' ORDER BY g.occurred_at DESC)
                     FILTER (WHERE g.payload ->> 'country' ~ '^[A-Z]{{2}}$'))[1] AS country,
                   (array_agg(g.device ORDER BY g.occurred_at DESC) FILTER (WHERE g.device IS NOT NULL))[1] AS device
            FROM gaps g
            GROUP BY g.site_id, g.visitor_id
          ), customs AS MATERIALIZED (  -- once: the staging table has no statistics, so a join would rescan it
            SELECT e.site_id, e.visitor_id, jsonb_object_agg(c.key, c.value ORDER BY e.occurred_at) AS custom
            FROM events e CROSS JOIN LATERAL jsonb_each(e.custom) c
            WHERE jsonb_typeof(e.custom) = 'object'
            GROUP BY e.site_id, e.visitor_id
          ), profiled AS (
            INSERT INTO socialproof.visitor_profiles AS p
              (org_id, site_id, visitor_id, first_seen_at, last_seen_at, session_count, page_views, clicks,
               conversions, engagement, country, device, custom)
            SELECT p_org, b.site_id, b.visitor_id, b.first_at, b.last_at, b.sessions, b.pages, b.clicks,
                   b.conversions, b.pages + 3 * b.clicks + 10 * b.conversions + 2 * b.sessions, b.country,
                   left(b.device, 10), coalesce(c.custom, '{{}}')
            FROM batch b
            LEFT JOIN customs c ON c.site_id = b.site_id AND c.visitor_id = b.visitor_id
            ORDER BY b.site_id, b.visitor_id
            ON CONFLICT ON CONSTRAINT uq_visitor_profiles_site_id_visitor_id DO UPDATE SET
              first_seen_at = least(p.first_seen_at, excluded.first_seen_at),
              last_seen_at = greatest(p.last_seen_at, excluded.last_seen_at),
              session_count = p.session_count + excluded.session_count
                - (excluded.first_seen_at <= p.last_seen_at + {SESSION_GAP})::int,
              page_views = p.page_views + excluded.page_views,
              clicks = p.clicks + excluded.clicks,
              conversions = p.conversions + excluded.conversions,
              engagement = p.engagement * power(0.5, greatest(
                  extract(epoch FROM excluded.last_seen_at - p.last_seen_at), 0) / {HALF_LIFE_SECONDS})
                + excluded.engagement - 2 * (excluded.first_seen_at <= p.last_seen_at + {SESSION_GAP})::int,
              country = coalesce(excluded.country, p.country),
              device = coalesce(excluded.device, p.device),
              custom = p.custom || excluded.custom,
              updated_at = now()
          )
          SELECT stored.site_id, stored.id FROM stored;
        END $$""")
    op.execute(f"GRANT EXECUTE ON FUNCTION socialproof.ingest_profiled(uuid, timestamptz) TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION socialproof.ingest_profiled(uuid, timestamptz)")
    op.execute("DROP TRIGGER publish_change ON socialproof.custom_field_definitions")
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE socialproof.{table}")
