"""Members, roles, invitations (with the e-mail really sent by the worker), projects and teams."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import httpx
import psycopg

from tests.conftest import Mailbox
from tests.factories import PASSWORD, Account, add_member, create_project, invite, signup, unique_email


async def test_invitation_is_mailed_and_accepted(
    client: httpx.AsyncClient, founder: Account, mailbox: Mailbox, run_jobs: Callable[[], Awaitable[None]]
) -> None:
    invitee = await signup(client)
    invitation = await invite(client, founder, email=invitee.email, role="analyst")
    await run_jobs()
    mails = mailbox.to(invitee.email)
    assert len(mails) == 1
    body = mails[0].get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert str(invitation["token"]) in body
    accepted = await client.post(
        "/api/v1/invitations/accept", json={"token": invitation["token"]}, headers=invitee.headers
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["data"]["role"] == "analyst"
    as_analyst = await client.get("/api/v1/projects", headers={**invitee.headers, "X-Org-Id": str(founder.org_id)})
    assert as_analyst.status_code == 200
    again = await client.post(
        "/api/v1/invitations/accept", json={"token": invitation["token"]}, headers=invitee.headers
    )
    assert again.status_code == 404


async def test_invitation_only_for_its_email_and_not_after_revocation(
    client: httpx.AsyncClient, founder: Account
) -> None:
    stranger = await signup(client)
    invitation = await invite(client, founder, email=unique_email(), role="member")
    wrong_user = await client.post(
        "/api/v1/invitations/accept", json={"token": invitation["token"]}, headers=stranger.headers
    )
    assert wrong_user.status_code == 403
    revoked = await client.delete(f"/api/v1/invitations/{invitation['id']}", headers=founder.headers)
    assert revoked.json()["data"]["revokedAt"] is not None
    signup_with_revoked = await client.post(
        "/api/v1/auth/signup",
        json={
            "email": invitation["email"],
            "password": "a-Long-and-unusual-passphrase-42",
            "invitationToken": invitation["token"],
        },
    )
    assert signup_with_revoked.status_code == 404
    forged = await client.post("/api/v1/invitations/accept", json={"token": "inv_00_bad"}, headers=stranger.headers)
    assert forged.status_code == 404


async def test_the_invitation_link_says_how_to_join(
    client: httpx.AsyncClient, founder: Account, database_url: str
) -> None:
    email = unique_email()
    invitation = await invite(client, founder, email=email, role="analyst")
    link = urlsplit(str(invitation["acceptUrl"]))
    page = await client.get(f"{link.path}?{link.query}")  # no credential: whoever holds the link
    assert link.path == "/app/invitations/accept" and page.status_code == 200
    assert f"{email} is invited to join" in page.text
    shown = await client.get(f"/api/v1/invitations/accept?{link.query}")  # the same, for API clients
    assert shown.status_code == 200, shown.text
    data = shown.json()["data"]
    org = (await client.get("/api/v1/organization", headers=founder.headers)).json()["data"]
    assert (data["organizationName"], data["role"], data["email"]) == (org["name"], "analyst", email)
    assert data["expiresAt"] == invitation["expiresAt"]
    assert data["signUp"]["url"].endswith("/api/v1/auth/signup")
    assert data["signUp"]["body"]["invitationToken"] == invitation["token"]
    assert data["accept"]["url"].endswith("/api/v1/invitations/accept")
    assert data["accept"]["body"] == {"token": invitation["token"]}

    # Doing what it says: the invitee joins with the link's sign-up request, and the link is then used up.
    joined = await client.post(
        data["signUp"]["url"].removeprefix(f"{link.scheme}://{link.netloc}"),
        json={**data["signUp"]["body"], "password": PASSWORD, "name": "Invitee"},
    )
    assert joined.status_code == 201, joined.text
    unknown = await client.get("/api/v1/invitations/accept", params={"token": f"inv_{uuid.uuid4().hex}_nothing"})
    assert unknown.status_code == 404
    for token in (invitation["token"], "inv_00_bad", "nonsense"):
        response = await client.get("/api/v1/invitations/accept", params={"token": token})
        assert (response.status_code, response.json()) == (404, unknown.json()), token
    assert unknown.json()["error"] == {
        "code": "invalid_invitation",
        "details": None,
        "message": "This invitation is invalid or has expired",
    }

    expired = await invite(client, founder, email=unique_email(), role="member")
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await conn.execute("UPDATE core.invitations SET expires_at = now() WHERE id = %s", (expired["id"],))
        await conn.commit()
    response = await client.get("/api/v1/invitations/accept", params={"token": expired["token"]})
    assert (response.status_code, response.json()) == (404, unknown.json())


async def test_signing_up_with_an_invitation_joins_that_org_only(client: httpx.AsyncClient, founder: Account) -> None:
    email = unique_email()
    invitation = await invite(client, founder, email=email, role="member")
    both = await client.post(
        "/api/v1/auth/signup",
        json={
            "email": email,
            "password": PASSWORD,
            "invitationToken": invitation["token"],
            "organizationName": "Mine too",
        },
    )
    assert both.status_code == 422
    assert "organizationName" in both.json()["error"]["details"][0]["message"]
    invitee = await signup(client, email=email, invitation_token=str(invitation["token"]))
    orgs = (await client.get("/api/v1/organizations", headers=invitee.headers)).json()["data"]
    assert [(o["id"], o["role"]) for o in orgs] == [(str(founder.org_id), "member")]
    assert invitee.org_id == founder.org_id


async def test_role_rules(client: httpx.AsyncClient, founder: Account) -> None:
    admin = await add_member(client, founder, "admin")
    member = await add_member(client, founder, "member")
    cannot_make_founder = await client.patch(
        f"/api/v1/members/{member.user_id}", json={"role": "founder"}, headers=admin.headers
    )
    assert cannot_make_founder.status_code == 403
    cannot_demote_founder = await client.patch(
        f"/api/v1/members/{founder.user_id}", json={"role": "member"}, headers=admin.headers
    )
    assert cannot_demote_founder.status_code == 403
    assert cannot_demote_founder.json()["error"]["message"] == "A founder cannot be demoted by an admin"
    cannot_remove_founder = await client.delete(f"/api/v1/members/{founder.user_id}", headers=admin.headers)
    assert cannot_remove_founder.status_code == 403
    assert cannot_remove_founder.json()["error"]["message"] == "A founder cannot be removed by an admin"
    last_founder = await client.patch(
        f"/api/v1/members/{founder.user_id}", json={"role": "admin"}, headers=founder.headers
    )
    assert last_founder.status_code == 409
    promoted = await client.patch(f"/api/v1/members/{member.user_id}", json={"role": "investor"}, headers=admin.headers)
    assert promoted.json()["data"]["role"] == "investor"
    # The new role applies on the member's very next request.
    assert (await client.get("/api/v1/projects", headers=member.headers)).status_code == 403
    removed = await client.delete(f"/api/v1/members/{member.user_id}", headers=admin.headers)
    assert removed.status_code == 200 and removed.json()["data"]["apiKeysRevoked"] == []
    gone = await client.get("/api/v1/organization", headers=member.headers)
    assert gone.status_code == 401
    members = (await client.get("/api/v1/members", headers=founder.headers)).json()
    assert members["meta"]["total"] == 2


async def test_members_edit_only_their_own_projects(client: httpx.AsyncClient, founder: Account) -> None:
    member = await add_member(client, founder, "member")
    theirs = await create_project(client, founder, "founder's")
    mine = await create_project(client, member, "member's")
    denied = await client.patch(f"/api/v1/projects/{theirs['id']}", json={"name": "x"}, headers=member.headers)
    assert denied.status_code == 403
    allowed = await client.patch(f"/api/v1/projects/{mine['id']}", json={"description": "ok"}, headers=member.headers)
    assert allowed.status_code == 200 and allowed.json()["data"]["description"] == "ok"
    # A project-scoped admin role lets them manage that one project.
    granted = await client.put(
        f"/api/v1/projects/{theirs['id']}/members/{member.user_id}", json={"role": "admin"}, headers=founder.headers
    )
    assert granted.status_code == 200
    now_allowed = await client.patch(
        f"/api/v1/projects/{theirs['id']}", json={"name": "shared"}, headers=member.headers
    )
    assert now_allowed.status_code == 200
    listed = (await client.get(f"/api/v1/projects/{theirs['id']}/members", headers=founder.headers)).json()["data"]
    assert listed[0]["role"] == "admin"
    assert (await client.delete(f"/api/v1/projects/{mine['id']}", headers=member.headers)).status_code == 204


async def test_projects_pagination_and_search(client: httpx.AsyncClient, founder: Account) -> None:
    await asyncio.gather(*[create_project(client, founder, f"alpha {i}") for i in range(5)])
    await create_project(client, founder, "beta")
    page = (await client.get("/api/v1/projects?limit=2&page=3", headers=founder.headers)).json()
    assert page["meta"] == {"page": 3, "limit": 2, "total": 6} and len(page["data"]) == 2
    found = (await client.get("/api/v1/projects?q=BET", headers=founder.headers)).json()
    assert [p["name"] for p in found["data"]] == ["beta"]
    for query in ("limit=0", "limit=101", "page=0", "page=abc"):
        assert (await client.get(f"/api/v1/projects?{query}", headers=founder.headers)).status_code == 422


async def test_teams_and_team_roles(client: httpx.AsyncClient, founder: Account) -> None:
    member = await add_member(client, founder, "member")
    project = await create_project(client, founder)
    team = await client.post(
        "/api/v1/teams", json={"name": "Growth", "projectId": project["id"]}, headers=founder.headers
    )
    assert team.status_code == 201
    team_id = team.json()["data"]["id"]
    duplicate = await client.post("/api/v1/teams", json={"name": "Growth"}, headers=founder.headers)
    assert duplicate.status_code == 409
    added = await client.put(
        f"/api/v1/teams/{team_id}/members/{member.user_id}", json={"role": "member"}, headers=founder.headers
    )
    assert added.status_code == 200
    by_project = (await client.get(f"/api/v1/teams?projectId={project['id']}", headers=member.headers)).json()
    assert [t["name"] for t in by_project["data"]] == ["Growth"]
    renamed = await client.patch(f"/api/v1/teams/{team_id}", json={"name": "Growth EU"}, headers=founder.headers)
    assert renamed.json()["data"]["name"] == "Growth EU"
    assert (
        await client.delete(f"/api/v1/teams/{team_id}/members/{member.user_id}", headers=founder.headers)
    ).status_code == 204
    assert (await client.delete(f"/api/v1/teams/{team_id}", headers=founder.headers)).status_code == 204
    assert (await client.get(f"/api/v1/teams/{team_id}", headers=founder.headers)).status_code == 404


async def test_a_user_can_found_and_switch_orgs(client: httpx.AsyncClient, founder: Account) -> None:
    second = (
        await client.post("/api/v1/organizations", json={"name": "Side project"}, headers=founder.headers)
    ).json()["data"]
    orgs = (await client.get("/api/v1/organizations", headers=founder.headers)).json()["data"]
    assert {o["name"] for o in orgs} >= {"Side project"} and len(orgs) == 2
    login = await client.post(
        "/api/v1/auth/login", json={"email": founder.email, "password": founder.password, "orgId": second["id"]}
    )
    assert login.json()["data"]["tokens"]["orgId"] == second["id"]
