"""SCIM 2.0 provisioning (RFC 7643, 7644): the org's token (founders and admins make it, shown once; a new one
ends the old), Users created, read, filtered, paged, replaced, patched (with a path, and as Azure AD sends it),
deactivated (the person's sessions in the org end at once), deleted; Groups as the org's teams with their
provisioned members; errors in SCIM's shape; founders never changed; another org's token sees nothing of this
one's."""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import Account, add_member, login, signup, unique_email

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
ROLE = "urn:northstar:params:scim:schemas:extension:2.0:Membership"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


async def scim_token(client: httpx.AsyncClient, founder: Account) -> dict[str, str]:
    made = await client.post("/api/v1/organization/scim-token", headers=founder.headers)
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['data']['token']}"}


def person(email: str, **more: Any) -> dict[str, Any]:
    return {"schemas": [USER], "userName": email, "name": {"givenName": "Grace", "familyName": "Hopper"}, **more}


async def _members(client: httpx.AsyncClient, founder: Account) -> set[str]:
    found = await client.get("/api/v1/members", headers=founder.headers, params={"limit": 100})
    return {member["email"] for member in found.json()["data"]}


async def test_the_token_is_the_founders_and_admins_to_make_and_only_the_newest_works(
    client: httpx.AsyncClient, founder: Account
) -> None:
    member = await add_member(client, founder, "member")
    assert (await client.post("/api/v1/organization/scim-token", headers=member.headers)).status_code == 403
    assert (await client.get("/api/v1/organization/scim-token", headers=member.headers)).status_code == 403
    missing = await client.get("/scim/v2/Users")
    assert missing.status_code == 401 and missing.headers["content-type"].startswith("application/scim+json")
    assert missing.json()["schemas"] == [ERROR] and missing.json()["status"] == "401"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    first = await scim_token(client, founder)
    assert (await client.get("/scim/v2/Users", headers=first)).status_code == 200
    status = (await client.get("/api/v1/organization/scim-token", headers=founder.headers)).json()["data"]
    assert status["active"] is True and status["baseUrl"].endswith("/scim/v2") and status["lastUsedAt"]
    admin = await add_member(client, founder, "admin")
    second = await scim_token(client, admin)
    assert (await client.get("/scim/v2/Users", headers=first)).status_code == 401
    assert (await client.get("/scim/v2/Users", headers=second)).status_code == 200
    forged = {"Authorization": second["Authorization"][:-4] + "AAAA"}
    assert (await client.get("/scim/v2/Users", headers=forged)).status_code == 401
    revoked = await client.delete("/api/v1/organization/scim-token", headers=founder.headers)
    assert revoked.status_code == 204
    assert (await client.get("/scim/v2/Users", headers=second)).status_code == 401


async def test_users_are_created_read_filtered_and_paged(client: httpx.AsyncClient, founder: Account) -> None:
    token = await scim_token(client, founder)
    emails = [unique_email("scim") for _ in range(5)]
    made = []
    for number, email in enumerate(emails):
        response = await client.post("/scim/v2/Users", headers=token, json=person(email, externalId=f"okta-{number}"))
        assert response.status_code == 201, response.text
        assert response.headers["location"].endswith(f"/scim/v2/Users/{response.json()['id']}")
        made.append(response.json())
    first = made[0]
    assert first["userName"] == emails[0] and first["displayName"] == "Grace Hopper" and first["active"] is True
    assert first["emails"] == [{"value": emails[0], "type": "work", "primary": True}]
    assert first[ROLE] == {"role": "member"} and first["meta"]["resourceType"] == "User"
    assert set(emails) <= await _members(client, founder)

    again = await client.post("/scim/v2/Users", headers=token, json=person(emails[0].upper()))
    assert again.status_code == 409 and again.json()["scimType"] == "uniqueness"

    read = await client.get(f"/scim/v2/Users/{first['id']}", headers=token)
    assert read.status_code == 200 and read.json()["id"] == first["id"]
    by_name = await client.get("/scim/v2/Users", headers=token, params={"filter": f'userName eq "{emails[2].upper()}"'})
    assert [found["userName"] for found in by_name.json()["Resources"]] == [emails[2]]
    by_external = await client.get("/scim/v2/Users", headers=token, params={"filter": 'externalId eq "okta-3"'})
    assert by_external.json()["totalResults"] == 1
    nobody = await client.get("/scim/v2/Users", headers=token, params={"filter": 'userName eq "nobody@example.com"'})
    assert nobody.json()["totalResults"] == 0 and nobody.json()["Resources"] == []

    page = (await client.get("/scim/v2/Users", headers=token, params={"startIndex": 2, "count": 2})).json()
    assert page["totalResults"] == 5 and page["startIndex"] == 2 and page["itemsPerPage"] == 2
    assert [found["id"] for found in page["Resources"]] == [made[1]["id"], made[2]["id"]]
    counted = (await client.get("/scim/v2/Users", headers=token, params={"count": 0})).json()
    assert counted["totalResults"] == 5 and counted["Resources"] == []

    for bad, kind in (
        ({"filter": 'displayName co "Grace"'}, "invalidFilter"),
        ({"filter": "userName eq unquoted"}, "invalidFilter"),
    ):
        refused = await client.get("/scim/v2/Users", headers=token, params=bad)
        assert refused.status_code == 400 and refused.json()["scimType"] == kind
    for body in (
        {"schemas": [USER]},
        {"userName": "a@b.example"},
        person("no-at-sign"),
        person("x@y.example", active=3),
    ):
        refused = await client.post("/scim/v2/Users", headers=token, json=body)
        assert refused.status_code == 400 and refused.json()["schemas"] == [ERROR], body
    broken = await client.post("/scim/v2/Users", headers={**token, "content-type": "application/json"}, content=b"{")
    assert broken.status_code == 400 and broken.json()["scimType"] == "invalidSyntax"
    assert (await client.get("/scim/v2/Users/not-a-uuid", headers=token)).status_code == 404


async def test_deactivation_ends_the_persons_sessions_in_the_org_at_once(
    client: httpx.AsyncClient, founder: Account
) -> None:
    token = await scim_token(client, founder)
    someone = await signup(client)  # an account of their own first
    made = (await client.post("/scim/v2/Users", headers=token, json=person(someone.email))).json()
    in_org = await login(client, someone, org_id=founder.org_id)
    assert (await client.get("/api/v1/organization", headers=in_org.headers)).json()["data"]["id"] == str(
        founder.org_id
    )

    off = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}
    patched = await client.patch(f"/scim/v2/Users/{made['id']}", headers=token, json=off)
    assert patched.status_code == 200 and patched.json()["active"] is False
    assert (await client.get("/api/v1/organization", headers=in_org.headers)).status_code in (401, 403)
    refreshed = await client.post("/api/v1/auth/refresh", json={"refreshToken": in_org.refresh_token})
    assert refreshed.status_code == 401
    assert someone.email not in await _members(client, founder)
    own = await client.get("/api/v1/organization", headers=someone.headers)  # their own org is theirs still
    assert own.status_code == 200

    azure = {"schemas": [PATCH], "Operations": [{"op": "Replace", "value": {"active": "True", "displayName": "G. H."}}]}
    back = await client.patch(f"/scim/v2/Users/{made['id']}", headers=token, json=azure)
    assert back.status_code == 200 and back.json()["active"] is True and back.json()["displayName"] == "G. H."
    assert someone.email in await _members(client, founder)

    analyst = {**person(someone.email, displayName="Grace"), ROLE: {"role": "analyst"}}
    replaced = await client.put(f"/scim/v2/Users/{made['id']}", headers=token, json=analyst)
    assert replaced.status_code == 200 and replaced.json()[ROLE] == {"role": "analyst"}
    members = (await client.get("/api/v1/members", headers=founder.headers, params={"limit": 100})).json()["data"]
    assert next(member["role"] for member in members if member["email"] == someone.email) == "analyst"
    renamed = await client.put(f"/scim/v2/Users/{made['id']}", headers=token, json=person(unique_email()))
    assert renamed.status_code == 400 and renamed.json()["scimType"] == "mutability"
    for operations in ([{"op": "replace", "path": "userName", "value": "x@y.example"}], [{"op": "move"}], []):
        refused = await client.patch(
            f"/scim/v2/Users/{made['id']}", headers=token, json={"schemas": [PATCH], "Operations": operations}
        )
        assert refused.status_code == 400, operations
    founderly = {**person(someone.email), ROLE: {"role": "founder"}}
    assert (await client.put(f"/scim/v2/Users/{made['id']}", headers=token, json=founderly)).status_code == 400

    gone = await client.delete(f"/scim/v2/Users/{made['id']}", headers=token)
    assert gone.status_code == 204
    assert (await client.get(f"/scim/v2/Users/{made['id']}", headers=token)).status_code == 404
    assert someone.email not in await _members(client, founder)


async def test_founders_are_not_provisioned_and_other_orgs_see_nothing(
    client: httpx.AsyncClient, founder: Account, other_founder: Account
) -> None:
    token = await scim_token(client, founder)
    refused = await client.post("/scim/v2/Users", headers=token, json=person(founder.email))
    assert refused.status_code == 403 and refused.json()["scimType"] == "mutability"
    assert founder.email in await _members(client, founder)
    made = (await client.post("/scim/v2/Users", headers=token, json=person(unique_email()))).json()
    theirs = await scim_token(client, other_founder)
    assert (await client.get(f"/scim/v2/Users/{made['id']}", headers=theirs)).status_code == 404
    assert (await client.delete(f"/scim/v2/Users/{made['id']}", headers=theirs)).status_code == 404
    assert (await client.get("/scim/v2/Users", headers=theirs)).json()["totalResults"] == 0


async def test_discovery_needs_no_token(client: httpx.AsyncClient) -> None:
    config = (await client.get("/scim/v2/ServiceProviderConfig")).json()
    assert config["patch"]["supported"] is True and config["filter"]["maxResults"] == 1000
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    types = (await client.get("/scim/v2/ResourceTypes")).json()
    assert [found["endpoint"] for found in types["Resources"]] == ["/Users", "/Groups"]
    schemas = (await client.get("/scim/v2/Schemas")).json()
    assert [found["id"] for found in schemas["Resources"]] == [USER, GROUP, ROLE]


async def test_groups_are_the_orgs_teams_with_their_provisioned_members(
    client: httpx.AsyncClient, founder: Account, other_founder: Account
) -> None:
    token = await scim_token(client, founder)
    ada, bob, cy = [
        (await client.post("/scim/v2/Users", headers=token, json=person(unique_email()))).json() for _ in range(3)
    ]
    off = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}
    assert (await client.patch(f"/scim/v2/Users/{cy['id']}", headers=token, json=off)).status_code == 200
    made = await client.post(
        "/scim/v2/Groups",
        headers=token,
        json={
            "schemas": [GROUP],
            "displayName": "Platform",
            "externalId": "okta-g1",
            "members": [{"value": ada["id"]}],
        },
    )
    assert made.status_code == 201, made.text
    group = made.json()
    assert [member["value"] for member in group["members"]] == [ada["id"]] and group["externalId"] == "okta-g1"
    teams = (await client.get("/api/v1/teams", headers=founder.headers)).json()["data"]
    assert [team["name"] for team in teams if team["id"] == group["id"]] == ["Platform"]
    twin = await client.post("/scim/v2/Groups", headers=token, json={"schemas": [GROUP], "displayName": "Platform"})
    assert twin.status_code == 409 and twin.json()["scimType"] == "uniqueness"

    def ops(*operations: dict[str, Any]) -> dict[str, Any]:
        return {"schemas": [PATCH], "Operations": list(operations)}

    def members(op: str, *who: dict[str, Any]) -> dict[str, Any]:
        return ops({"op": op, "path": "members", "value": [{"value": one["id"]} for one in who]})

    url = f"/scim/v2/Groups/{group['id']}"
    added = await client.patch(
        url, headers=token, json=ops({"op": "add", "path": "members", "value": [{"value": bob["id"]}]})
    )
    assert {member["value"] for member in added.json()["members"]} == {ada["id"], bob["id"]}
    removed = await client.patch(
        url, headers=token, json=ops({"op": "remove", "path": f'members[value eq "{ada["id"]}"]'})
    )
    assert [member["value"] for member in removed.json()["members"]] == [bob["id"]]
    renamed = await client.patch(url, headers=token, json=ops({"op": "replace", "value": {"displayName": "Core"}}))
    assert renamed.json()["displayName"] == "Core"
    inactive = await client.patch(
        url, headers=token, json=ops({"op": "add", "path": "members", "value": [{"value": cy["id"]}]})
    )
    assert inactive.status_code == 400 and inactive.json()["scimType"] == "invalidValue"
    unknown = await client.patch(url, headers=token, json=ops({"op": "replace", "path": "owner", "value": "x"}))
    assert unknown.status_code == 400 and unknown.json()["scimType"] == "invalidPath"

    by_name = (await client.get("/scim/v2/Groups", headers=token, params={"filter": 'displayName eq "core"'})).json()
    assert [found["id"] for found in by_name["Resources"]] == [group["id"]]
    by_external = await client.get("/scim/v2/Groups", headers=token, params={"filter": 'externalId eq "okta-g1"'})
    assert by_external.json()["totalResults"] == 1
    emptied = await client.put(url, headers=token, json={"schemas": [GROUP], "displayName": "Core", "members": []})
    assert emptied.status_code == 200 and emptied.json()["members"] == []

    theirs = await scim_token(client, other_founder)
    assert (await client.get(url, headers=theirs)).status_code == 404
    assert (await client.delete(url, headers=theirs)).status_code == 404
    assert (await client.delete(url, headers=token)).status_code == 204
    assert (await client.get(url, headers=token)).status_code == 404
    assert group["id"] not in {
        team["id"] for team in (await client.get("/api/v1/teams", headers=founder.headers)).json()["data"]
    }
