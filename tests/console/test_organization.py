"""The organization pages: members and invitations, API keys, the audit log, projects, teams and settings."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.console.accessibility import assert_accessible
from tests.console.conftest import Tab, console_client, csrf_of, log_in, open_tab
from tests.console.screenshots import shot
from tests.factories import Account, add_member, create_project, unique_email

PAGES = ("members", "api-keys", "audit", "projects", "teams", "settings")
XSS = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'


async def test_founder_invites_and_changes_a_role(tab: Tab, client: httpx.AsyncClient, founder: Account) -> None:
    member = await add_member(client, founder, "member")
    await log_in(tab.page, founder, path="/app/members")
    await expect(tab.page.get_by_role("heading", name="Members", exact=True)).to_be_visible()
    invited = unique_email("invited")
    await tab.page.get_by_label("E-mail").fill(invited)
    await tab.page.locator("#field-role").select_option("analyst")
    await tab.page.get_by_role("button", name="Invite").click()
    await expect(tab.page.get_by_text(f"{invited} is invited as analyst")).to_be_visible()
    link = await tab.page.locator("#invite-link").text_content()
    assert link and "/invitations/accept?token=" in link
    listed = await client.get("/api/v1/invitations", headers=founder.headers)
    assert invited in [row["email"] for row in listed.json()["data"]]
    await expect(tab.page.get_by_role("cell", name=invited, exact=True)).to_be_visible()

    row = tab.page.locator(f'tr[data-member="{member.email}"]')
    await row.get_by_role("combobox", name=f"Role of {member.email}").select_option("admin")
    await row.get_by_role("button", name="Change role").click()
    await expect(tab.page.get_by_text(f"{member.email} is now admin.")).to_be_visible()
    members = (await client.get("/api/v1/members", headers=founder.headers)).json()["data"]
    assert {m["email"]: m["role"] for m in members}[member.email] == "admin"
    await assert_accessible(tab.page, context="members")

    await tab.page.get_by_role("button", name=f"Revoke invitation of {invited}").click()
    await expect(tab.page.get_by_role("cell", name=invited, exact=True)).to_have_count(0)
    assert tab.problems == []


async def test_the_service_refusal_is_shown_and_founders_stay_protected(
    console_url: str, client: httpx.AsyncClient, founder: Account
) -> None:
    admin = await add_member(client, founder, "admin")
    async with console_client(console_url, admin) as http:
        token = csrf_of((await http.get("/app/members")).text)
        demoted = await http.post(f"/app/members/{founder.user_id}/role", data={"role": "member", "csrf_token": token})
        removed = await http.post(f"/app/members/{founder.user_id}/remove", data={"csrf_token": token})
        promoted = await http.post(f"/app/members/{admin.user_id}/role", data={"role": "founder", "csrf_token": token})
    for answer in (demoted, removed, promoted):
        assert answer.status_code == 403, answer.text
        assert 'class="form-error" role="alert"' in answer.text
    members = (await client.get("/api/v1/members", headers=founder.headers)).json()["data"]
    assert {m["email"]: m["role"] for m in members}[founder.email] == "founder"


async def test_an_api_key_secret_is_shown_once_works_and_stops_when_revoked(
    tab: Tab, client: httpx.AsyncClient, founder: Account
) -> None:
    await log_in(tab.page, founder, path="/app/api-keys")
    await expect(tab.page.get_by_text("No API keys yet")).to_be_visible()
    await tab.page.get_by_label("Name", exact=True).fill("Deploy bot")
    await tab.page.locator("#field-role").select_option("analyst")
    await tab.page.get_by_label("Scopes (optional)").fill("projects:read, members:read")
    await tab.page.get_by_role("button", name="Create key").click()
    secret = await tab.page.locator("#new-key").input_value()
    assert secret
    await expect(tab.page.locator('button[data-copy="#new-key"]')).to_be_visible()
    await assert_accessible(tab.page, context="api key created")

    await tab.page.goto("/app/api-keys")
    assert secret not in await tab.page.content()
    await expect(tab.page.locator("#new-key")).to_have_count(0)
    listed = (await client.get("/api/v1/api-keys", headers=founder.headers)).json()["data"]
    assert [(k["name"], k["role"], k["scopes"]) for k in listed] == [
        ("Deploy bot", "analyst", ["members:read", "projects:read"])
    ]

    assert (await client.get("/api/v1/projects", headers={"X-API-Key": secret})).status_code == 200
    assert (await client.get("/api/v1/projects", headers={"Authorization": f"Bearer {secret}"})).status_code == 200
    assert (await client.get("/api/v1/api-keys", headers={"X-API-Key": secret})).status_code == 403  # its scopes

    await tab.page.get_by_role("button", name="Revoke Deploy bot").click()
    await expect(tab.page.get_by_text("revoked")).to_be_visible()
    assert (await client.get("/api/v1/projects", headers={"X-API-Key": secret})).status_code == 401
    assert tab.problems == []


async def test_rotating_shows_the_new_secret_once(tab: Tab, client: httpx.AsyncClient, founder: Account) -> None:
    created = await client.post("/api/v1/api-keys", json={"name": "Rotated"}, headers=founder.headers)
    old = created.json()["data"]["key"]
    await log_in(tab.page, founder, path="/app/api-keys")
    await tab.page.get_by_role("button", name="Rotate Rotated").click()
    await expect(tab.page.get_by_role("heading", name="New secret for Rotated")).to_be_visible()
    new = await tab.page.locator("#new-key").input_value()
    assert new and new != old
    assert (await client.get("/api/v1/projects", headers={"X-API-Key": new})).status_code == 200


async def test_the_audit_log_filters_by_action_and_shows_the_chain(
    tab: Tab, client: httpx.AsyncClient, founder: Account
) -> None:
    await create_project(client, founder, "Audited one")
    await create_project(client, founder, "Audited two")
    await log_in(tab.page, founder, path="/app/audit")
    await expect(tab.page.locator("#chain-state")).to_contain_text("Verified")
    assert re.fullmatch(r"[0-9a-f]{64}", (await tab.page.locator("#head-hash").text_content()) or "")
    await tab.page.get_by_label("Action starts with").fill("projects.create")
    await tab.page.get_by_role("button", name="Filter").click()
    await expect(tab.page).to_have_url(re.compile(r"action=projects\.create"))
    cells = tab.page.locator("tbody tr td:nth-child(3)")
    await expect(cells).to_have_count(2)
    assert set(await cells.all_text_contents()) == {"projects.create"}
    api = await client.get("/api/v1/audit", params={"action": "projects.create"}, headers=founder.headers)
    assert [str(e["seq"]) for e in api.json()["data"]] == await tab.page.locator(
        "tbody tr td:nth-child(1)"
    ).all_text_contents()
    await assert_accessible(tab.page, context="audit")
    assert tab.problems == []

    await tab.page.goto("/app/audit?from=yesterday")  # the API's validation, shown beside the field
    await expect(tab.page.locator("#error-from")).to_be_visible()
    assert tab.script_problems() == []


async def test_projects_teams_and_settings_with_inert_names(
    tab: Tab, client: httpx.AsyncClient, founder: Account
) -> None:
    member = await add_member(client, founder, "member")
    await log_in(tab.page, founder, path="/app/projects")
    await tab.page.get_by_label("Name", exact=True).fill(XSS)
    await tab.page.get_by_role("button", name="Create project").click()
    await expect(tab.page.get_by_role("heading", name=XSS)).to_be_visible()
    project_id = tab.page.url.rsplit("/", 1)[1]
    await tab.page.get_by_label("Member").select_option(str(member.user_id))
    await tab.page.get_by_label("Role", exact=True).select_option("admin")
    await tab.page.get_by_role("button", name="Grant").click()
    await expect(tab.page.get_by_role("cell", name="admin")).to_be_visible()
    grants = await client.get(f"/api/v1/projects/{project_id}/members", headers=founder.headers)
    assert [(g["userId"], g["role"]) for g in grants.json()["data"]] == [(str(member.user_id), "admin")]

    await tab.page.goto("/app/teams")
    await tab.page.get_by_label("Name", exact=True).fill(XSS)
    await tab.page.get_by_label("Project").select_option(project_id)
    await tab.page.get_by_role("button", name="Create team").click()
    await expect(tab.page.get_by_role("heading", name=XSS)).to_be_visible()
    await tab.page.goto("/app/teams")
    await expect(tab.page.get_by_role("link", name=XSS)).to_be_visible()
    assert await tab.page.locator("main img, main script").count() == 0
    assert "pwned" not in await tab.page.title()

    await tab.page.goto("/app/settings")
    await tab.page.get_by_label("Name", exact=True).fill("Renamed Org")
    await tab.page.get_by_role("button", name="Save").click()
    await expect(tab.page.get_by_text("The organization was saved.")).to_be_visible()
    org = (await client.get("/api/v1/organization", headers=founder.headers)).json()["data"]
    assert org["name"] == "Renamed Org"
    assert tab.problems == []


async def _team(client: httpx.AsyncClient, founder: Account, name: str, project_id: object) -> dict[str, object]:
    created = await client.post("/api/v1/teams", json={"name": name, "projectId": project_id}, headers=founder.headers)
    assert created.status_code == 201, created.text
    return dict(created.json()["data"])


@pytest.mark.parametrize("kind", ["project", "team"])
async def test_a_project_or_team_is_renamed_and_deleted_once_its_name_is_typed(
    tab: Tab, client: httpx.AsyncClient, founder: Account, kind: str
) -> None:
    project = await create_project(client, founder, "Website")
    team = await _team(client, founder, "Growth", project["id"])
    subject, other = (project, team) if kind == "project" else (team, project)
    api = f"/api/v1/{kind}s/{subject['id']}"
    page = tab.page
    await log_in(page, founder, path=f"/app/{kind}s/{subject['id']}")

    await page.get_by_label("Name", exact=True).fill("   ")
    async with page.expect_response(lambda response: response.request.method == "POST") as refused:
        await page.get_by_role("button", name="Save").click()
    assert (await refused.value).status == 422
    await expect(page.locator("#error-name")).to_contain_text("visible character")
    await assert_accessible(page, context=f"{kind} with a field error")

    await page.get_by_label("Name", exact=True).fill(XSS)
    await page.get_by_label("Description").fill(XSS)
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_text(f"The {kind} was saved.")).to_be_visible()
    await expect(page.get_by_role("heading", level=1)).to_have_text(XSS)
    assert await page.locator("main img, main script").count() == 0
    assert await page.evaluate("document.title") != "pwned"
    stored = (await client.get(api, headers=founder.headers)).json()["data"]
    assert (stored["name"], stored["description"]) == (XSS, XSS)
    await assert_accessible(page, context=f"{kind} renamed")

    confirm = page.get_by_label(f"Type the {kind}'s name to confirm")
    await confirm.fill(str(subject["name"]))  # its old name
    async with page.expect_response(lambda response: response.request.method == "POST") as refused:
        await page.get_by_role("button", name=f"Delete {kind}").click()
    assert (await refused.value).status == 422
    await expect(page.locator("#error-confirm")).to_contain_text("name exactly")
    assert (await client.get(api, headers=founder.headers)).status_code == 200
    await assert_accessible(page, context=f"{kind} delete refused")

    await page.get_by_label(f"Type the {kind}'s name to confirm").fill(XSS)
    await page.get_by_role("button", name=f"Delete {kind}").click()
    await page.wait_for_url(f"**/app/{kind}s")
    await expect(page.get_by_role("link", name=XSS)).to_have_count(0)
    assert (await client.get(api, headers=founder.headers)).status_code == 404
    # a project's teams go with it; a team's project stays
    other_api = f"/api/v1/{'team' if kind == 'project' else 'project'}s/{other['id']}"
    assert (await client.get(other_api, headers=founder.headers)).status_code == (404 if kind == "project" else 200)
    assert tab.script_problems() == []


async def test_readers_see_no_rename_or_delete_and_are_refused(
    console_url: str, client: httpx.AsyncClient, founder: Account
) -> None:
    project = await create_project(client, founder, "Website")
    team = await _team(client, founder, "Growth", project["id"])
    analyst = await add_member(client, founder, "analyst")
    member = await add_member(client, founder, "member")
    own = await create_project(client, member, "Mine")  # a member may change the projects they created
    for account in (analyst, member):
        async with console_client(console_url, account) as http:
            for kind, subject in (("project", project), ("team", team)):
                base = f"/app/{kind}s/{subject['id']}"
                shown = await http.get(base)
                assert shown.status_code == 200, (account.role, kind)
                assert f'action="{base}"' not in shown.text and f'action="{base}/delete"' not in shown.text
                token = csrf_of(shown.text)
                renamed = await http.post(base, data={"name": "Taken over", "csrf_token": token})
                deleted = await http.post(f"{base}/delete", data={"confirm": subject["name"], "csrf_token": token})
                assert (renamed.status_code, deleted.status_code) == (403, 403), (account.role, kind)
            theirs = (await http.get(f"/app/projects/{own['id']}")).text
            assert (f'action="/app/projects/{own["id"]}/delete"' in theirs) == (account is member), account.role
    for path, name in ((f"projects/{project['id']}", "Website"), (f"teams/{team['id']}", "Growth")):
        assert (await client.get(f"/api/v1/{path}", headers=founder.headers)).json()["data"]["name"] == name, path


@pytest.mark.parametrize("role", ["member", "analyst", "investor"])
async def test_other_roles_see_no_admin_links_and_are_refused(
    console_url: str, client: httpx.AsyncClient, founder: Account, role: str
) -> None:
    account = await add_member(client, founder, role)
    key = (await client.post("/api/v1/api-keys", json={"name": "k"}, headers=founder.headers)).json()["data"]
    async with console_client(console_url, account) as http:
        home = await http.get("/app/settings")
        assert home.status_code == 200
        token = csrf_of(home.text)
        for path in ("/app/api-keys", "/app/audit"):
            assert f'href="{path}"' not in home.text
            assert (await http.get(path)).status_code == 403
        assert "Only founders and admins" in home.text
        posts = {
            f"/app/members/{founder.user_id}/role": {"role": "member"},
            f"/app/members/{founder.user_id}/remove": {},
            "/app/invitations": {"email": unique_email(), "role": "member"},
            "/app/api-keys": {"name": "mine"},
            f"/app/api-keys/{key['id']}/revoke": {},
            f"/app/api-keys/{key['id']}/rotate": {},
            "/app/settings": {"name": "Taken over"},
            "/app/teams": {"name": "Mine"},
        }
        for path, data in posts.items():
            answer = await http.post(path, data={**data, "csrf_token": token})
            assert answer.status_code == 403, (path, answer.status_code)
    listed = (await client.get("/api/v1/api-keys", headers=founder.headers)).json()["data"]
    assert [k["revokedAt"] for k in listed] == [None]


async def test_another_orgs_ids_are_not_found(
    console_url: str, client: httpx.AsyncClient, founder: Account, other_founder: Account
) -> None:
    other_member = await add_member(client, other_founder, "member")
    other_key = (await client.post("/api/v1/api-keys", json={"name": "k"}, headers=other_founder.headers)).json()
    other_project = await create_project(client, other_founder)
    other_team = (await client.post("/api/v1/teams", json={"name": "T"}, headers=other_founder.headers)).json()["data"]
    async with console_client(console_url, founder) as http:
        token = csrf_of((await http.get("/app/members")).text)
        posts = {
            f"/app/members/{other_member.user_id}/role": {"role": "analyst"},
            f"/app/members/{other_member.user_id}/remove": {},
            f"/app/api-keys/{other_key['data']['id']}/revoke": {},
            f"/app/api-keys/{other_key['data']['id']}/rotate": {},
            f"/app/projects/{other_project['id']}/members": {"user_id": str(founder.user_id), "role": "member"},
            f"/app/teams/{other_team['id']}/members": {"user_id": str(founder.user_id), "role": "member"},
            f"/app/projects/{other_project['id']}": {"name": "Mine"},
            f"/app/projects/{other_project['id']}/delete": {"confirm": other_project["name"]},
            f"/app/teams/{other_team['id']}": {"name": "Mine"},
            f"/app/teams/{other_team['id']}/delete": {"confirm": other_team["name"]},
            f"/app/invitations/{uuid.uuid4()}/revoke": {},
        }
        for path, data in posts.items():
            answer = await http.post(path, data={**data, "csrf_token": token})
            assert answer.status_code == 404, (path, answer.status_code)
        for path in (f"/app/projects/{other_project['id']}", f"/app/teams/{other_team['id']}", "/app/projects/nope"):
            assert (await http.get(path)).status_code == 404, path
    members = (await client.get("/api/v1/members", headers=other_founder.headers)).json()["data"]
    assert {m["email"]: m["role"] for m in members}[other_member.email] == "member"
    for path, name in ((f"projects/{other_project['id']}", other_project["name"]), (f"teams/{other_team['id']}", "T")):
        kept = await client.get(f"/api/v1/{path}", headers=other_founder.headers)
        assert kept.json()["data"]["name"] == name, path


async def test_every_page_is_accessible_at_both_widths(
    browser: Browser, console_url: str, client: httpx.AsyncClient, founder: Account
) -> None:
    await add_member(client, founder, "analyst")
    project = await create_project(client, founder, "Website")
    await client.post("/api/v1/teams", json={"name": "Growth", "projectId": project["id"]}, headers=founder.headers)
    await client.post("/api/v1/api-keys", json={"name": "CI", "role": "analyst"}, headers=founder.headers)
    for width in (1440, 390):
        tab = await open_tab(browser, console_url, width=width)
        try:
            await log_in(tab.page, founder, path="/app/members")
            for page in PAGES:
                await tab.page.goto(f"/app/{page}")
                await expect(tab.page.locator("h1")).to_have_count(1)
                await assert_accessible(tab.page, context=f"{page} at {width}")
                scroll = await tab.page.evaluate("document.documentElement.scrollWidth")
                assert scroll <= width, (page, width, scroll)
                await tab.page.screenshot(path=shot(f"organization-{page}-{width}.png"), full_page=True)
            await tab.page.goto(f"/app/projects/{project['id']}")
            await assert_accessible(tab.page, context=f"project at {width}")
            assert tab.problems == []
        finally:
            await tab.context.close()
