"""The console in a real browser: the app behind uvicorn, headless Chromium, and a signed-in page per role; the fakes
its pages reach (Stripe on loopback, a worker for the jobs they queue) and the helpers several pages' tests use."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from northstar.app import create_app
from northstar.demo.loopback import serving
from northstar.demo.stripe_account import add_months, generate, rates_body
from northstar.demo.stripe_api import FakeStripe
from northstar.settings import Settings
from tests.console.accessibility import assert_accessible
from tests.factories import Account
from tests.workers import reaching_loopback

STREAMS = 7  # Stripe's six lists and its events: the end of a Stripe sync's progress bar
PREVIEW = "#notification-preview div[data-northstar] .popup"  # the widget's popup, through its open shadow root


@pytest.fixture(scope="module")
async def console_url(settings: Settings) -> AsyncIterator[str]:
    """The console configured as the workers are: allowed to reach vendors faked on loopback over HTTP."""
    async with serving(create_app(reaching_loopback(settings))) as url:
        yield url


@pytest.fixture(scope="module")
async def stripe() -> AsyncIterator[tuple[FakeStripe, str]]:
    """A small Stripe account of the last six months behind the fake Stripe API, and its URL."""
    start = dt.datetime.fromtimestamp(add_months(int(time.time()), -6), dt.UTC)
    fake = FakeStripe(generate(customers=12, months=6, seed=11, start=start))
    async with serving(fake.app) as url:
        yield fake, url


async def set_fx_rates(client: httpx.AsyncClient, account: Account, fake: FakeStripe) -> None:
    """The rates of the fake account's currencies, which its MRR needs (it bills in three)."""
    response = await client.put(
        "/api/v1/metrics/fx-rates", headers=account.headers, json=rates_body(fake.account.fx_rates)
    )
    assert response.status_code == 200, response.text


async def wait_for_sync_end(page: Page) -> None:
    """The sync's progress bar has reached its end and the fragment came back without its polling trigger."""
    bar = page.locator("#sync-progress progress")
    await expect(bar).to_have_attribute("value", str(STREAMS), timeout=90_000)
    await expect(page.locator("#sync-progress")).not_to_have_attribute("hx-trigger", re.compile(".*"))


@dataclass
class Tab:
    """A browser context of its own (its own cookies) and its page, collecting CSP violations and script errors."""

    context: BrowserContext
    page: Page
    problems: list[str]

    def script_problems(self) -> list[str]:
        """Script errors and CSP violations: the browser also logs each form the server refused (422, or 409 for a
        taken name), which a test of a refused form expects."""
        refused = ("status of 422", "status of 409")
        return [problem for problem in self.problems if not any(status in problem for status in refused)]


async def open_tab(browser: Browser, base_url: str, *, width: int = 1440) -> Tab:
    context = await browser.new_context(base_url=base_url, viewport={"width": width, "height": 900})
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return Tab(context, page, problems)


@pytest.fixture
async def tab(browser: Browser, console_url: str) -> AsyncIterator[Tab]:
    opened = await open_tab(browser, console_url)
    yield opened
    await opened.context.close()


async def log_in(page: Page, account: Account, *, path: str = "/app/account", code: str | None = None) -> None:
    """Sign in through the login form, asking for ``path`` first (as a bookmark would); ``code`` answers the
    verification step of an account with MFA."""
    await page.goto(path)
    await page.get_by_label("E-mail").fill(account.email)
    await page.get_by_label("Password").fill(account.password)
    await page.get_by_role("button", name="Log in").click()
    if code is not None:
        await page.get_by_label("Verification code").fill(code)
        await page.get_by_role("button", name="Verify").click()
    await page.wait_for_url(f"**{path}")


@asynccontextmanager
async def console_client(base_url: str, account: Account | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client with a cookie jar, signed in through the login form when given an account."""
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=False, timeout=30) as http:
        if account is not None:
            page = await http.get("/app/login")
            response = await http.post(
                "/app/login",
                data={"email": account.email, "password": account.password, "csrf_token": csrf_of(page.text)},
            )
            assert response.status_code == 303, response.text
        yield http


def csrf_of(html: str) -> str:
    marker = 'name="csrf-token" content="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def leaving_url(response: httpx.Response) -> str:
    """Where the console's page for leaving to another site (``leave_for``) sends the browser."""
    assert response.status_code == 200 and 'http-equiv="refresh"' in response.text, response.text
    marker = 'content="0; url='
    start = response.text.index(marker) + len(marker)
    return html.unescape(response.text[start : response.text.index('"', start)])


async def api_data(client: httpx.AsyncClient, account: Account, path: str, **params: str) -> Any:
    """The ``data`` of a successful ``GET /api/v1{path}``: what a page's numbers are compared with."""
    response = await client.get(f"/api/v1{path}", headers=account.headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def chart_data(tab: Tab, source: str) -> dict[str, Any]:
    """The data a chart is drawn from: the JSON block with id ``source``."""
    data: dict[str, Any] = json.loads(await tab.page.locator(f"#{source}").text_content() or "{}")
    return data


def plotted(value: Any) -> Any:
    """What a chart plots of a value of the API: money as its minor units."""
    return value["amount"] if isinstance(value, dict) else value


async def drop_file(page: Page, name: str, text: str) -> None:
    """Drop a file of ``text`` named ``name`` on the upload page's drop zone, as a drag and drop from the desktop."""
    transfer = await page.evaluate_handle(
        """([name, text]) => {
            const data = new DataTransfer();
            data.items.add(new File([text], name, {type: 'text/csv'}));
            return data;
        }""",
        [name, text],
    )
    await page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})


async def accessible(tab: Tab, context: str) -> None:
    """axe on a page that may show the social proof widget, once the page itself has shown no problem: axe's contrast
    check sets inline styles inside the widget's shadow root, which the CSP refuses (and reports); those reports are
    axe's, not the page's."""
    assert tab.script_problems() == [], context
    await assert_accessible(tab.page, context=context)
    tab.problems[:] = [problem for problem in tab.problems if not problem.startswith("Applying inline style")]
