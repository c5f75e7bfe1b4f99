"""Share links: a report or the live investor dashboard for someone without an account; the token kept only as a
hash, an optional passcode whose guesses are limited (429), expiry and revocation, and every view audited."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text

from northstar.core.db import Database
from tests.factories import Account, add_member
from tests.metrics.test_queries import Billing, billing  # noqa: F401  (the fixture)
from tests.reports.test_reports import finished, request_report
from tests.workers import Workers


async def _share(client: httpx.AsyncClient, account: Account, path: str, **body: Any) -> dict[str, Any]:
    response = await client.post(path, headers=account.headers, json={"label": "Seed round", **body})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _path(share: dict[str, Any]) -> str:
    return share["url"].removeprefix("http://127.0.0.1:8000")


async def test_a_shared_report_opens_with_its_passcode_and_each_view_is_audited(
    client: httpx.AsyncClient,
    billing: Billing,  # noqa: F811
    worker: Workers,
    database: Database,
) -> None:
    founder = billing.account
    report = await finished(client, founder, (await request_report(client, founder, kind="monthly_report"))["id"])
    share = await _share(client, founder, f"/api/v1/reports/{report['id']}/shares", passcode="open sesame")
    assert share["passcode"] and share["reportId"] == report["id"] and share["views"] == 0
    token = share["url"].rsplit("/", 1)[1]
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        stored = (await session.execute(text("SELECT token_hash, passcode_hash FROM reports.share_links"))).all()
    assert token.split(".")[1] not in str(stored) and "open sesame" not in str(stored)  # hashes only

    asked = await client.get(_path(share))
    assert asked.status_code == 401 and 'name="passcode"' in asked.text
    assert "frame-ancestors 'none'" in asked.headers["content-security-policy"]
    wrong = await client.post(_path(share), data={"passcode": "guess"})
    assert wrong.status_code == 401 and "not right" in wrong.text
    opened = await client.post(_path(share), data={"passcode": "open sesame"})
    assert opened.status_code == 200 and report["title"] in opened.text
    assert "Download the PDF" in opened.text and "<iframe" in opened.text and "sandbox" in opened.text

    listed = await client.get("/api/v1/shares", headers=founder.headers, params={"reportId": report["id"]})
    assert [(item["id"], item["views"]) for item in listed.json()["data"]] == [(share["id"], 1)]
    audit = await client.get("/api/v1/audit", headers=founder.headers, params={"action": "reports.share_viewed"})
    [viewed] = audit.json()["data"]
    assert (viewed["actorType"], viewed["targetType"], viewed["targetId"]) == ("share_link", "report", report["id"])

    for _ in range(3):  # five tries in all, then the link stops listening for a while
        assert (await client.post(_path(share), data={"passcode": "guess"})).status_code == 401
    assert (await client.post(_path(share), data={"passcode": "open sesame"})).status_code == 429


async def test_revoked_expired_and_forged_links_are_not_found(
    client: httpx.AsyncClient,
    billing: Billing,  # noqa: F811
    database: Database,
) -> None:
    founder = billing.account
    revoked = await _share(client, founder, "/api/v1/shares/dashboard")
    assert (await client.get(_path(revoked))).status_code == 200
    gone = await client.delete(f"/api/v1/shares/{revoked['id']}", headers=founder.headers)
    assert gone.status_code == 200 and gone.json()["data"]["revokedAt"]
    assert (await client.get(_path(revoked))).status_code == 404

    expired = await _share(client, founder, "/api/v1/shares/dashboard", expiresInDays=1)
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        await session.execute(
            text("UPDATE reports.share_links SET expires_at = now() - interval '1 second' WHERE id = :id"),
            {"id": expired["id"]},
        )
    assert (await client.get(_path(expired))).status_code == 404

    live = await _share(client, founder, "/api/v1/shares/dashboard")
    link_id, secret = live["url"].rsplit("/", 1)[1].split(".")
    forged = f"/shared/{link_id}.{secret[:-2]}xx"
    page = await client.get(forged)
    assert page.status_code == 404 and "invalid or has expired" in page.text
    assert (await client.get(f"/shared/{'0' * 32}.{secret}")).status_code == 404


async def test_the_live_dashboard_shows_only_what_investors_may_see(
    client: httpx.AsyncClient,
    billing: Billing,  # noqa: F811
    other_founder: Account,
) -> None:
    founder = billing.account
    await client.patch("/api/v1/metrics/settings", headers=founder.headers, json={"investorMetrics": ["mrr"]})
    share = await _share(client, founder, "/api/v1/shares/dashboard", expiresInDays=30)
    assert share["reportId"] is None
    page = await client.get(_path(share))
    assert page.status_code == 200 and "investor dashboard" in page.text
    assert "225.00 USD" in page.text and "Customers" not in page.text and "cus_" not in page.text
    assert "sandbox" in page.headers["content-security-policy"]

    member = await add_member(client, founder, "member")
    refused = await client.post(
        "/api/v1/shares/dashboard", headers=member.headers, json={"label": "mine", "expiresInDays": 1}
    )
    assert refused.status_code == 403
    assert (await client.get("/api/v1/shares", headers=member.headers)).status_code == 403
    assert (await client.delete(f"/api/v1/shares/{share['id']}", headers=other_founder.headers)).status_code == 404
    assert (await client.get("/api/v1/shares", headers=other_founder.headers)).json()["data"] == []
    bad = await client.post(
        "/api/v1/shares/dashboard", headers=founder.headers, json={"label": "", "expiresInDays": 365, "passcode": "1"}
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"
