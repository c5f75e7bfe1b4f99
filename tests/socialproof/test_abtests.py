"""A/B tests: setup and life cycle through the API, bad input, roles and tenants, the feed serving each visitor their
variant, the variant shown counted from the widget's events into the rollups, results and the automatic winner."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from northstar.core.db import Database
from northstar.socialproof.ingest import EventRow, EventWriter
from northstar.socialproof.service import abtests
from tests.factories import Account, add_member
from tests.socialproof.conftest import SiteFactory, WidgetSite, widget_event


def _variants(*weights: int, control: int = 0) -> list[dict[str, Any]]:
    return [
        {"name": f"Variant {chr(65 + index)}", "isControl": index == control, "weight": weight}
        | ({} if index == control else {"message": f"{{{{firstName}}}} bought it (variant {chr(65 + index)})"})
        for index, weight in enumerate(weights)
    ]


async def _notification(site: WidgetSite) -> dict[str, Any]:
    return await site.notification(type="recent_activity", source={"eventTypes": ["purchase"]})


async def _create(site: WidgetSite, account: Account | None = None, **fields: Any) -> httpx.Response:
    if "notificationId" not in fields:
        fields["notificationId"] = (await _notification(site))["id"]
    body = {"name": "Headline test", "variants": _variants(50, 50), **fields}
    return await site.client.post(
        f"/api/v1/sites/{site.id}/ab-tests", headers=(account or site.account).headers, json=body
    )


async def _test(site: WidgetSite, **fields: Any) -> dict[str, Any]:
    response = await _create(site, **fields)
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])


async def _act(site: WidgetSite, test: dict[str, Any], action: str, **body: Any) -> httpx.Response:
    return await site.client.post(
        f"/api/v1/sites/{site.id}/ab-tests/{test['id']}/{action}", headers=site.account.headers, json=body or None
    )


async def test_a_test_round_trips_and_runs_its_life_cycle(site: WidgetSite) -> None:
    test = await _test(site, primaryMetric="conversion_rate", minSample=200, autoWinner=True)
    assert test["status"] == "draft"
    assert (test["primaryMetric"], test["minSample"], test["autoWinner"]) == ("conversion_rate", 200, True)
    assert [(v["name"], v["isControl"], v["weight"]) for v in test["variants"]] == [
        ("Variant A", True, 50),
        ("Variant B", False, 50),
    ]
    url = f"/api/v1/sites/{site.id}/ab-tests/{test['id']}"
    assert (await site.client.get(url, headers=site.account.headers)).json()["data"] == test
    listed = await site.client.get(f"/api/v1/sites/{site.id}/ab-tests?status=draft", headers=site.account.headers)
    assert [item["id"] for item in listed.json()["data"]] == [test["id"]]

    changed = await site.client.patch(
        url,
        headers=site.account.headers,
        json={"name": "Three ways", "variants": _variants(34, 33, 33, control=1)},
    )
    assert changed.status_code == 200, changed.text
    assert [v["isControl"] for v in changed.json()["data"]["variants"]] == [False, True, False]

    started = await _act(site, test, "start")
    assert started.status_code == 200 and started.json()["data"]["status"] == "running"
    assert started.json()["data"]["startedAt"] is not None
    again = await _act(site, test, "start")
    assert again.status_code == 409 and again.json()["error"]["code"] == "ab_test_not_draft"
    frozen = await site.client.patch(url, headers=site.account.headers, json={"variants": _variants(50, 50)})
    assert frozen.status_code == 409 and frozen.json()["error"]["code"] == "ab_test_started"
    renamed = await site.client.patch(url, headers=site.account.headers, json={"minSample": 500})
    assert renamed.status_code == 200 and renamed.json()["data"]["minSample"] == 500
    assert (await site.client.delete(url, headers=site.account.headers)).status_code == 409

    stopped = await _act(site, test, "stop")
    assert stopped.json()["data"]["status"] == "stopped"
    assert (await _act(site, test, "stop")).status_code == 409
    winner = changed.json()["data"]["variants"][2]["id"]
    completed = await _act(site, test, "complete", winnerVariantId=winner)
    assert completed.status_code == 200, completed.text
    assert completed.json()["data"]["status"] == "completed"
    assert completed.json()["data"]["winnerVariantId"] == winner
    assert completed.json()["data"]["winnerSelectedAt"] is not None
    assert (await _act(site, test, "complete", winnerVariantId=winner)).status_code == 409
    assert (await site.client.patch(url, headers=site.account.headers, json={"name": "x"})).status_code == 409
    assert (await site.client.delete(url, headers=site.account.headers)).status_code == 204
    assert (await site.client.get(url, headers=site.account.headers)).status_code == 404


async def test_one_running_test_per_notification(site: WidgetSite) -> None:
    notification = await _notification(site)
    first = await _test(site, notificationId=notification["id"])
    second = await _test(site, notificationId=notification["id"])
    assert (await _act(site, first, "start")).status_code == 200
    refused = await _act(site, second, "start")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "ab_test_already_running"
    assert (await _act(site, first, "stop")).status_code == 200
    assert (await _act(site, second, "start")).status_code == 200


@pytest.mark.parametrize(
    ("variants", "field"),
    [
        (_variants(50, 40), "body.variants"),  # weights sum to 90
        (_variants(20, 20, 20, 20, 10, 10), "body.variants"),  # six variants
        (_variants(100), "body.variants"),  # one variant
        ([{**v, "isControl": True} for v in _variants(50, 50)], "body.variants"),  # two controls
        ([{**v, "isControl": False} for v in _variants(50, 50)], "body.variants"),  # no control
        ([{**v, "name": "Same"} for v in _variants(50, 50)], "body.variants"),
        (_variants(0, 100), "body.variants.0.weight"),
        ([*_variants(50), {"name": "B", "weight": 50, "display": {"durationSeconds": 0}}], "body.variants.1.display"),
        ([*_variants(50), {"name": "B", "weight": 50, "display": {"colour": "red"}}], "body.variants.1.display"),
        ([*_variants(50), {"name": "B", "weight": 50, "message": "{{nope}}"}], "body.variants.1.message"),
        ([*_variants(50), {"name": "B", "weight": 50, "message": "<b>hi</b>"}], "body.variants.1.message"),
        ([*_variants(50), {"name": "B", "weight": 50, "extra": 1}], "body.variants.1.extra"),
    ],
)
async def test_bad_variants_are_422(site: WidgetSite, variants: list[dict[str, Any]], field: str) -> None:
    response = await _create(site, variants=variants)
    assert response.status_code == 422, response.text
    assert any(detail["field"].startswith(field) for detail in response.json()["error"]["details"]), response.text
    assert (await site.client.get(f"/api/v1/sites/{site.id}/ab-tests", headers=site.account.headers)).json()["meta"][
        "total"
    ] == 0


async def test_bad_references_and_fields_are_422(site: WidgetSite, make_site: SiteFactory) -> None:
    other = await make_site()
    foreign_notification = await _notification(other)
    response = await _create(site, notificationId=foreign_notification["id"])
    assert response.status_code == 422 and response.json()["error"]["details"][0]["field"] == "body.notificationId"
    foreign_template = await other.template(message="{{firstName}} bought")
    variants = [*_variants(50), {"name": "B", "weight": 50, "templateId": foreign_template["id"]}]
    response = await _create(site, variants=variants)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "body.variants.1.templateId"
    for fields in ({"primaryMetric": "revenue"}, {"minSample": 1}, {"name": ""}, {"autoWinner": "sometimes"}):
        assert (await _create(site, **fields)).status_code == 422, fields
    test = await _test(site)
    url = f"/api/v1/sites/{site.id}/ab-tests/{test['id']}"
    assert (await site.client.patch(url, headers=site.account.headers, json={})).status_code == 422
    assert (await _act(site, test, "start")).status_code == 200
    wrong = await _act(site, test, "complete", winnerVariantId=str(uuid.uuid4()))
    assert wrong.status_code == 422 and wrong.json()["error"]["details"][0]["field"] == "body.winnerVariantId"
    assert (await _act(site, test, "complete")).status_code == 422
    assert (await site.client.get(f"{url}/results", headers=site.account.headers)).status_code == 200
    assert (
        await site.client.get(f"/api/v1/sites/{site.id}/ab-tests/nope", headers=site.account.headers)
    ).status_code == 422


async def test_roles(client: httpx.AsyncClient, founder: Account, make_site: SiteFactory) -> None:
    site = await make_site()
    test = await _test(site)
    url = f"/api/v1/sites/{site.id}/ab-tests/{test['id']}"
    analyst = await add_member(client, founder, "analyst")
    investor = await add_member(client, founder, "investor")
    member = await add_member(client, founder, "member")
    for path in (url, f"{url}/results", f"/api/v1/sites/{site.id}/ab-tests"):
        assert (await client.get(path, headers=analyst.headers)).status_code == 200
        assert (await client.get(path, headers=investor.headers)).status_code == 403
    for account in (analyst, investor, member):  # the member did not create this site
        assert (await _create(site, account)).status_code == 403
        assert (await client.post(f"{url}/start", headers=account.headers)).status_code == 403
        assert (await client.patch(url, headers=account.headers, json={"name": "x"})).status_code == 403
        assert (await client.delete(url, headers=account.headers)).status_code == 403
    own = await make_site(account=member)
    mine = await _test(own)
    assert (await _act(own, mine, "start")).status_code == 200


async def test_other_tenants_see_nothing(site: WidgetSite, other_founder: Account) -> None:
    test = await _test(site)
    url = f"/api/v1/sites/{site.id}/ab-tests/{test['id']}"
    headers = other_founder.headers
    client = site.client
    for response in (
        await client.get(f"/api/v1/sites/{site.id}/ab-tests", headers=headers),
        await client.get(url, headers=headers),
        await client.get(f"{url}/results", headers=headers),
        await client.patch(url, headers=headers, json={"name": "mine"}),
        await client.delete(url, headers=headers),
        await client.post(f"{url}/start", headers=headers),
        await client.post(f"{url}/stop", headers=headers),
        await client.post(f"{url}/complete", headers=headers, json={"winnerVariantId": test["variants"][0]["id"]}),
        await client.post(
            f"/api/v1/sites/{site.id}/ab-tests",
            headers=headers,
            json={"name": "x", "notificationId": test["notificationId"], "variants": _variants(50, 50)},
        ),
    ):
        assert response.status_code == 404, response.text
    assert (await client.get(url, headers=site.account.headers)).json()["data"]["status"] == "draft"


async def test_the_feed_serves_each_visitor_a_sticky_variant_split_by_weight(make_site: SiteFactory) -> None:
    site = await make_site(settings={"persistentVisitorId": True})
    notification = await _notification(site)
    await site.record({"type": "purchase", "firstName": "Anna", "product": "Shoes"})
    test = await _test(site, notificationId=notification["id"], variants=_variants(20, 80))
    control, variant = (v["id"] for v in test["variants"])

    async def shown(visitor: str) -> dict[str, Any]:
        response = await site.client.get(
            f"/api/v1/widget/{site.key}/feed", params={"url": site.page(), "vid": visitor}, headers=site.browser()
        )
        assert response.status_code == 200, response.text
        (popup,) = response.json()["data"]["notifications"]
        return dict(popup)

    async def settled(visitor: str, done: Any) -> dict[str, Any]:
        """The feed once a change reached it (caches are dropped asynchronously, over LISTEN)."""
        for _ in range(40):
            popup = await shown(visitor)
            if done(popup):
                return popup
            await asyncio.sleep(0.05)
        raise AssertionError(popup)

    before = await shown("a" * 32)
    assert before["variantId"] is None  # a draft changes nothing
    assert (await _act(site, test, "start")).status_code == 200
    await settled("a" * 32, lambda popup: popup["variantId"] is not None)
    seen: collections.Counter[str] = collections.Counter()
    for number in range(400):
        visitor = f"{number:032x}"
        popup = await shown(visitor)
        seen[popup["variantId"]] += 1
        text = "".join(popup["items"][0]["parts"])
        assert ("(variant B)" in text) == (popup["variantId"] == variant)
        if number < 10:  # the split is the hash of the id the visitor's events carry, and sticky
            weights = [(uuid.UUID(control), 20), (uuid.UUID(variant), 80)]
            expected = abtests.assign(await _visitor_id(site, visitor), uuid.UUID(test["id"]), weights)
            assert popup["variantId"] == str(expected)
            assert (await shown(visitor))["variantId"] == popup["variantId"]
    assert set(seen) == {control, variant}
    assert 0.14 < seen[control] / 400 < 0.26  # 20 % ± 3 standard errors

    assert (await _act(site, test, "complete", winnerVariantId=variant)).status_code == 200
    await settled("a" * 32, lambda popup: popup["variantId"] is None)
    for number in range(5):
        popup = await shown(f"{number:032x}")
        assert popup["variantId"] is None and "(variant B)" in "".join(popup["items"][0]["parts"])


async def _visitor_id(site: WidgetSite, local_id: str) -> str:
    """The visitor id the platform gives a browser with this first-party id (read from its stored page view)."""
    event = widget_event("page_view", site.page())
    assert (await site.collect(event, visitor={"localId": local_id})).status_code == 202
    with psycopg.connect(site.database_url) as connection:
        row = connection.execute(
            "SELECT visitor_id FROM socialproof.notification_events WHERE site_id = %s AND id = %s",
            (site.id, event["id"]),
        ).fetchone()
    assert row is not None
    return str(row[0])


async def test_the_variant_shown_is_counted_per_visitor_and_credited_with_conversions_on_a_later_day(
    make_site: SiteFactory,
) -> None:
    site = await make_site(settings={"persistentVisitorId": True})
    notification = await _notification(site)
    test = await _test(site, notificationId=notification["id"])
    control, variant = (v["id"] for v in test["variants"])
    assert (await _act(site, test, "start")).status_code == 200
    now = dt.datetime.now(dt.UTC)
    yesterday = (now - dt.timedelta(days=1)).isoformat()
    page = site.page("/p/1")
    interaction = {"notificationId": notification["id"]}
    # one visitor, three impressions and a click of the variant yesterday, a purchase today
    shown = {**interaction, "variantId": variant}
    first = await site.collect(
        *(widget_event("impression", page, occurredAt=yesterday, **shown) for _ in range(3)),
        widget_event("click", page, occurredAt=yesterday, **shown),
        visitor={"localId": "b" * 32},
        sentAt=now.isoformat(),
    )
    assert first.status_code == 202, first.text
    bought = await site.collect(widget_event("purchase", page), visitor={"localId": "b" * 32})
    assert bought.status_code == 202
    # another visitor saw the control and did not click; a third sent a variant of no test (not counted)
    await site.collect(
        widget_event("impression", page, variantId=control, **interaction), visitor={"localId": "c" * 32}
    )
    await site.collect(
        widget_event("impression", page, variantId=str(uuid.uuid4()), **interaction), visitor={"localId": "d" * 32}
    )
    results = (
        await site.client.get(f"/api/v1/sites/{site.id}/ab-tests/{test['id']}/results", headers=site.account.headers)
    ).json()["data"]
    counts = {row["variantId"]: (row["exposures"], row["clicks"], row["conversions"]) for row in results["variants"]}
    assert counts == {control: (1, 0, 0), variant: (1, 1, 1)}
    by_variant = {row["variantId"]: row for row in results["variants"]}
    assert by_variant[variant]["ctr"]["rate"] == 1.0 and by_variant[variant]["ctr"]["low"] < 1.0
    assert by_variant[control]["versusControl"] is None
    assert by_variant[variant]["versusControl"]["chanceToBeatControl"] > 0.5
    assert results["minSampleReached"] is False
    with psycopg.connect(site.database_url) as connection:
        days = connection.execute(
            "SELECT variant_id::text, day, exposures FROM socialproof.ab_test_counts WHERE test_id = %s "
            "AND exposures > 0 ORDER BY 1",
            (test["id"],),
        ).fetchall()
        credited = connection.execute(
            "SELECT variant_id::text FROM socialproof.conversions WHERE site_id = %s", (site.id,)
        ).fetchall()
    assert {(row[0], row[1]) for row in days} == {(variant, (now - dt.timedelta(days=1)).date()), (control, now.date())}
    assert credited == [(variant,)]


def _rows(
    account: Account, site: WidgetSite, notification_id: str, variant_id: str, visitors: range, *, clicked: int
) -> list[EventRow]:
    now = dt.datetime.now(dt.UTC)
    rows = []
    for number in visitors:
        for event_type in ("impression", "click") if number - visitors.start < clicked else ("impression",):
            rows.append(
                EventRow(
                    id=uuid.uuid4(),
                    org_id=account.org_id,
                    site_id=uuid.UUID(site.id),
                    event_type=event_type,
                    occurred_at=now,
                    notification_id=uuid.UUID(notification_id),
                    visitor_id=f"visitor-{variant_id[:8]}-{number}",
                    url=site.page(),
                    variant_id=uuid.UUID(variant_id),
                )
            )
    return rows


async def test_auto_winner_completes_a_significant_test_and_the_notification_shows_the_winner(
    app: FastAPI, site: WidgetSite, database: Database
) -> None:
    notification = await _notification(site)
    await site.record({"type": "purchase", "firstName": "Anna", "product": "Shoes"})
    test = await _test(site, notificationId=notification["id"], minSample=100, autoWinner=True)
    control, variant = (v["id"] for v in test["variants"])
    assert (await _act(site, test, "start")).status_code == 200
    writer: EventWriter = app.state.socialproof.writer
    await writer.write(_rows(site.account, site, notification["id"], control, range(60), clicked=3))
    async with database.tenant_transaction(org_id=site.account.org_id) as session:
        assert await abtests.check_running_tests(session, org_id=site.account.org_id) == []  # below minSample
    await writer.write(_rows(site.account, site, notification["id"], control, range(60, 150), clicked=3))
    await writer.write(_rows(site.account, site, notification["id"], variant, range(150), clicked=40))
    async with database.tenant_transaction(org_id=site.account.org_id) as session:
        assert await abtests.check_running_tests(session, org_id=site.account.org_id) == [uuid.UUID(test["id"])]
    done = (
        await site.client.get(f"/api/v1/sites/{site.id}/ab-tests/{test['id']}", headers=site.account.headers)
    ).json()["data"]
    assert (done["status"], done["winnerVariantId"], done["srmFlagged"]) == ("completed", variant, False)
    assert done["winnerSelectedAt"] is not None
    popup = (await site.feed()).json()["data"]["notifications"][0]
    assert popup["variantId"] is None and "(variant B)" in "".join(popup["items"][0]["parts"])
    async with database.tenant_transaction(org_id=site.account.org_id) as session:  # visitors of finished tests go
        assert await abtests.prune_finished_visitors(session, org_id=site.account.org_id) == 300
    results = (
        await site.client.get(f"/api/v1/sites/{site.id}/ab-tests/{test['id']}/results", headers=site.account.headers)
    ).json()["data"]
    assert [(row["exposures"], row["clicks"]) for row in results["variants"]] == [(150, 6), (150, 40)]


async def test_a_sample_ratio_mismatch_is_flagged_and_blocks_the_auto_winner(
    app: FastAPI, site: WidgetSite, database: Database
) -> None:
    notification = await _notification(site)
    test = await _test(site, notificationId=notification["id"], minSample=100, autoWinner=True)
    control, variant = (v["id"] for v in test["variants"])
    assert (await _act(site, test, "start")).status_code == 200
    writer: EventWriter = app.state.socialproof.writer
    await writer.write(_rows(site.account, site, notification["id"], control, range(300), clicked=6))
    await writer.write(_rows(site.account, site, notification["id"], variant, range(150), clicked=60))
    async with database.tenant_transaction(org_id=site.account.org_id) as session:
        assert await abtests.check_running_tests(session, org_id=site.account.org_id) == []
    url = f"/api/v1/sites/{site.id}/ab-tests/{test['id']}"
    results = (await site.client.get(f"{url}/results", headers=site.account.headers)).json()["data"]
    assert results["sampleRatio"]["flagged"] is True and results["sampleRatio"]["pValue"] < 0.001
    assert results["variants"][1]["versusControl"]["significant"] is True  # significant, but not trusted
    test_now = (await site.client.get(url, headers=site.account.headers)).json()["data"]
    assert (test_now["status"], test_now["srmFlagged"]) == ("running", True)
