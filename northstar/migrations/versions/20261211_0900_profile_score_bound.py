"""A visitor's behaviour score no longer fails to compute for the most engaged visitors.

``behavior_score`` was ``100 * (1 - exp(-engagement / 25))``. PostgreSQL raises "value out of range: underflow"
when ``exp`` of a double falls below its smallest value, which happens once engagement passes about 18,600 points:
from then on every upsert of that visitor's profile failed, and with it the flush that carried their events, so
all of that visitor's new events were refused. The exponent is now bounded (``least(engagement, 2500)``): the score,
rounded to one decimal, is 100.0 from about 190 points on, so nothing else changes. PostgreSQL 15 and 16 cannot
change a generated column's expression in place, so the column (and its index) is made again.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-11 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BOUNDED = "round((100 * (1 - exp(-least(engagement, 2500) / 25)))::numeric, 1)::double precision"
UNBOUNDED = "round((100 * (1 - exp(-engagement / 25)))::numeric, 1)::double precision"


def _score(expression: str) -> None:
    op.execute("ALTER TABLE socialproof.visitor_profiles DROP COLUMN behavior_score")  # its index goes with it
    op.execute(
        "ALTER TABLE socialproof.visitor_profiles"
        f" ADD COLUMN behavior_score double precision GENERATED ALWAYS AS ({expression}) STORED"
    )
    op.execute(
        "CREATE INDEX ix_visitor_profiles_site_id_behavior_score ON socialproof.visitor_profiles (site_id, behavior_score)"
    )


def upgrade() -> None:
    _score(BOUNDED)


def downgrade() -> None:
    _score(UNBOUNDED)
