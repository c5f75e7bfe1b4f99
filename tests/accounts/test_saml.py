"""SAML 2.0 single sign-on against a real IdP on loopback (``demo/saml_idp.py``, signing with its own key through
python3-saml), the platform served on its own port and the browser's hops made by hand.

Covered: SP- and IdP-initiated sign-on, just-in-time provisioning with group-to-role mapping, every forged or broken
response refused (tampered, foreign key, unsigned, SHA-1, audience, recipient, expired, unknown request, replay),
metadata by upload or URL (SSRF-guarded), enforced SSO with the founder's audited break-glass, accounts outside the
org never taken over, sessions bound to the org, RBAC on the settings and cross-tenant isolation."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text

from northstar.accounts.service import saml
from northstar.app import create_app
from northstar.core.db import Database
from northstar.demo.loopback import free_port, serving, serving_at_its_address
from northstar.demo.saml_idp import FakeSamlIdp, Misbehaviour, SamlPerson
from northstar.settings import Settings
from tests.console.conftest import csrf_of, leaving_url
from tests.factories import PASSWORD, Account, add_member, signup, unique_email
from tests.rows import rows_of


@pytest.fixture(scope="module")
async def idp() -> AsyncIterator[FakeSamlIdp]:
    fake = FakeSamlIdp()
    async with serving_at_its_address(fake):
        yield fake


@pytest.fixture(autouse=True)
def behaving(idp: FakeSamlIdp) -> None:
    """Each test starts with an IdP that behaves, and a person nobody has seen."""
    idp.misbehave = None
    idp.person = SamlPerson(f"{uuid.uuid4().hex}@corp.example", unique_email("sso"), "Grace Hopper")


@pytest.fixture(scope="module")
async def site(settings: Settings) -> AsyncIterator[str]:
    """The platform on loopback; its metadata fetches may reach loopback (the IdP's URL)."""
    port = free_port()
    changed = settings.model_copy(
        update={
            "public_url": f"http://127.0.0.1:{port}",
            "outbound": settings.outbound.model_copy(update={"allow_private_networks": True, "allow_http": True}),
        }
    )
    async with serving(create_app(changed), port=port) as url:
        yield url


@pytest.fixture
async def api(site: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=site, timeout=30) as http:
        yield http


async def configure(api: httpx.AsyncClient, account: Account, idp: FakeSamlIdp, **settings: object) -> httpx.Response:
    body = {"metadataXml": idp.metadata_xml(), **settings}
    return await api.put("/api/v1/organization/sso", json=body, headers=account.headers)


def posted_form(page: str) -> tuple[str, dict[str, str]]:
    """The action and fields of the IdP's auto-posting page (the HTTP-POST binding)."""
    form = re.search(r'<form method="post" action="([^"]+)"', page)
    assert form is not None, page
    action = html.unescape(form[1])
    fields = {name: html.unescape(value) for name, value in re.findall(r'name="(\w+)" value="([^"]*)"', page)}
    return action, fields


async def sign_on(http: httpx.AsyncClient, site: str, org_id: uuid.UUID, next: str = "/app/account") -> httpx.Response:
    """SP-initiated: to the IdP with an AuthnRequest, and its response posted back to the ACS."""
    start = await http.get(f"{site}/saml/{org_id}/login", params={"next": next})
    assert start.status_code == 303, start.text
    page = await http.get(start.headers["location"])
    assert page.status_code == 200, page.text
    action, fields = posted_form(page.text)
    assert action == f"{site}/saml/{org_id}/acs" and fields["RelayState"] == next
    return await http.post(action, data=fields)


async def idp_initiated(
    http: httpx.AsyncClient, site: str, org_id: uuid.UUID, idp: FakeSamlIdp, relay_state: str | None = None
) -> httpx.Response:
    response = idp.sign_on(acs_url=f"{site}/saml/{org_id}/acs", audience=f"{site}/saml/{org_id}/metadata")
    fields = {"SAMLResponse": response} | ({"RelayState": relay_state} if relay_state else {})
    return await http.post(f"{site}/saml/{org_id}/acs", data=fields)


async def signed_in_as(http: httpx.AsyncClient, site: str) -> str | None:
    page = await http.get(f"{site}/app/account")
    if page.status_code != 200:
        return None
    marker = "E-mail: "
    start = page.text.index(marker) + len(marker)
    return page.text[start : page.text.index("<", start)].strip()


async def member_role(database: Database, org_id: uuid.UUID, email_user: uuid.UUID) -> str | None:
    found = await rows_of(
        database,
        org_id,
        "SELECT role FROM core.memberships WHERE org_id = :org AND user_id = :user",
        org=org_id,
        user=email_user,
    )
    return found[0][0] if found else None


async def user_of(database: Database, org_id: uuid.UUID, name_id: str) -> uuid.UUID | None:
    found = await rows_of(
        database, org_id, "SELECT user_id FROM core.saml_identities WHERE name_id = :name_id", name_id=name_id
    )
    return found[0][0] if found else None


async def test_sp_initiated_sign_on_provisions_a_member_with_the_role_of_their_groups(
    site: str, api: httpx.AsyncClient, idp: FakeSamlIdp, database: Database
) -> None:
    founder = await signup(api)
    async with httpx.AsyncClient(timeout=30) as http:
        configured = await configure(api, founder, idp, groupRoles={"Engineering Leads": "admin"})
        assert configured.status_code == 200, configured.text
        described = configured.json()["data"]
        assert described["configured"] and described["idpEntityId"] == idp.entity_id
        assert described["acsUrl"] == f"{site}/saml/{founder.org_id}/acs" and described["idpCertificates"] == 1

        idp.person.groups = ["Everyone", "Engineering Leads"]
        back = await sign_on(http, site, founder.org_id)
        assert back.status_code == 303 and back.headers["location"] == "/app/account", back.text
        assert await signed_in_as(http, site) == idp.person.email
        user_id = await user_of(database, founder.org_id, idp.person.name_id)
        assert user_id is not None
        assert await member_role(database, founder.org_id, user_id) == "admin"

    async with httpx.AsyncClient(timeout=30) as again:
        idp.person.groups = ["Everyone"]
        assert (await sign_on(again, site, founder.org_id)).status_code == 303
        assert await signed_in_as(again, site) == idp.person.email
    assert await member_role(database, founder.org_id, user_id) == "member"  # the groups decide, each time
    audit = await rows_of(
        database,
        founder.org_id,
        "SELECT action, details->>'method' FROM core.audit_events WHERE actor_id = :user ORDER BY seq",
        user=user_id,
    )
    actions = [action for action, _ in audit]
    assert actions.count("sso.provisioned") == 1 and actions.count("sso.role_synced") == 1
    assert [method for action, method in audit if action == "auth.login"] == ["saml", "saml"]
    sessions = await rows_of(
        database, founder.org_id, "SELECT single_sign_on FROM auth.refresh_tokens WHERE user_id = :user", user=user_id
    )
    assert [flag for (flag,) in sessions] == [True, True]


async def test_idp_initiated_sign_on_goes_to_a_console_page_only_and_can_be_refused(
    site: str, api: httpx.AsyncClient, idp: FakeSamlIdp
) -> None:
    founder = await signup(api)
    assert (await configure(api, founder, idp)).status_code == 200
    async with httpx.AsyncClient(timeout=30) as http:
        back = await idp_initiated(http, site, founder.org_id, idp, relay_state="/app/members")
        assert back.status_code == 303 and back.headers["location"] == "/app/members", back.text
        assert await signed_in_as(http, site) == idp.person.email
    async with httpx.AsyncClient(timeout=30) as http:
        elsewhere = await idp_initiated(http, site, founder.org_id, idp, relay_state="https://evil.example/")
        assert elsewhere.status_code == 303 and elsewhere.headers["location"] == "/app/"

    assert (await configure(api, founder, idp, allowIdpInitiated=False)).status_code == 200
    async with httpx.AsyncClient(timeout=30) as http:
        refused = await idp_initiated(http, site, founder.org_id, idp)
        assert refused.status_code == 400 and "must start at Northstar" in refused.text
        assert await signed_in_as(http, site) is None
        assert (await sign_on(http, site, founder.org_id)).status_code == 303  # SP-initiated still works


async def test_a_response_posted_again_is_refused(site: str, api: httpx.AsyncClient, idp: FakeSamlIdp) -> None:
    founder = await signup(api)
    assert (await configure(api, founder, idp)).status_code == 200
    acs = f"{site}/saml/{founder.org_id}/acs"
    unsolicited = idp.sign_on(acs_url=acs, audience=f"{site}/saml/{founder.org_id}/metadata")
    async with httpx.AsyncClient(timeout=30) as first, httpx.AsyncClient(timeout=30) as attacker:
        assert (await first.post(acs, data={"SAMLResponse": unsolicited})).status_code == 303
        replayed = await attacker.post(acs, data={"SAMLResponse": unsolicited})
        assert replayed.status_code == 400 and "replay" in replayed.text
        assert await signed_in_as(attacker, site) is None

        start = await first.get(f"{site}/saml/{founder.org_id}/login")
        _, fields = posted_form((await first.get(start.headers["location"])).text)
        assert (await first.post(acs, data=fields)).status_code == 303
        again = await attacker.post(acs, data=fields)
        assert again.status_code == 400 and "already used" in again.text
        assert await signed_in_as(attacker, site) is None


@pytest.mark.parametrize(
    ("misbehaviour", "said"),
    [
        ("tampered", "Signature validation failed"),
        ("foreign_key", "Signature validation failed"),
        ("unsigned", "No Signature found"),
        ("sha1", "Deprecated signature algorithm"),
        ("audience", "is not a valid audience"),
        ("recipient", "valid SubjectConfirmation was not found"),
        ("expired", "expired"),
        ("request", "unknown, expired or already used"),
    ],
)
async def test_a_broken_or_forged_response_signs_nobody_in(
    site: str, api: httpx.AsyncClient, idp: FakeSamlIdp, database: Database, misbehaviour: Misbehaviour, said: str
) -> None:
    founder = await signup(api)
    assert (await configure(api, founder, idp)).status_code == 200
    idp.misbehave = misbehaviour
    async with httpx.AsyncClient(timeout=30) as http:
        refused = await sign_on(http, site, founder.org_id)
        assert refused.status_code == 400 and said in html.unescape(refused.text), refused.text
        assert await signed_in_as(http, site) is None
    assert await user_of(database, founder.org_id, idp.person.name_id) is None
    members = await rows_of(database, founder.org_id, "SELECT count(*) FROM core.memberships")
    assert members == [(1,)]


async def test_garbage_at_the_acs_is_a_clear_refusal(site: str, api: httpx.AsyncClient, idp: FakeSamlIdp) -> None:
    founder = await signup(api)
    acs = f"{site}/saml/{founder.org_id}/acs"
    async with httpx.AsyncClient(timeout=30) as http:
        unconfigured = await http.post(acs, data={"SAMLResponse": "PHg+"})
        assert unconfigured.status_code == 404 and "no single sign-on" in unconfigured.text
        assert (await configure(api, founder, idp)).status_code == 200
        for junk in ("not base64 at all!", "PHg+", "PD94bWwgdmVyc2lvbj0iMS4wIj8+PCFET0NUWVBFIHg+PHgvPg=="):
            refused = await http.post(acs, data={"SAMLResponse": junk})
            assert refused.status_code == 400, (junk, refused.text)
        assert (await http.post(acs, data={})).status_code == 400
        unknown = await http.get(f"{site}/saml/{uuid.uuid4()}/login")
        assert unknown.status_code == 404


async def test_metadata_comes_by_upload_or_by_a_guarded_url(
    site: str, api: httpx.AsyncClient, idp: FakeSamlIdp, client: httpx.AsyncClient
) -> None:
    founder = await signup(api)
    sp = await api.get(f"/saml/{founder.org_id}/metadata")
    assert sp.status_code == 200 and sp.headers["content-type"].startswith("application/samlmetadata+xml")
    assert (
        f'entityID="{site}/saml/{founder.org_id}/metadata"' in sp.text
        and f"{site}/saml/{founder.org_id}/acs" in sp.text
    )

    path = "/api/v1/organization/sso"
    unset = (await api.get(path, headers=founder.headers)).json()["data"]
    assert unset["configured"] is False and unset["loginUrl"] == f"{site}/saml/{founder.org_id}/login"
    first = await api.put(path, json={"enforced": True}, headers=founder.headers)
    assert first.status_code == 422 and first.json()["error"]["code"] == "metadata_required"
    for bad in ("<nope", "<x/>", '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>'):
        refused = await api.put(path, json={"metadataXml": bad}, headers=founder.headers)
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_metadata", refused.text
    both = await api.put(
        path, json={"metadataXml": idp.metadata_xml(), "metadataUrl": idp.entity_id}, headers=founder.headers
    )
    assert both.status_code == 422
    founders = await api.put(
        path, json={"metadataXml": idp.metadata_xml(), "groupRoles": {"Owners": "founder"}}, headers=founder.headers
    )
    assert founders.status_code == 422

    fetched = await api.put(path, json={"metadataUrl": idp.entity_id}, headers=founder.headers)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["data"]["idpMetadataUrl"] == idp.entity_id and fetched.json()["data"]["metadataFetchedAt"]
    missing = await api.put(path, json={"metadataUrl": f"{idp.base_url}/nothing-here"}, headers=founder.headers)
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "metadata_unreachable"

    # The in-process app keeps the default outbound guard: the IdP's loopback address is refused.
    other = await signup(client)
    blocked = await client.put(path, json={"metadataUrl": idp.entity_id}, headers=other.headers)
    assert blocked.status_code == 422 and blocked.json()["error"]["code"] == "blocked_destination", blocked.text
    internal = await client.put(
        path, json={"metadataUrl": "http://169.254.169.254/latest/meta-data/"}, headers=other.headers
    )
    assert internal.status_code == 422 and internal.json()["error"]["code"] == "blocked_destination"


async def password_login(api: httpx.AsyncClient, email: str, org_id: uuid.UUID | None = None) -> httpx.Response:
    body: dict[str, object] = {"email": email, "password": PASSWORD}
    if org_id:
        body["orgId"] = str(org_id)
    return await api.post("/api/v1/auth/login", json=body)


async def test_enforced_sso_lets_members_in_only_through_the_idp_and_founders_through_an_audited_break_glass(
    site: str, api: httpx.AsyncClient, idp: FakeSamlIdp, database: Database
) -> None:
    founder = await signup(api)
    member = await add_member(api, founder, "member")
    other_org = await api.post("/api/v1/organizations", json={"name": "Side project"}, headers=founder.headers)
    assert other_org.status_code == 201
    assert (await configure(api, founder, idp)).status_code == 200
    assert (await api.get("/api/v1/users/me", headers=member.headers)).status_code == 200

    enforced = await configure(api, founder, idp, enforced=True)
    assert enforced.status_code == 200 and enforced.json()["data"]["enforced"] is True
    ended = await api.get("/api/v1/users/me", headers=member.headers)
    assert ended.status_code == 401 and ended.json()["error"]["code"] == "session_revoked"
    assert (await api.post("/api/v1/auth/refresh", json={"refreshToken": member.refresh_token})).status_code == 401
    assert (await api.get("/api/v1/users/me", headers=founder.headers)).status_code == 200  # founders keep theirs

    refused = await password_login(api, member.email)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "sso_required"
    invited = await api.post(
        "/api/v1/invitations", json={"email": unique_email("late"), "role": "member"}, headers=founder.headers
    )
    late = await api.post(
        "/api/v1/auth/signup",
        json={
            "email": invited.json()["data"]["email"],
            "password": PASSWORD,
            "name": "Late",
            "invitationToken": invited.json()["data"]["token"],
        },
    )
    assert late.status_code == 403 and late.json()["error"]["code"] == "sso_required"

    glass = await password_login(api, founder.email, founder.org_id)
    assert glass.status_code == 200, glass.text
    events = await rows_of(
        database,
        founder.org_id,
        "SELECT details->>'method' FROM core.audit_events WHERE action = 'auth.sso_break_glass' AND actor_id = :u",
        u=founder.user_id,
    )
    assert events == [("password",)]
    # With no org named, the founder's first org that needs no SSO is chosen: no break-glass.
    chosen = await password_login(api, founder.email)
    assert chosen.status_code == 200 and chosen.json()["data"]["tokens"]["orgId"] == other_org.json()["data"]["id"]

    idp.person = SamlPerson(f"{uuid.uuid4().hex}@corp.example", member.email, "Member")
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await sign_on(http, site, founder.org_id)).status_code == 303
        assert await signed_in_as(http, site) == member.email  # the org's member with that e-mail, linked
    assert await user_of(database, founder.org_id, idp.person.name_id) == member.user_id


async def test_sessions_crossing_orgs_respect_single_sign_on(
    site: str, api: httpx.AsyncClient, idp: FakeSamlIdp
) -> None:
    founder = await signup(api)
    member = await add_member(api, founder, "member")
    elsewhere = await signup(api)
    invitation = await api.post(
        "/api/v1/invitations", json={"email": member.email, "role": "member"}, headers=elsewhere.headers
    )
    joined = await api.post(
        "/api/v1/invitations/accept", json={"token": invitation.json()["data"]["token"]}, headers=member.headers
    )
    assert joined.status_code == 200
    assert (await configure(api, founder, idp)).status_code == 200

    idp.person = SamlPerson(f"{uuid.uuid4().hex}@corp.example", member.email, "Member")
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await sign_on(http, site, founder.org_id)).status_code == 303
        page = await http.get(f"{site}/app/")
        switched = await http.post(
            f"{site}/app/session/org", data={"org_id": str(elsewhere.org_id), "csrf_token": csrf_of(page.text)}
        )
        assert switched.status_code == 403 and "single sign-on" in switched.text
        made_by_idp = http.cookies["ns_access"]
    own = {"Authorization": f"Bearer {made_by_idp}"}
    assert (await api.get("/api/v1/users/me", headers=own)).status_code == 200
    crossing = await api.get("/api/v1/users/me", headers={**own, "X-Org-Id": str(elsewhere.org_id)})
    assert crossing.status_code == 403 and crossing.json()["error"]["code"] == "sso_session"
    password_session = {**member.headers, "X-Org-Id": str(elsewhere.org_id)}
    assert (await api.get("/api/v1/users/me", headers=password_session)).status_code == 200

    assert (await configure(api, founder, idp, enforced=True)).status_code == 200
    fresh = await password_login(api, member.email, elsewhere.org_id)
    into = {"Authorization": f"Bearer {fresh.json()['data']['tokens']['accessToken']}", "X-Org-Id": str(founder.org_id)}
    refused = await api.get("/api/v1/users/me", headers=into)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "sso_required"


async def test_the_idp_never_takes_over_an_account_outside_the_org_or_a_founder(
    site: str, api: httpx.AsyncClient, idp: FakeSamlIdp, database: Database
) -> None:
    founder = await signup(api)
    outsider = await signup(api)
    assert (await configure(api, founder, idp)).status_code == 200
    for target in (outsider, founder):
        idp.person = SamlPerson(f"{uuid.uuid4().hex}@corp.example", target.email, "Mallory")
        async with httpx.AsyncClient(timeout=30) as http:
            refused = await sign_on(http, site, founder.org_id)
            assert refused.status_code == 400 and "already exists" in html.unescape(refused.text)
            assert await signed_in_as(http, site) is None
        assert await member_role(database, founder.org_id, target.user_id) in (None, "founder")

    # The outsider proves their password, then connects the org's SSO: now a member, signed in through it.
    idp.person = SamlPerson(f"{uuid.uuid4().hex}@corp.example", outsider.email, "Outsider")
    async with httpx.AsyncClient(base_url=site, timeout=30) as browser:
        page = await browser.get("/app/login")
        signed = await browser.post(
            "/app/login", data={"email": outsider.email, "password": PASSWORD, "csrf_token": csrf_of(page.text)}
        )
        assert signed.status_code == 303
        switched_page = await browser.get("/app/account/connected")
        assert "Connect single sign-on" not in switched_page.text  # the outsider's own org has no SSO
    assert await member_role(database, founder.org_id, outsider.user_id) is None


async def test_a_founder_connects_their_account_while_signed_in(
    site: str, api: httpx.AsyncClient, idp: FakeSamlIdp, database: Database
) -> None:
    founder = await signup(api)
    assert (await configure(api, founder, idp)).status_code == 200
    idp.person = SamlPerson(f"{uuid.uuid4().hex}@corp.example", founder.email, "Founder")
    async with httpx.AsyncClient(base_url=site, timeout=30) as browser:
        page = await browser.get("/app/login")
        await browser.post(
            "/app/login", data={"email": founder.email, "password": PASSWORD, "csrf_token": csrf_of(page.text)}
        )
        listing = await browser.get("/app/account/connected")
        assert "Connect single sign-on" in listing.text
        leaving = await browser.post("/app/account/sso/connect", data={"csrf_token": csrf_of(listing.text)})
        action, fields = posted_form((await browser.get(leaving_url(leaving))).text)
        back = await browser.post(action, data=fields)
        assert back.status_code == 303 and back.headers["location"] == "/app/account/connected?connected=sso"
        assert "single sign-on is connected" in (await browser.get(back.headers["location"])).text
    assert await user_of(database, founder.org_id, idp.person.name_id) == founder.user_id
    assert await member_role(database, founder.org_id, founder.user_id) == "founder"  # kept, whatever the groups
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await sign_on(http, site, founder.org_id)).status_code == 303
        assert await signed_in_as(http, site) == founder.email


async def test_a_person_the_directory_deactivated_is_not_let_back_in(
    site: str, api: httpx.AsyncClient, idp: FakeSamlIdp
) -> None:
    founder = await signup(api)
    assert (await configure(api, founder, idp)).status_code == 200
    token = (await api.post("/api/v1/organization/scim-token", headers=founder.headers)).json()["data"]["token"]
    scim = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    created = await api.post(
        "/scim/v2/Users",
        headers=scim,
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": idp.person.email, "active": True},
    )
    assert created.status_code == 201, created.text
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await sign_on(http, site, founder.org_id)).status_code == 303
    patched = await api.patch(
        f"/scim/v2/Users/{created.json()['id']}",
        headers=scim,
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        },
    )
    assert patched.status_code == 200
    async with httpx.AsyncClient(timeout=30) as http:
        refused = await sign_on(http, site, founder.org_id)
        assert refused.status_code == 400 and "deactivated" in refused.text
        assert await signed_in_as(http, site) is None


async def test_only_founders_and_admins_see_or_change_sso_and_orgs_stay_apart(
    site: str, api: httpx.AsyncClient, idp: FakeSamlIdp, database: Database
) -> None:
    founder = await signup(api)
    admin = await add_member(api, founder, "admin")
    assert (await configure(api, admin, idp, groupRoles={"Leads": "admin"})).status_code == 200
    for role in ("member", "analyst", "investor"):
        someone = await add_member(api, founder, role)
        assert (await api.get("/api/v1/organization/sso", headers=someone.headers)).status_code == 403
        assert (await configure(api, someone, idp)).status_code == 403
        assert (await api.delete("/api/v1/organization/sso", headers=someone.headers)).status_code == 403

    stranger = await signup(api)
    theirs = (await api.get("/api/v1/organization/sso", headers=stranger.headers)).json()["data"]
    assert theirs["configured"] is False
    assert (await api.delete("/api/v1/organization/sso", headers=stranger.headers)).status_code == 404
    crossing = {**founder.headers, "Authorization": stranger.headers["Authorization"], "X-Org-Id": str(founder.org_id)}
    assert (await api.get("/api/v1/organization/sso", headers=crossing)).status_code == 401

    # A response for one org, posted to another's ACS, fails that org's audience and destination checks.
    assert (await configure(api, stranger, idp)).status_code == 200
    for_founder = idp.sign_on(
        acs_url=f"{site}/saml/{founder.org_id}/acs", audience=f"{site}/saml/{founder.org_id}/metadata"
    )
    async with httpx.AsyncClient(timeout=30) as http:
        refused = await http.post(f"{site}/saml/{stranger.org_id}/acs", data={"SAMLResponse": for_founder})
        assert refused.status_code == 400 and await signed_in_as(http, site) is None
        # A request the founder's org made is unknown to the stranger's.
        start = await http.get(f"{site}/saml/{founder.org_id}/login")
        _, fields = posted_form((await http.get(start.headers["location"])).text)
        moved = await http.post(f"{site}/saml/{stranger.org_id}/acs", data=fields)
        assert moved.status_code == 400 and "unknown, expired or already used" in moved.text
    assert (await rows_of(database, stranger.org_id, "SELECT count(*) FROM core.saml_requests")) == [(0,)]
    assert (await api.delete("/api/v1/organization/sso", headers=admin.headers)).status_code == 204
    assert (await api.get("/api/v1/organization/sso", headers=founder.headers)).json()["data"]["configured"] is False


async def test_old_requests_and_expired_assertion_ids_are_forgotten(
    site: str, api: httpx.AsyncClient, idp: FakeSamlIdp, database: Database
) -> None:
    founder = await signup(api)
    assert (await configure(api, founder, idp)).status_code == 200
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await sign_on(http, site, founder.org_id)).status_code == 303
        await http.get(f"{site}/saml/{founder.org_id}/login")  # a request still running
    counts = "SELECT (SELECT count(*) FROM core.saml_requests), (SELECT count(*) FROM core.saml_assertions)"
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        assert await saml.purge_finished(session) == 0
    assert await rows_of(database, founder.org_id, counts) == [(2, 1)]
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        await session.execute(text("UPDATE core.saml_requests SET expires_at = now() - interval '25 hours'"))
        await session.execute(text("UPDATE core.saml_assertions SET expires_at = now() - interval '2 hours'"))
        assert await saml.purge_finished(session) == 3
    assert await rows_of(database, founder.org_id, counts) == [(0, 0)]
