"""The console in a real browser: the app behind uvicorn, headless Chromium, and a signed-in page per role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page

from northstar.app import create_app
from northstar.demo.loopback import serving
from northstar.settings import Settings
from tests.factories import Account


@pytest.fixture(scope="module")
async def console_url(settings: Settings) -> AsyncIterator[str]:
    async with serving(create_app(settings)) as url:
        yield url


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


async def log_in(page: Page, account: Account, *, path: str = "/app/account") -> None:
    """Sign in through the login form, asking for ``path`` first (as a bookmark would)."""
    await page.goto(path)
    await page.get_by_label("E-mail").fill(account.email)
    await page.get_by_label("Password").fill(account.password)
    await page.get_by_role("button", name="Log in").click()
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
