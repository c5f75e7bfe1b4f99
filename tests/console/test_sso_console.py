"""Single sign-on in a browser: a founder sets SAML up on the settings page from the IdP's metadata URL, with a group
mapped to a role; a person then signs in with "Sign in with SSO" on the login page, through the loopback IdP's
auto-posting page, provisioned with that role; a bad metadata URL is refused on its field; every page passes axe."""

from __future__ import annotations

import uuid

import httpx
from playwright.async_api import Browser, expect

from northstar.core.db import Database
from northstar.demo.saml_idp import FakeSamlIdp, SamlPerson
from tests.accounts.test_saml import api, behaving, idp, member_role, site, user_of  # noqa: F401  (the fixtures)
from tests.console.accessibility import assert_accessible
from tests.console.conftest import log_in, open_tab
from tests.factories import signup, unique_email


async def test_a_founder_sets_up_sso_and_a_person_signs_in_through_it(
    browser: Browser,
    site: str,  # noqa: F811
    api: httpx.AsyncClient,  # noqa: F811
    idp: FakeSamlIdp,  # noqa: F811
    database: Database,
) -> None:
    founder = await signup(api)
    slug = (await api.get("/api/v1/organization", headers=founder.headers)).json()["data"]["slug"]
    admin_tab = await open_tab(browser, site)
    try:
        page = admin_tab.page
        await log_in(page, founder, path="/app/settings")
        await page.get_by_role("link", name="Set up single sign-on").click()
        await page.wait_for_url("**/app/settings/sso")
        await expect(page.locator("#sso-status")).to_contain_text("Not configured")
        await expect(page.locator("#sp-acs-url")).to_have_text(f"{site}/saml/{founder.org_id}/acs")
        await assert_accessible(page, context="single sign-on settings, not configured")

        await page.get_by_label("Metadata URL").fill(f"{idp.base_url}/nothing-here")
        await page.get_by_role("button", name="Save single sign-on").click()
        await expect(page.locator("#error-metadata_url")).to_contain_text("answered 404")
        await assert_accessible(page, context="single sign-on settings with an error")

        await page.get_by_label("Metadata URL").fill(idp.entity_id)
        await page.get_by_label("Group roles").fill("Engineering Leads = admin")
        await page.get_by_role("button", name="Save single sign-on").click()
        await page.wait_for_url("**/app/settings/sso?saved=1")
        await expect(page.locator("#sso-status")).to_contain_text(idp.entity_id)
        await expect(page.get_by_label("Group roles")).to_have_value("Engineering Leads = admin")
        await assert_accessible(page, context="single sign-on settings, configured")
        assert admin_tab.script_problems() == []
    finally:
        await admin_tab.context.close()

    idp.person = SamlPerson(f"{uuid.uuid4().hex}@corp.example", unique_email("sso"), "Ada", ["Engineering Leads"])
    person_tab = await open_tab(browser, site)
    try:
        page = person_tab.page
        await page.goto("/app/login?next=/app/account")
        await page.get_by_role("link", name="Sign in with SSO").click()
        await page.wait_for_url("**/app/login/sso**")
        await assert_accessible(page, context="sign in with SSO")
        await page.get_by_label("Organization identifier").fill("no-such-org")
        await page.get_by_role("button", name="Continue").click()
        await expect(page.locator("#error-organization")).to_contain_text("No organization with single sign-on")
        await page.get_by_label("Organization identifier").fill(slug)
        await page.get_by_role("button", name="Continue").click()
        await page.wait_for_url("**/app/account")
        await expect(page.get_by_text(f"E-mail: {idp.person.email}")).to_be_visible()
        assert person_tab.script_problems() == [], person_tab.problems
    finally:
        await person_tab.context.close()
    user_id = await user_of(database, founder.org_id, idp.person.name_id)
    assert user_id is not None and await member_role(database, founder.org_id, user_id) == "admin"
