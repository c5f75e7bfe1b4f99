"""The A/B test pages in a real browser: the editor (variants, split, errors at their inputs), start and stop, the
results with their intervals and the sample-ratio flag against the API's numbers, roles and tenants."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson
from playwright.async_api import expect

from tests.console.conftest import Tab, accessible, console_client, csrf_of, log_in
from tests.console.test_socialproof import CHROME, api_get, api_post, api_site
from tests.factories import Account, add_member


async def _exposures(console_url: str, site: dict[str, Any], notification_id: str, variant_id: str, count: int) -> None:
    """``count`` visitors (each its own browser) who saw the variant; every third clicked."""
    async with httpx.AsyncClient(base_url=console_url, timeout=30) as http:
        for number in range(count):
            shown = {"notificationId": notification_id, "variantId": variant_id, "url": f"https://{site['domain']}/p"}
            events = [{"id": str(uuid.uuid4()), "type": "impression", **shown}]
            if number % 3 == 0:
                events.append({"id": str(uuid.uuid4()), "type": "click", **shown})
            response = await http.post(
                "/api/v1/collect",
                content=orjson.dumps({"siteKey": site["siteKey"], "events": events}),
                headers={
                    "Origin": f"https://{site['domain']}",
                    "User-Agent": f"{CHROME} visitor/{variant_id}/{number}",
                },
            )
            assert response.status_code == 202 and response.json()["data"]["accepted"] == len(events), response.text


async def test_a_test_is_set_up_started_and_its_results_shown_with_the_srm_flag(
    tab: Tab, console_url: str, founder: Account
) -> None:
    site = await api_site(console_url, founder)
    notification = await api_post(
        console_url,
        founder,
        f"/sites/{site['id']}/notifications",
        {
            "name": "Recent buyers",
            "type": "recent_activity",
            "status": "active",
            "source": {"eventTypes": ["purchase"]},
        },
    )
    page = tab.page
    await log_in(page, founder, path=f"/app/sites/{site['id']}")
    await page.get_by_role("link", name="A/B tests").click()
    await expect(page.get_by_text("No A/B tests yet")).to_be_visible()
    await accessible(tab, "A/B tests, empty")

    await page.get_by_role("link", name="New A/B test").click()
    await page.get_by_label("Name", exact=True).first.fill("Headline")
    await page.locator("#field-variants\\.0\\.weight").fill("30")
    await page.locator("#field-variants\\.1\\.weight").fill("30")
    await page.locator("#field-variants\\.1\\.message").fill("{{firstName}} just grabbed {{product}}")
    await accessible(tab, "A/B test editor")
    await page.get_by_role("button", name="Create A/B test").click()
    await expect(page.locator(".form-error")).to_contain_text("sum to 100")
    await page.locator("#field-variants\\.0\\.weight").fill("70")
    await page.locator("#field-variants\\.1\\.message").fill("{{nope}}")
    await page.get_by_role("button", name="Create A/B test").click()
    await expect(page.locator("#error-variants\\.1\\.message")).to_be_visible()
    await page.locator("#field-variants\\.1\\.message").fill("{{firstName}} just grabbed {{product}}")
    await page.get_by_role("button", name="Create A/B test").click()
    await expect(page.locator("#test-status")).to_have_text("draft")
    test_id = page.url.rsplit("/", 1)[1]
    stored = await api_get(console_url, founder, f"/sites/{site['id']}/ab-tests/{test_id}")
    assert stored["notificationId"] == notification["id"]
    assert [(v["name"], v["isControl"], v["weight"], v["message"]) for v in stored["variants"]] == [
        ("Control", True, 70, None),
        ("Challenger", False, 30, "{{firstName}} just grabbed {{product}}"),
    ]
    await accessible(tab, "A/B test, draft")

    await page.get_by_role("button", name="Start the test").click()
    await expect(page.locator("#test-status")).to_have_text("running")
    await expect(page.locator("#results")).to_be_visible()
    control, challenger = (variant["id"] for variant in stored["variants"])
    await _exposures(console_url, site, notification["id"], control, 10)
    await _exposures(console_url, site, notification["id"], challenger, 45)
    await page.reload()
    await expect(page.locator("#srm-alert")).to_contain_text("Sample ratio mismatch")
    results = await api_get(console_url, founder, f"/sites/{site['id']}/ab-tests/{test_id}/results")
    assert results["sampleRatio"]["flagged"] is True
    rows = page.locator("#results tbody tr")
    for index, variant in enumerate(results["variants"]):
        cells = rows.nth(index).locator("td")
        await expect(cells.nth(1)).to_have_text(str(variant["exposures"]))
        await expect(cells.nth(2)).to_have_text(str(variant["clicks"]))
        ctr = variant["ctr"]
        await expect(cells.nth(4)).to_have_text(
            f"{ctr['rate'] * 100:.2f} % ({ctr['low'] * 100:.2f} to {ctr['high'] * 100:.2f} %)"
        )
    assert [variant["exposures"] for variant in results["variants"]] == [10, 45]
    await accessible(tab, "A/B test results")

    await page.get_by_role("button", name="Stop the test").click()
    await expect(page.locator("#test-status")).to_have_text("stopped")
    assert tab.script_problems() == []


async def test_readers_see_results_only_and_other_orgs_see_nothing(
    tab: Tab, console_url: str, client: httpx.AsyncClient, founder: Account, other_founder: Account
) -> None:
    site = await api_site(console_url, founder)
    notification = await api_post(
        console_url,
        founder,
        f"/sites/{site['id']}/notifications",
        {"name": "Buyers", "type": "recent_activity", "source": {"eventTypes": ["purchase"]}},
    )
    test = await api_post(
        console_url,
        founder,
        f"/sites/{site['id']}/ab-tests",
        {
            "name": "Copy",
            "notificationId": notification["id"],
            "variants": [{"name": "A", "isControl": True, "weight": 50}, {"name": "B", "weight": 50, "message": "Hi"}],
        },
    )
    base = f"/app/sites/{site['id']}/ab-tests"
    page_path = f"{base}/{test['id']}"
    analyst = await add_member(client, founder, "analyst")
    await log_in(tab.page, analyst, path=page_path)
    await expect(tab.page.locator("#test-status")).to_have_text("draft")
    await expect(tab.page.get_by_role("button", name="Start the test")).to_have_count(0)
    await expect(tab.page.get_by_role("button", name="Save")).to_have_count(0)
    await accessible(tab, "A/B test as analyst")
    async with console_client(console_url, analyst) as http:
        token = csrf_of((await http.get(base)).text)
        assert (await http.get(f"{base}/new")).status_code == 403
        for path in (f"{base}/new", page_path, f"{page_path}/start", f"{page_path}/stop"):
            assert (await http.post(path, data={"csrf_token": token, "name": "Mine"})).status_code == 403, path
    async with console_client(console_url, other_founder) as http:
        token = csrf_of((await http.get("/app/sites")).text)
        for path in (base, page_path, f"{base}/new"):
            assert (await http.get(path)).status_code == 404, path
        for path in (page_path, f"{page_path}/start", f"{page_path}/stop"):
            assert (await http.post(path, data={"csrf_token": token, "name": "Mine"})).status_code == 404, path
    kept = await api_get(console_url, founder, f"/sites/{site['id']}/ab-tests/{test['id']}")
    assert (kept["name"], kept["status"]) == ("Copy", "draft")
