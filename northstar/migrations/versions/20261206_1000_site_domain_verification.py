"""Sites prove control of their domain when it overlaps another organization's site.

A site receives the Origins of its domain and every subdomain, so a site registered for a parent, a child or the
same domain as another organization's site could receive that organization's visitors. Such a site serves
nothing until it proves control of its domain (an HTTP file holding ``verification_token``; ``verified_at`` says
when it did):

* ``domain`` is unique per organization only: two organizations may claim one domain, and the one that proves
  control serves (a squatter cannot keep the owner out);
* ``domain_set_at`` says since when the site has its domain, so that a site moved onto an overlapping domain is the
  newcomer, however old the site itself is;
* ``socialproof.domain_contested(org, site, domain, since)`` (security definer, since it looks across tenants, and
  answers only yes or no): another organization's site overlaps this domain and has proved control, or was there
  first (before this site, and before every site of this organization that overlaps it: a later claim on an
  organization's domain does not hold up that organization's next sites). Row-level security is forced on the table owner too, so the owner (who owns these functions) is
  given policies of its own (read, and update for the release); the app role, which owns nothing and cannot become the owner, is not;
* ``socialproof.release_domain(org, domain)``: a proof of control of a domain withdraws other organizations'
  proofs of that same domain (control of a host is exclusive at any moment).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"


def upgrade() -> None:
    op.execute("""ALTER TABLE socialproof.sites
        ADD COLUMN verification_token varchar(64) NOT NULL
          DEFAULT 'nsv_' || encode(sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')),
                                   'hex'),
        ADD COLUMN verified_at timestamptz,
        ADD COLUMN domain_set_at timestamptz NOT NULL DEFAULT now()""")
    op.execute("UPDATE socialproof.sites SET domain_set_at = created_at")
    op.execute("ALTER TABLE socialproof.sites ALTER COLUMN verification_token DROP DEFAULT")
    op.execute("ALTER TABLE socialproof.sites DROP CONSTRAINT uq_sites_domain")
    op.execute("ALTER TABLE socialproof.sites ADD CONSTRAINT uq_sites_org_id_domain UNIQUE (org_id, domain)")
    op.execute("CREATE INDEX ix_sites_domain ON socialproof.sites (domain)")
    op.execute("CREATE INDEX ix_sites_reversed_domain ON socialproof.sites (reverse(domain) text_pattern_ops)")
    op.execute("""DO $$ BEGIN
        EXECUTE format('CREATE POLICY owner_compares_domains ON socialproof.sites FOR SELECT TO %I USING (true)',
                       current_user);
        EXECUTE format('CREATE POLICY owner_releases_domains ON socialproof.sites FOR UPDATE TO %I USING (true)',
                       current_user);
        END $$""")
    op.execute("""
        CREATE FUNCTION socialproof.domain_contested(p_org uuid, p_site uuid, p_domain text, p_since timestamptz)
        RETURNS boolean
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
          WITH labels AS (SELECT string_to_array(p_domain, '.') AS parts),
               parents AS (SELECT array_to_string(parts[i:], '.') AS domain
                           FROM labels, generate_series(1, cardinality(parts)) AS i)
          SELECT EXISTS (
            SELECT 1 FROM socialproof.sites s
            WHERE s.org_id <> p_org
              AND (s.domain IN (SELECT domain FROM parents)
                   OR reverse(s.domain) LIKE reverse('.' || p_domain) || '%')
              AND (s.verified_at IS NOT NULL
                   OR ((s.domain_set_at, s.id) < (p_since, p_site)
                       AND NOT EXISTS (
                         SELECT 1 FROM socialproof.sites m
                         WHERE m.org_id = p_org AND (m.domain_set_at, m.id) < (s.domain_set_at, s.id)
                           AND (m.domain = s.domain OR m.domain LIKE '%.' || s.domain
                                OR s.domain LIKE '%.' || m.domain)))))
        $$""")
    op.execute("""
        CREATE FUNCTION socialproof.release_domain(p_org uuid, p_domain text) RETURNS void
        LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS $$
          UPDATE socialproof.sites SET verified_at = NULL
          WHERE domain = p_domain AND org_id <> p_org AND verified_at IS NOT NULL
        $$""")
    for signature in ("domain_contested(uuid, uuid, text, timestamptz)", "release_domain(uuid, text)"):
        op.execute(f"REVOKE ALL ON FUNCTION socialproof.{signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION socialproof.{signature} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION socialproof.release_domain(uuid, text)")
    op.execute("DROP POLICY owner_compares_domains ON socialproof.sites")
    op.execute("DROP POLICY owner_releases_domains ON socialproof.sites")
    op.execute("DROP FUNCTION socialproof.domain_contested(uuid, uuid, text, timestamptz)")
    op.execute("DROP INDEX socialproof.ix_sites_reversed_domain")
    op.execute("DROP INDEX socialproof.ix_sites_domain")
    op.execute("ALTER TABLE socialproof.sites DROP CONSTRAINT uq_sites_org_id_domain")
    op.execute("ALTER TABLE socialproof.sites ADD CONSTRAINT uq_sites_domain UNIQUE (domain)")
    op.execute(
        "ALTER TABLE socialproof.sites DROP COLUMN verification_token, DROP COLUMN verified_at,"
        " DROP COLUMN domain_set_at"
    )
