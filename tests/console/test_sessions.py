"""Signing in and out of the console: cookies, MFA, renewal, CSRF, CSP, the org switcher, invitations."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import expect

from northstar.app import create_app
from northstar.settings import Settings
from tests.console.accessibility import assert_accessible
from tests.console.conftest import Tab, console_client, csrf_of, log_in
from tests.factories import PASSWORD, Account, add_member, enable_mfa, signup, unique_email


async def test_a_bookmark_leads_through_login_and_back_with_safe_cookies(tab: Tab, founder: Account) -> None:
    await tab.page.goto("/app/account")
    await expect(tab.page).to_have_url(re.compile(r"/app/login\?next=/app/account$"))
    await assert_accessible(tab.page, context="login")
    await log_in(tab.page, founder)
    await expect(tab.page.get_by_role("heading", name="Your account")).to_be_visible()
    await expect(tab.page.locator("#org-switch")).to_be_visible()
    cookies = {cookie["name"]: cookie for cookie in await tab.context.cookies()}
    for name in ("ns_access", "ns_refresh", "ns_csrf"):
        assert cookies[name]["httpOnly"] is True
        assert cookies[name]["sameSite"] == "Lax"
    assert cookies["ns_access"]["path"] == "/app"
    assert cookies["ns_refresh"]["path"] == "/app/session"  # sent to renewal and logout only
    await assert_accessible(tab.page, context="account")
    assert tab.problems == []


async def test_session_cookies_are_secure_outside_local_runs(settings: Settings, client: httpx.AsyncClient) -> None:
    account = await signup(client)
    production = create_app(settings.model_copy(update={"environment": "production"}))
    async with production.router.lifespan_context(production):
        transport = httpx.ASGITransport(app=production)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
            page = await http.get("/app/login")
            login = await http.post(
                "/app/login",
                data={"email": account.email, "password": account.password, "csrf_token": csrf_of(page.text)},
            )
    assert login.status_code == 303
    set_cookies = login.headers.get_list("set-cookie")
    assert {cookie.split("=")[0] for cookie in set_cookies} >= {"ns_access", "ns_refresh", "ns_csrf"}
    for cookie in set_cookies:
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie


async def test_every_page_has_a_nonce_policy_and_no_framing(console_url: str, founder: Account) -> None:
    async with console_client(console_url, founder) as http:
        for path in ("/app/login", "/app/signup", "/app/account", "/app/no-such-page"):
            response = await http.get(path)
            policy = response.headers["content-security-policy"]
            nonce = re.search(r"'nonce-([\w-]+)'", policy)
            assert nonce, (path, policy)
            assert "frame-ancestors 'none'" in policy and "unsafe-eval" not in policy and "unsafe-inline" not in policy
            assert re.search(r"<script(?![^>]*\bsrc=)", response.text) is None, path  # no inline script at all
            for tag in re.findall(r"<(?:script|link)\b[^>]*(?:src|href)=\"/[^>]*>", response.text):
                assert 'integrity="sha384-' in tag, tag
        again = await http.get("/app/account")
        assert again.headers["content-security-policy"] != response.headers["content-security-policy"]


async def test_state_changes_need_the_csrf_token_of_the_browser(console_url: str, founder: Account) -> None:
    async with console_client(console_url, founder) as http:
        token = csrf_of((await http.get("/app/account")).text)
        missing = await http.post("/app/account/profile", data={"name": "Mallory"})
        wrong = await http.post("/app/account/profile", data={"name": "Mallory", "csrf_token": "0" * 64})
        as_header = await http.post("/app/account/profile", data={"name": "Mallory"}, headers={"X-CSRF-Token": "x"})
        assert (missing.status_code, wrong.status_code, as_header.status_code) == (403, 403, 403)
        assert "did not come from this console" in missing.text
        async with console_client(console_url) as other:  # a token minted for another browser is worth nothing here
            foreign = csrf_of((await other.get("/app/login")).text)
        assert (await http.post("/app/account/profile", data={"name": "M", "csrf_token": foreign})).status_code == 403
        saved = await http.post("/app/account/profile", data={"name": "Fiona", "csrf_token": token})
        assert saved.status_code == 200 and "Your name was saved" in saved.text
        by_header = await http.post("/app/account/profile", data={"name": "Fi"}, headers={"X-CSRF-Token": token})
        assert by_header.status_code == 200


async def test_a_login_form_from_before_the_session_is_not_accepted_after_it(
    console_url: str, founder: Account
) -> None:
    async with console_client(console_url) as http:
        before = csrf_of((await http.get("/app/login")).text)
        signed_in = await http.post(
            "/app/login", data={"email": founder.email, "password": founder.password, "csrf_token": before}
        )
        assert signed_in.status_code == 303
        stale = await http.post("/app/account/profile", data={"name": "X", "csrf_token": before})
        assert stale.status_code == 403


async def test_wrong_password_is_said_in_the_form(tab: Tab, founder: Account) -> None:
    await tab.page.goto("/app/login")
    await tab.page.get_by_label("E-mail").fill(founder.email)
    await tab.page.get_by_label("Password").fill("not-the-password-at-all")
    await tab.page.get_by_role("button", name="Log in").click()
    await expect(tab.page.get_by_role("alert").filter(has_text="Invalid")).to_be_visible()
    await expect(tab.page.get_by_label("E-mail")).to_have_value(founder.email)


async def test_login_with_mfa(tab: Tab, client: httpx.AsyncClient, founder: Account) -> None:
    totp = await enable_mfa(client, founder)
    await tab.page.goto("/app/login?next=/app/account")
    await tab.page.get_by_label("E-mail").fill(founder.email)
    await tab.page.get_by_label("Password").fill(founder.password)
    await tab.page.get_by_role("button", name="Log in").click()
    await expect(tab.page.get_by_role("heading", name="Enter your verification code")).to_be_visible()
    await assert_accessible(tab.page, context="mfa")
    await tab.page.get_by_label("Verification code").fill("000000" if totp.now() != "000000" else "111111")
    await tab.page.get_by_role("button", name="Verify").click()
    await expect(tab.page.get_by_role("alert").filter(has_text="Invalid verification code")).to_be_visible()
    await tab.page.get_by_label("Verification code").fill(totp.now())
    await tab.page.get_by_role("button", name="Verify").click()
    await expect(tab.page).to_have_url(re.compile(r"/app/account$"))
    await expect(tab.page.get_by_text("Signing in asks for a code")).to_be_visible()


async def test_an_expired_access_cookie_is_renewed_without_a_login(tab: Tab, founder: Account) -> None:
    await log_in(tab.page, founder)
    await tab.context.clear_cookies(name="ns_access")
    await tab.page.goto("/app/account")
    await expect(tab.page).to_have_url(re.compile(r"/app/account$"))
    await expect(tab.page.get_by_role("heading", name="Your account")).to_be_visible()
    # A form posted after expiry is carried through the renewal with its body (307) and still applies.
    await tab.context.clear_cookies(name="ns_access")
    await tab.page.get_by_label("Name", exact=True).fill("Renewed Name")
    await tab.page.get_by_role("button", name="Save").click()
    await expect(tab.page.get_by_text("Your name was saved")).to_be_visible()
    await expect(tab.page.get_by_label("Name", exact=True)).to_have_value("Renewed Name")


async def test_logout_ends_the_session_everywhere_it_was_used(tab: Tab, founder: Account) -> None:
    await log_in(tab.page, founder)
    stolen = {cookie["name"]: cookie["value"] for cookie in await tab.context.cookies()}
    await tab.page.get_by_role("button", name="Log out").click()
    await expect(tab.page).to_have_url(re.compile(r"/app/login$"))
    await tab.page.goto("/app/account")
    await expect(tab.page).to_have_url(re.compile(r"/app/login"))
    async with httpx.AsyncClient(base_url=tab.page.url.split("/app")[0], cookies=stolen) as http:
        replay = await http.get("/app/account")
        assert replay.status_code == 307  # the access token is refused; renewal with the refresh token too:
        renewal = await http.get(replay.headers["location"])
        assert renewal.headers["location"].startswith("/app/login")


async def test_after_login_only_console_paths_are_followed(console_url: str, founder: Account) -> None:
    async with console_client(console_url) as http:
        for target in ("//evil.example/app", "https://evil.example/app/", "/api/v1/me", "/app\\@evil.example"):
            page = await http.get("/app/login", params={"next": target})
            response = await http.post(
                "/app/login",
                params={"next": target},
                data={"email": founder.email, "password": founder.password, "csrf_token": csrf_of(page.text)},
            )
            assert response.headers["location"] == "/app/", target


async def test_the_org_switcher_moves_the_session_to_another_org(
    tab: Tab, client: httpx.AsyncClient, founder: Account
) -> None:
    second = await client.post("/api/v1/organizations", json={"name": "Second Venture"}, headers=founder.headers)
    assert second.status_code == 201, second.text
    await log_in(tab.page, founder)
    await tab.page.get_by_label("Organization").select_option(label="Second Venture (founder)")
    await tab.page.wait_for_url("**/app/")
    await tab.page.goto("/app/account")
    await expect(tab.page.get_by_label("Organization")).to_have_value(second.json()["data"]["id"])


async def test_an_invitation_link_signs_a_new_user_up_into_that_org(
    tab: Tab, client: httpx.AsyncClient, founder: Account
) -> None:
    email = unique_email("invitee")
    invitation = await client.post(
        "/api/v1/invitations", json={"email": email, "role": "analyst"}, headers=founder.headers
    )
    accept_url = invitation.json()["data"]["acceptUrl"]
    token = accept_url.split("token=")[1]
    await tab.page.goto(f"/app/invitations/accept?token={token}")
    await expect(tab.page.get_by_text(f"{email} is invited to join")).to_be_visible()
    await assert_accessible(tab.page, context="invitation")
    await tab.page.get_by_role("link", name="I am new: sign up").click()
    await expect(tab.page.get_by_label("E-mail")).to_have_value(email)
    await tab.page.get_by_label("Your name").fill("Ana Lyst")
    await tab.page.get_by_label("Password").fill(PASSWORD)
    await tab.page.get_by_role("button", name="Create account").click()
    await tab.page.goto("/app/account")
    await expect(tab.page.get_by_label("Organization")).to_contain_text("(analyst)")


async def test_an_existing_user_accepts_an_invitation_signed_in(
    tab: Tab, client: httpx.AsyncClient, founder: Account
) -> None:
    other = await signup(client)
    invitation = await client.post(
        "/api/v1/invitations", json={"email": other.email, "role": "member"}, headers=founder.headers
    )
    token = invitation.json()["data"]["acceptUrl"].split("token=")[1]
    await log_in(tab.page, other)
    await tab.page.goto(f"/app/invitations/accept?token={token}")
    await tab.page.get_by_role("button", name=re.compile("Accept and join")).click()
    await tab.page.goto("/app/account")
    await expect(tab.page.get_by_label("Organization")).to_have_value(str(founder.org_id))


async def test_names_render_as_text_not_markup(tab: Tab, client: httpx.AsyncClient, founder: Account) -> None:
    payload = '<img src=x onerror="document.title=1">"><script>document.title=2</script>'
    renamed = await client.patch("/api/v1/users/me", json={"name": payload}, headers=founder.headers)
    assert renamed.status_code == 200, renamed.text
    await log_in(tab.page, founder)
    await expect(tab.page.get_by_role("link", name=payload)).to_be_visible()
    assert await tab.page.locator("main img, header img").count() == 0
    assert await tab.page.title() == "Your account · Northstar"


async def test_a_member_of_another_org_cannot_sign_the_console_into_it(
    console_url: str, client: httpx.AsyncClient, founder: Account, other_founder: Account
) -> None:
    member = await add_member(client, founder, "member")
    async with console_client(console_url, member) as http:
        token = csrf_of((await http.get("/app/account")).text)
        response = await http.post("/app/session/org", data={"org_id": str(other_founder.org_id), "csrf_token": token})
        assert response.status_code in (401, 404)
        assert "not a member" in response.text
