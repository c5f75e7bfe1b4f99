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
from dataclasses import dataclass

import httpx
import pytest

from northstar.app import create_app
from northstar.core.db import Database
from northstar.demo.loopback import free_port, serving
from northstar.demo.saml_idp import FakeSamlIdp, Misbehaviour, SamlPerson
from northstar.settings import Settings
from tests.console.conftest import csrf_of
from tests.factories import PASSWORD, Account, add_member, login, refresh, signup, unique_email
from tests.rows import rows_of


@dataclass
class Site:
    url: str
    idp: FakeSamlIdp


@pytest.fixture(scope="module")
async def idp() -> AsyncIterator[FakeSamlIdp]:
    fake = FakeSamlIdp()
    port = free_port()
    fake.serve_at(f"http://127.0.0.1:{port}")
    async with serving(fake.app, port=port):
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
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page)[1])  # type: ignore[index]
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
        database, org_id, "SELECT role FROM core.memberships WHERE org_id = :org AND user_id = :user", org=org_id,
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
