"""Reports end to end: asked for through the API, made by a real worker from the facts of their period, stored in
S3 (the moto server) with HTML and PDF served by expiring links; who reads which kind; and bad input."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
import pytest

from northstar.core.numbers import unsupported
from tests.factories import Account, add_member
from tests.metrics.test_queries import Billing, billing  # noqa: F401  (the fixture)
from tests.workers import Workers

FINISHED = ("completed", "failed")


async def _data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"]


async def request_report(client: httpx.AsyncClient, account: Account, **body: Any) -> dict[str, Any]:
    data: dict[str, Any] = await _data(await client.post("/api/v1/reports", headers=account.headers, json=body), 202)
    return data


async def finished(client: httpx.AsyncClient, account: Account, report_id: str) -> dict[str, Any]:
    """The report once the worker has made it (or failed to)."""
    for _ in range(600):
        found: dict[str, Any] = await _data(await client.get(f"/api/v1/reports/{report_id}", headers=account.headers))
        if found["status"] in FINISHED:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"report {report_id} still {found['status']}")


async def fetch(client: httpx.AsyncClient, account: Account, report_id: str, kind: str) -> httpx.Response:
    """A report file through its expiring link, followed without credentials as a browser would."""
    link = await _data(await client.get(f"/api/v1/reports/{report_id}/files/{kind}", headers=account.headers))
    assert link["expiresIn"] == 3600
    async with httpx.AsyncClient() as browser:
        return await browser.get(link["url"])


def _facts(report: dict[str, Any]) -> list[str]:
    return [fact["text"] for fact in report["facts"]]


async def test_each_kind_is_made_by_the_worker_from_its_periods_facts(
    client: httpx.AsyncClient,
    billing: Billing,  # noqa: F811
    worker: Workers,
) -> None:
    founder = billing.account
    rule = await client.post(
        "/api/v1/notifications/rules",
        headers=founder.headers,
        json={"name": "Reports", "condition": {"kind": "report"}},
    )
    assert rule.status_code == 201, rule.text
    shared = await client.patch("/api/v1/metrics/settings", headers=founder.headers, json={"investorMetrics": ["mrr"]})
    assert shared.status_code == 200, shared.text
    last_month = billing.month(-1)
    monthly = await request_report(client, founder, kind="monthly_report", period=last_month.isoformat())
    assert (monthly["status"], monthly["periodStart"], monthly["scheduled"]) == (
        "queued",
        last_month.isoformat(),
        False,
    )
    weekly = await request_report(client, founder, kind="weekly_digest", formats=["html", "mp4"])
    investor = await request_report(client, founder, kind="investor_update", period=last_month.isoformat())

    made = await finished(client, founder, monthly["id"])
    assert made["status"] == "completed", made["error"]
    assert made["title"] == f"{last_month:%B %Y} in review" and made["generator"] == "deterministic"
    assert made["narrative"].startswith(
        f"Good month: MRR grew by 85.00 USD (47.2 %) to 265.00 USD in {last_month:%B %Y}."
    )
    assert unsupported(made["narrative"], _facts(made)) == []
    assert set(made["files"]) == {"html", "pdf"} and made["files"]["pdf"]["mediaType"] == "application/pdf"
    html = await fetch(client, founder, made["id"], "html")
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    assert f"{last_month:%B %Y} in review" in html.text and "<svg" in html.text and "<script" not in html.text
    pdf = await fetch(client, founder, made["id"], "pdf")
    assert pdf.content.startswith(b"%PDF-") and len(pdf.content) == made["files"]["pdf"]["bytes"]

    week = await finished(client, founder, weekly["id"])
    assert week["status"] == "completed", week["error"]
    start = dt.date.fromisoformat(week["periodStart"])
    assert start.weekday() == 0 and week["periodEnd"] == (start + dt.timedelta(days=6)).isoformat()
    assert week["title"] == f"Your week to {week['periodEnd']}"
    assert set(week["files"]) == {"html", "mp4", "vtt", "poster"}
    subtitles = (await fetch(client, founder, week["id"], "vtt")).text
    assert subtitles.startswith("WEBVTT") and "MRR in" in subtitles  # the headline slide says the MRR fact
    video = await fetch(client, founder, week["id"], "mp4")
    assert video.headers["content-type"] == "video/mp4" and video.content[4:8] == b"ftyp"
    assert week["facts"][0]["id"] == "week" and unsupported(week["narrative"], _facts(week)) == []

    update = await finished(client, founder, investor["id"])
    assert update["status"] == "completed", update["error"]
    assert update["title"] == f"Investor update: {last_month:%B %Y}" and update["recommendations"] == []
    assert {fact["id"] for fact in update["facts"]} == {"kpi.mrr"}  # only what investors are shown
    assert "cus_" not in str(update)

    inbox = await _data(await client.get("/api/v1/notifications/inbox", headers=founder.headers))
    told = [message["url"].rsplit("/", 1)[1] for message in inbox if message["title"].startswith("Report ready")]
    for report in (monthly, weekly, investor):  # written with the report (the schedule may have made more)
        assert told.count(report["id"]) == 1, report["kind"]


async def test_investors_read_investor_updates_only_and_owners_delete(
    client: httpx.AsyncClient,
    billing: Billing,  # noqa: F811
    other_founder: Account,
) -> None:
    founder = billing.account
    monthly = await request_report(client, founder, kind="monthly_report")
    update = await request_report(client, founder, kind="investor_update")
    investor = await add_member(client, founder, "investor")
    listed = await _data(await client.get("/api/v1/reports", headers=investor.headers))
    assert [report["id"] for report in listed] == [update["id"]]
    assert (await client.get(f"/api/v1/reports/{monthly['id']}", headers=investor.headers)).status_code == 404
    assert (
        await client.post("/api/v1/reports", headers=investor.headers, json={"kind": "investor_update"})
    ).status_code == 403

    member = await add_member(client, founder, "member")
    mine = await request_report(client, member, kind="weekly_digest")
    refused = await client.delete(f"/api/v1/reports/{monthly['id']}", headers=member.headers)
    assert refused.status_code == 403
    assert (await client.delete(f"/api/v1/reports/{mine['id']}", headers=member.headers)).status_code == 204
    analyst = await add_member(client, founder, "analyst")
    assert (
        await client.post("/api/v1/reports", headers=analyst.headers, json={"kind": "weekly_digest"})
    ).status_code == 403

    for path in (f"/api/v1/reports/{monthly['id']}", f"/api/v1/reports/{monthly['id']}/files/html"):
        assert (await client.get(path, headers=other_founder.headers)).status_code == 404, path
    assert (await client.delete(f"/api/v1/reports/{monthly['id']}", headers=other_founder.headers)).status_code == 404
    assert [r["id"] for r in await _data(await client.get("/api/v1/reports", headers=other_founder.headers))] == []
    assert (await client.get(f"/api/v1/reports/{monthly['id']}", headers=founder.headers)).status_code == 200


async def test_a_file_link_is_exactly_what_was_signed(client: httpx.AsyncClient, founder: Account) -> None:
    report_id = uuid.uuid4()
    for query in ("", f"?org={founder.org_id}&expires=4102444800&signature={'0' * 64}", "?expires=1&signature=x"):
        answer = await client.get(f"/api/v1/report-files/{report_id}/html{query}")
        assert answer.status_code in (404, 422), answer.text
        assert answer.json()["error"]["code"] in ("link_expired", "validation_error")


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "yearly_report"},
        {"kind": "monthly_report", "formats": []},
        {"kind": "monthly_report", "formats": ["mp3"]},
        {"kind": "monthly_report", "period": "March"},
        {"kind": "monthly_report", "period": "2999-01-01"},
    ],
)
async def test_bad_requests_are_clear(client: httpx.AsyncClient, founder: Account, body: dict[str, Any]) -> None:
    answer = await client.post("/api/v1/reports", headers=founder.headers, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] in ("validation_error", "unprocessable")
