"""Investor dashboards as reports: ``reports.reports.kind`` takes ``investor_dashboard``, the page and PDF that
DevBizOps' InvestorDashboardAgent publishes (shared through the same share links as any report).

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-13 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = "('weekly_digest', 'monthly_report', 'investor_update')"
AFTER = "('weekly_digest', 'monthly_report', 'investor_update', 'investor_dashboard')"


def upgrade() -> None:
    op.execute("ALTER TABLE reports.reports DROP CONSTRAINT ck_reports_kind")
    op.execute(f"ALTER TABLE reports.reports ADD CONSTRAINT ck_reports_kind CHECK (kind IN {AFTER})")


def downgrade() -> None:
    op.execute("DELETE FROM reports.reports WHERE kind = 'investor_dashboard'")
    op.execute("ALTER TABLE reports.reports DROP CONSTRAINT ck_reports_kind")
    op.execute(f"ALTER TABLE reports.reports ADD CONSTRAINT ck_reports_kind CHECK (kind IN {BEFORE})")
