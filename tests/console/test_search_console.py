"""Search in the console: the header's box (``/`` to reach it, suggestions as you type, arrows and Enter, Escape)
and the results page (facets as filter links, highlights, paging, refused queries), in Chromium; what a role may
not read stays out of both."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import Browser, Page, expect

from tests.console.accessibility import assert_accessible
from tests.console.conftest import Tab, console_client, log_in, open_tab
from tests.console.screenshots import shot
from tests.factories import Account, add_member, create_project

XSS = "<img src=x onerror=\"document.title='pwned'\">"


async def project(client: httpx.AsyncClient, account: Account, name: str, description: str = "") -> str:
    made = await client.post(
        "/api/v1/projects", json={"name": name, "description": description}, headers=account.headers
    )
    assert made.status_code == 201, made.text
    return str(made.json()["data"]["id"])


async def team(client: httpx.AsyncClient, account: Account, name: str) -> str:
    made = await client.post("/api/v1/teams", json={"name": name}, headers=account.headers)
    assert made.status_code == 201, made.text
    return str(made.json()["data"]["id"])


async def type_in_box(page: Page, text: str) -> None:
    """Reach the box as a keyboard user does (``/`` from the page) and type, key by key."""
    await page.evaluate("document.activeElement?.blur()")  # the focus in the page, not in a field
    await page.keyboard.press("/")
    box = page.get_by_role("combobox", name="Search")
    await expect(box).to_be_focused()
    await box.press_sequentially(text, delay=30)


async def test_the_header_box_suggests_as_you_type_and_opens_with_the_keyboard(
    tab: Tab, client: httpx.AsyncClient, founder: Account
) -> None:
    rocket = await project(client, founder, "Quasar Rocket", "Launch plan for the orbital rocket")
    await project(client, founder, "Quasar Ledger", f"Books {XSS} of the quasar fund")
    await team(client, founder, "Quasar crew")
    page = tab.page
    await log_in(page, founder)

    box = page.get_by_role("combobox", name="Search")
    await expect(box).to_have_attribute("aria-expanded", "false")
    await type_in_box(page, "quas")  # a prefix
    listbox = page.get_by_role("listbox", name="Suggestions")
    await expect(listbox.get_by_role("option")).to_have_count(3)
    await expect(box).to_have_attribute("aria-expanded", "true")
    assert await box.get_attribute("aria-controls") == await listbox.get_attribute("id")
    await expect(listbox.get_by_role("group", name="Projects").get_by_role("option")).to_have_count(2)
    await expect(listbox.get_by_role("group", name="Teams").get_by_role("option")).to_have_count(1)
    await expect(listbox.locator("mark").first).to_have_text(re.compile("^quasar$", re.IGNORECASE))
    assert await page.title() != "pwned"

    options = listbox.get_by_role("option")
    ids = [await options.nth(index).get_attribute("id") for index in range(3)]
    await box.press("ArrowDown")
    await box.press("ArrowDown")
    await expect(box).to_have_attribute("aria-activedescendant", ids[1] or "")
    await expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    await box.press("ArrowUp")
    await expect(box).to_have_attribute("aria-activedescendant", ids[0] or "")
    await expect(options.nth(1)).to_have_attribute("aria-selected", "false")
    await box.press("ArrowUp")  # round to the last
    await expect(box).to_have_attribute("aria-activedescendant", ids[2] or "")
    await assert_accessible(page, context="suggestions open")
    await page.screenshot(path=shot("search-box-1440.png"))
    await box.press("Escape")
    await expect(box).to_have_attribute("aria-expanded", "false")
    await expect(listbox).to_be_hidden()
    assert await box.get_attribute("aria-activedescendant") is None

    await box.fill("")
    await box.press_sequentially("quasr rockt", delay=30)  # a typo in each word
    await expect(listbox.get_by_role("option")).to_have_count(1)
    await expect(listbox.get_by_role("option")).to_contain_text("Quasar Rocket")
    await box.press("ArrowDown")
    await box.press("Enter")
    await page.wait_for_url(f"**/app/projects/{rocket}")
    await expect(page.get_by_role("heading", name="Quasar Rocket")).to_be_visible()
    assert tab.script_problems() == []


async def test_see_all_results_filters_by_kind_and_pages(tab: Tab, client: httpx.AsyncClient, founder: Account) -> None:
    for number in range(1, 4):
        await project(client, founder, f"Nebula {number}", "A nebula survey")
    await team(client, founder, "Nebula watchers")
    page = tab.page
    await log_in(page, founder)

    await type_in_box(page, "nebu")
    await expect(page.get_by_role("listbox", name="Suggestions").get_by_role("option")).to_have_count(4)
    await page.get_by_role("link", name="See all results").click()
    await page.wait_for_url(re.compile(r"/app/search\?q=nebu$"))
    await expect(page.get_by_role("heading", name="4 results")).to_be_visible()
    facets = page.get_by_role("navigation", name="Kinds of results")
    await expect(facets.get_by_role("link")).to_have_text(
        [re.compile(r"All\s+4"), re.compile(r"Projects\s+3"), re.compile(r"Teams\s+1")]
    )
    await expect(facets.get_by_role("link", name=re.compile("^All"))).to_have_attribute("aria-current", "page")
    results = page.locator(".search-results > li")
    await expect(results).to_have_count(4)
    await expect(results.first.locator("mark").first).to_have_text("Nebula")
    await assert_accessible(page, context="results")
    await page.screenshot(path=shot("search-results-1440.png"), full_page=True)

    await facets.get_by_role("link", name=re.compile("^Teams")).click()
    await page.wait_for_url(re.compile(r"type=team"))
    await expect(results).to_have_count(1)
    await expect(results.get_by_role("link")).to_have_text("Nebula watchers")
    await expect(facets.get_by_role("link", name=re.compile("^Teams"))).to_have_attribute("aria-current", "page")
    await expect(
        facets.get_by_role("link", name=re.compile(r"Projects\s+3"))
    ).to_be_visible()  # counts before the filter

    await page.goto("/app/search?q=nebula&type=project&limit=2")
    await expect(results).to_have_count(2)
    pages = page.get_by_role("navigation", name="Pages")
    await expect(pages).to_contain_text(re.compile(r"1\W2 of 3"))
    await pages.get_by_role("link", name="Next").click()
    await expect(results).to_have_count(1)
    assert "type=project" in page.url and "q=nebula" in page.url

    await page.get_by_label("Search for").fill("watchers")  # the page's own form keeps the kind chosen
    await page.get_by_role("button", name="Search", exact=True).click()
    await expect(page.get_by_role("heading", name="No results of this kind")).to_be_visible()
    await page.goto("/app/search?q=nothingmatchesthis")
    await expect(page.get_by_role("heading", name="No results")).to_be_visible()
    await assert_accessible(page, context="no results")
    assert tab.script_problems() == []


async def test_an_investor_finds_only_the_projects_they_may_read(
    browser: Browser, console_url: str, client: httpx.AsyncClient, founder: Account
) -> None:
    await project(client, founder, "Pulsar secret")
    shared = await project(client, founder, "Pulsar shared")
    investor = await add_member(client, founder, "investor")
    tab = await open_tab(browser, console_url, width=390)  # and the box on a phone
    try:
        page = tab.page
        await log_in(page, investor)
        await type_in_box(page, "pulsar")
        popup = page.locator(".search-popup")
        await expect(popup).to_contain_text("Nothing you can see matches")
        await expect(page.get_by_role("combobox", name="Search")).to_have_attribute("aria-expanded", "false")
        await page.goto("/app/search?q=pulsar")
        await expect(page.get_by_role("heading", name="No results")).to_be_visible()
        assert "Pulsar" not in await page.locator("main").inner_text()

        granted = await client.put(
            f"/api/v1/projects/{shared}/members/{investor.user_id}", json={"role": "analyst"}, headers=founder.headers
        )
        assert granted.status_code in (200, 201), granted.text
        await page.goto("/app/search?q=pulsar")
        await expect(page.locator(".search-results > li")).to_have_count(1)
        await expect(page.locator(".search-results")).to_contain_text("Pulsar shared")
        assert "Pulsar secret" not in await page.content()
        await type_in_box(page, "puls")
        await expect(page.get_by_role("listbox", name="Suggestions").get_by_role("option")).to_have_text(
            [re.compile("Pulsar shared")]
        )
        await page.screenshot(path=shot("search-box-390.png"))
        assert tab.script_problems() == []
    finally:
        await tab.context.close()


async def test_refused_queries_are_shown_on_the_page_never_a_500(
    console_url: str, client: httpx.AsyncClient, founder: Account
) -> None:
    await create_project(client, founder, f"{XSS} Vortex")
    async with console_client(console_url, founder) as http:
        empty = await http.get("/app/search", params={"q": ""})
        assert empty.status_code == 200, empty.text
        assert "moves to the search box" in empty.text
        long = await http.get("/app/search", params={"q": "a" * 501})
        assert long.status_code == 422, long.text
        assert "longer than 500 characters" in long.text and 'aria-invalid="true"' in long.text
        nul = await http.get("/app/search", params={"q": "vor\x00tex"})  # refused at the edge, as every URL with one
        assert nul.status_code == 422 and "NUL" in nul.text, nul.text
        kind = await http.get("/app/search", params={"q": "vortex", "type": "nonsense"})
        assert kind.status_code == 422 and "Unknown type nonsense" in kind.text

        found = await http.get("/app/search", params={"q": "vortex"})
        assert found.status_code == 200, found.text
        assert "&lt;img src=x onerror=" in found.text and "<img src=x" not in found.text
        assert "<mark>Vortex</mark>" in found.text

        typing = await http.get("/app/search/suggest", params={"q": "type:proj"})  # half-typed, not an error
        assert typing.status_code == 200 and "Unknown type proj" in typing.text
        nul_typed = await http.get("/app/search/suggest", params={"q": "\x00"})
        assert nul_typed.status_code == 422 and "NUL" in nul_typed.text
        suggested = await http.get("/app/search/suggest", params={"q": "vort"})
        assert 'role="option"' in suggested.text and "<img src=x" not in suggested.text

    async with console_client(console_url) as anonymous:
        refused = await anonymous.get("/app/search/suggest", params={"q": "vortex"})
        assert refused.status_code == 307 and "Vortex" not in refused.text
