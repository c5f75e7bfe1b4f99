"""Visitor profiles and custom fields in a real browser: search, detail and erase of profiles; custom fields
created, changed, refused and deleted; markup in values is text; roles and other orgs."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from playwright.async_api import expect

from tests.console.conftest import Tab, accessible, console_client, csrf_of, log_in
from tests.console.test_socialproof import XSS, api_post, api_site, assert_inert
from tests.factories import Account, add_member


async def record(console_url: str, account: Account, site: dict[str, Any], *events: dict[str, Any]) -> None:
    """Backend events, through an API key scoped to ``events:create``."""
    async with httpx.AsyncClient(base_url=console_url, timeout=30) as http:
        key = await http.post(
            "/api/v1/api-keys", headers=account.headers, json={"name": "backend", "scopes": ["events:create"]}
        )
        assert key.status_code == 201, key.text
        response = await http.post(
            f"/api/v1/sites/{site['id']}/events",
            headers={"X-API-Key": key.json()["data"]["key"]},
            json={"events": [{"id": str(uuid.uuid4()), **event} for event in events]},
        )
    assert response.status_code == 202, response.text


async def test_profiles_are_searched_read_and_erased(tab: Tab, console_url: str, founder: Account) -> None:
    site = await api_site(console_url, founder)
    await api_post(console_url, founder, "/custom-fields", {"name": "Company", "key": "company", "type": "text"})
    await record(
        console_url,
        founder,
        site,
        {"type": "purchase", "visitorId": "buyer", "country": "DE", "custom": {"company": "ACME &amp; Co"}},
        {"type": "purchase", "visitorId": "buyer", "occurredAt": "2026-12-01T08:00:00Z"},
        {"type": "signup", "visitorId": "newcomer", "country": "FR"},
    )
    page = tab.page
    await log_in(page, founder, path=f"/app/sites/{site['id']}")
    await page.get_by_role("link", name="Visitor profiles").click()
    await expect(page.get_by_role("heading", name="Profiles (2)")).to_be_visible()
    await accessible(tab, "visitor profiles")

    await page.get_by_label("Visitors").select_option("returning")
    await page.get_by_role("button", name="Search").click()
    await expect(page.get_by_role("heading", name="Profiles (1)")).to_be_visible()
    rows = page.locator("tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("DE")
    await page.get_by_label("Country").fill("de")  # lower case: refused, and said why
    await page.get_by_role("button", name="Search").click()
    await expect(page.locator("#error-country")).to_contain_text("pattern")
    await accessible(tab, "visitor search refused")
    await page.get_by_label("Country").fill("DE")
    await page.get_by_role("button", name="Search").click()
    await page.locator("tbody tr a").first.click()

    await expect(page.get_by_role("heading", level=1)).to_contain_text("Visitor")
    await expect(page.locator("#behavior-score")).to_have_text(
        str((await _profile(console_url, founder, site, "buyer"))["behaviorScore"])
    )
    await expect(page.get_by_role("cell", name="ACME & Co")).to_be_visible()
    await accessible(tab, "visitor profile")
    await page.get_by_role("button", name="Erase this profile").click()
    await expect(page.get_by_role("status")).to_have_text("The profile was erased.")
    await expect(page.get_by_role("heading", name="Profiles (1)")).to_be_visible()
    assert await _profiles(console_url, founder, site, userId="buyer") == []
    assert tab.script_problems() == []


async def _profiles(console_url: str, account: Account, site: dict[str, Any], **params: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=console_url, timeout=30) as http:
        response = await http.get(f"/api/v1/sites/{site['id']}/visitors", headers=account.headers, params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


async def _profile(console_url: str, account: Account, site: dict[str, Any], user_id: str) -> dict[str, Any]:
    (found,) = await _profiles(console_url, account, site, userId=user_id)
    return found


async def test_custom_fields_are_created_changed_refused_and_deleted(
    tab: Tab, console_url: str, founder: Account
) -> None:
    page = tab.page
    await log_in(page, founder, path="/app/custom-fields")
    await expect(page.get_by_role("heading", name="No custom fields yet")).to_be_visible()
    await accessible(tab, "custom fields, none yet")

    await page.get_by_label("Name").fill("Plan")
    await page.get_by_label("Key").fill("Plan")  # upper case: refused
    await page.get_by_label("Type").select_option("enum")
    await page.get_by_label("Options").fill("free\npro")
    await page.get_by_role("button", name="Add field").click()
    await expect(page.locator("#error-key")).to_contain_text("pattern")
    await accessible(tab, "custom field refused")
    await page.get_by_label("Key").fill("plan")
    await page.get_by_label("Default").fill("gold")  # not an option: refused
    await page.get_by_role("button", name="Add field").click()
    await expect(page.locator(".form-error, .error").first).to_contain_text("must be one of free, pro")
    await page.get_by_label("Default").fill("free")
    await page.get_by_role("button", name="Add field").click()
    row = page.locator("tbody tr").first
    await expect(row).to_contain_text("enum: free, pro")
    await expect(row).to_contain_text("free")

    await page.get_by_label("Name").fill(XSS)
    await page.get_by_label("Key").fill("note")
    await page.get_by_role("button", name="Add field").click()
    await expect(page.locator("tbody tr")).to_have_count(2)
    await assert_inert(page)
    await accessible(tab, "custom fields")

    await page.get_by_role("link", name="Plan").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Plan")
    await page.get_by_label("Options").fill("free\npro\nteam")
    await page.get_by_label("Default").fill("team")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_have_text("Saved.")
    await expect(page.get_by_label("Default")).to_have_value("team")
    await page.get_by_label("Options").fill("free")  # the default would no longer be an option
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator(".form-error")).to_contain_text("must be one of free")
    await accessible(tab, "custom field change refused")
    await page.get_by_role("button", name="Delete this field").click()
    await expect(page.locator("tbody tr")).to_have_count(1)
    assert tab.script_problems() == []


async def test_readers_see_but_do_not_change_and_other_orgs_see_nothing(
    tab: Tab, console_url: str, client: httpx.AsyncClient, founder: Account, other_founder: Account
) -> None:
    site = await api_site(console_url, founder)
    field = await api_post(console_url, founder, "/custom-fields", {"name": "Plan", "key": "plan", "type": "text"})
    await record(console_url, founder, site, {"type": "signup", "visitorId": "someone"})
    visitor = (await _profile(console_url, founder, site, "someone"))["visitorId"]
    analyst = await add_member(client, founder, "analyst")

    await log_in(tab.page, analyst, path=f"/app/sites/{site['id']}/visitors/{visitor}")
    await expect(tab.page.get_by_role("button", name="Erase this profile")).to_have_count(0)
    await accessible(tab, "visitor profile as analyst")
    await tab.page.goto("/app/custom-fields")
    await expect(tab.page.get_by_role("heading", name="Add a field")).to_have_count(0)
    await tab.page.goto(f"/app/custom-fields/{field['id']}")
    await expect(tab.page.get_by_role("button", name="Save")).to_have_count(0)
    assert tab.script_problems() == []

    async with console_client(console_url, analyst) as http:
        token = csrf_of((await http.get("/app/custom-fields")).text)
        for path in (
            f"/app/sites/{site['id']}/visitors/{visitor}/erase",
            "/app/custom-fields",
            f"/app/custom-fields/{field['id']}",
            f"/app/custom-fields/{field['id']}/delete",
        ):
            refused = await http.post(path, data={"csrf_token": token, "name": "X", "key": "x", "type": "text"})
            assert refused.status_code == 403, path
    async with console_client(console_url, other_founder) as http:
        for path in (
            f"/app/sites/{site['id']}/visitors",
            f"/app/sites/{site['id']}/visitors/{visitor}",
            f"/app/custom-fields/{field['id']}",
        ):
            assert (await http.get(path)).status_code == 404, path
        token = csrf_of((await http.get("/app/custom-fields")).text)
        erase = await http.post(f"/app/sites/{site['id']}/visitors/{visitor}/erase", data={"csrf_token": token})
        assert erase.status_code == 404
        delete = await http.post(f"/app/custom-fields/{field['id']}/delete", data={"csrf_token": token})
        assert delete.status_code == 404
    assert (await _profile(console_url, founder, site, "someone"))["visitorId"] == visitor
