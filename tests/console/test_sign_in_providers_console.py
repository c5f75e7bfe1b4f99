"""Signing in with a provider in a browser: "Sign in with Google (fake)" on the login page goes to the provider on
loopback and back, signed up and in; the connected account shows on its page; both pages pass axe."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from northstar.demo.oidc_provider import FakeOidcProvider
from tests.accounts.test_sign_in_providers import behaving, provider, site  # noqa: F401  (the fixtures)
from tests.console.accessibility import assert_accessible
from tests.console.conftest import open_tab


async def test_sign_in_with_the_provider_from_the_login_page(
    browser: Browser,
    site: str,  # noqa: F811
    provider: FakeOidcProvider,  # noqa: F811
) -> None:
    tab = await open_tab(browser, site)
    try:
        page = tab.page
        await page.goto("/app/login?next=/app/account")
        await assert_accessible(page, context="login with providers")
        await page.get_by_role("link", name="Sign in with Google (fake)").click()
        await page.wait_for_url("**/app/account")
        await expect(page.get_by_text(f"E-mail: {provider.person.email}")).to_be_visible()
        await page.get_by_role("link", name="Connected accounts").click()
        await page.wait_for_url("**/app/account/connected")
        connected = page.locator('[data-provider="fakegoogle"]')
        await expect(connected.locator(".badge")).to_have_text("connected")
        await expect(connected.get_by_label("Your password")).to_be_visible()  # the last way in
        await assert_accessible(page, context="connected accounts")
        assert tab.script_problems() == []
    finally:
        await tab.context.close()
