"""SAML 2.0 single sign-on, one identity provider per organization (python3-saml; signatures checked by xmlsec).

The platform is the service provider. Each org has its own entity id and assertion consumer service (ACS) under
``/saml/{org_id}``, so a response can only ever be checked against the one IdP that org configured.

- **Configuration** comes from the IdP's metadata, uploaded or fetched from its URL through the outbound guard (no
  private addresses, no redirects, a size limit): the IdP's entity id, its HTTP-Redirect sign-on address and its
  signing certificates. Founders and admins also map attributes (e-mail, name, groups) and IdP groups to roles.
- **SP-initiated** sign-on keeps the AuthnRequest's id (``core.saml_requests``); the response's ``InResponseTo``
  must name one of the org's, unexpired and unused, and uses it up. **IdP-initiated** responses (no
  ``InResponseTo``) are taken only when the org allows them.
- **Every response** must be signed (the response or its assertion) by one of the IdP's certificates, with no
  deprecated algorithm (SHA-1), issued by the IdP, for our entity id (audience), to our ACS (destination and
  recipient), within its conditions' time window; its assertion id is recorded (``core.saml_assertions``) and the
  same assertion posted again before it expires is refused as a replay.
- **Who it is**: the NameID is found again in ``core.saml_identities``. A new NameID is linked to the member of the
  org with its e-mail, or made a member just in time (its role from its groups). It never takes over an account
  outside the org, nor a founder's: those prove their password first and connect from their account page.
- **Sessions** an IdP makes are marked ``single_sign_on`` and reach only that org. An org that enforces SSO refuses
  its members every other way in; a founder's password still works (break-glass), and is audited.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import structlog
from cryptography import x509
from lxml import etree
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.errors import OneLogin_Saml2_Error, OneLogin_Saml2_ValidationError
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.models import (
    Membership,
    RefreshToken,
    SamlAssertion,
    SamlConnection,
    SamlIdentity,
    SamlRequest,
    ScimUser,
    User,
)
from northstar.accounts.schemas import LoginResult, SsoSettingsOut, SsoSettingsRequest
from northstar.accounts.service import authentication, organizations, scim
from northstar.accounts.service.users import create_user, get_user, now, user_by_email
from northstar.core.context import ClientMeta
from northstar.core.db import execute_count, set_tenant_context, settings_of
from northstar.core.http import AppError, NotFound, Unprocessable
from northstar.core.outbound import BlockedDestination, OutboundPolicy, outbound_client, outbound_policy
from northstar.core.permissions import ROLE_RANK, Principal, Role

log = structlog.get_logger(__name__)

MAX_METADATA_BYTES = 1024 * 1024
EMAIL_ATTRIBUTES = (
    "email",
    "mail",
    "emailAddress",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    "urn:oid:0.9.2342.19200300.100.1.3",
)
NAME_ATTRIBUTES = (
    "displayName",
    "name",
    "http://schemas.microsoft.com/identity/claims/displayname",
    "urn:oid:2.16.840.1.113730.3.1.241",
)
GROUP_ATTRIBUTES = ("groups", "memberOf", "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups")
MALFORMED = (OneLogin_Saml2_Error, OneLogin_Saml2_ValidationError, etree.LxmlError, binascii.Error, ValueError)


class SsoRefused(AppError):
    """The response did not prove who signed on, or the IdP may not sign this person in; nobody was signed in."""

    status, code = 400, "sso_refused"


@dataclass(frozen=True)
class ServiceProvider:
    """Our side of one org's SAML connection: what its IdP must be told."""

    entity_id: str
    acs_url: str
    login_url: str
    metadata_url: str


def service_provider(public_url: str, org_id: uuid.UUID) -> ServiceProvider:
    base = f"{public_url.rstrip('/')}/saml/{org_id}"
    return ServiceProvider(
        entity_id=f"{base}/metadata", acs_url=f"{base}/acs", login_url=f"{base}/login", metadata_url=f"{base}/metadata"
    )


def _toolkit(provider: ServiceProvider, connection: SamlConnection | None) -> OneLogin_Saml2_Settings:
    """python3-saml's settings in strict mode: a signature is required, SHA-1 refused, no attribute statement
    needed (an IdP may send only the NameID), an attribute may come as several elements of one name."""
    data: dict[str, Any] = {
        "strict": True,
        "debug": False,
        "sp": {
            "entityId": provider.entity_id,
            "assertionConsumerService": {
                "url": provider.acs_url,
                "binding": OneLogin_Saml2_Constants.BINDING_HTTP_POST,
            },
            "NameIDFormat": OneLogin_Saml2_Constants.NAMEID_UNSPECIFIED,
        },
        "security": {
            "rejectDeprecatedAlgorithm": True,
            "wantAttributeStatement": False,
            "wantNameId": True,
            "requestedAuthnContext": False,
            "allowRepeatAttributeName": True,
        },
    }
    if connection is not None:
        data["idp"] = {
            "entityId": connection.idp_entity_id,
            "singleSignOnService": {
                "url": connection.idp_sso_url,
                "binding": OneLogin_Saml2_Constants.BINDING_HTTP_REDIRECT,
            },
            "x509certMulti": {"signing": list(connection.idp_certificates)},
        }
    return OneLogin_Saml2_Settings(data, sp_validation_only=connection is None)


def sp_metadata(public_url: str, org_id: uuid.UUID) -> str:
    """The SP metadata an admin gives their IdP: entity id, ACS (HTTP-POST) and the NameID format."""
    metadata: str | bytes = _toolkit(service_provider(public_url, org_id), None).get_sp_metadata()
    return metadata.decode() if isinstance(metadata, bytes) else metadata


# -- configuration -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdpMetadata:
    entity_id: str
    sso_url: str
    certificates: list[str]


def _certificate_body(text: str) -> str:
    """A certificate as the toolkit keeps it (base64 DER, no armour), after checking it is one."""
    body = "".join(line for line in text.strip().splitlines() if "-----" not in line).replace(" ", "")
    try:
        x509.load_der_x509_certificate(base64.b64decode(body, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise Unprocessable("The metadata's signing certificate is not a valid X.509 certificate") from exc
    return body


def parse_metadata(xml: str) -> IdpMetadata:
    """The IdP's entity id, HTTP-Redirect sign-on address and signing certificates (DTDs and entities refused)."""
    try:
        parsed = OneLogin_Saml2_IdPMetadataParser.parse(
            xml, required_sso_binding=OneLogin_Saml2_Constants.BINDING_HTTP_REDIRECT
        )
    except (*MALFORMED, TypeError) as exc:
        raise Unprocessable("The metadata is not SAML 2.0 IdP metadata", code="invalid_metadata") from exc
    idp = parsed.get("idp", {})
    entity_id = idp.get("entityId")
    sso_url = idp.get("singleSignOnService", {}).get("url")
    certificates = idp.get("x509certMulti", {}).get("signing") or ([idp["x509cert"]] if idp.get("x509cert") else [])
    if not entity_id:
        raise Unprocessable("The metadata names no IdP entity", code="invalid_metadata")
    if not sso_url or urlsplit(sso_url).scheme not in ("https", "http"):
        raise Unprocessable("The metadata has no HTTP-Redirect sign-on service", code="invalid_metadata")
    if not certificates:
        raise Unprocessable("The metadata has no signing certificate", code="invalid_metadata")
    return IdpMetadata(str(entity_id), str(sso_url), [_certificate_body(found) for found in certificates])


async def fetch_metadata(policy: OutboundPolicy, url: str) -> str:
    """The metadata at ``url``, fetched as any user-given address is: no private networks, no redirects, 1 MiB."""
    limited = replace(policy, max_response_bytes=MAX_METADATA_BYTES, timeout_seconds=min(policy.timeout_seconds, 10))
    try:
        async with outbound_client(limited) as http:
            response = await http.get(url, headers={"Accept": "application/samlmetadata+xml, application/xml"})
    except BlockedDestination:
        raise
    except httpx.HTTPError as exc:
        raise Unprocessable(f"The metadata could not be fetched: {exc}", code="metadata_unreachable") from exc
    if response.status_code != 200:
        raise Unprocessable(f"The metadata address answered {response.status_code}", code="metadata_unreachable")
    return response.text


async def connection_of(session: AsyncSession, org_id: uuid.UUID) -> SamlConnection | None:
    await set_tenant_context(session, org_id=org_id)
    return await session.scalar(select(SamlConnection).where(SamlConnection.org_id == org_id))


def described(public_url: str, org_id: uuid.UUID, connection: SamlConnection | None) -> SsoSettingsOut:
    """The settings as the API and the console show them: ours to give the IdP, and the IdP's as configured."""
    provider = service_provider(public_url, org_id)
    ours = {
        "entity_id": provider.entity_id,
        "acs_url": provider.acs_url,
        "metadata_url": provider.metadata_url,
        "login_url": provider.login_url,
    }
    if connection is None:
        return SsoSettingsOut(configured=False, **ours)
    return SsoSettingsOut(
        configured=True,
        **ours,
        idp_entity_id=connection.idp_entity_id,
        idp_sso_url=connection.idp_sso_url,
        idp_certificates=len(connection.idp_certificates),
        idp_metadata_url=connection.metadata_url,
        metadata_fetched_at=connection.metadata_fetched_at,
        email_attribute=connection.email_attribute,
        name_attribute=connection.name_attribute,
        groups_attribute=connection.groups_attribute,
        group_roles=connection.group_roles,
        default_role=connection.default_role,
        just_in_time=connection.just_in_time,
        allow_idp_initiated=connection.allow_idp_initiated,
        enforced=connection.enforced,
    )


def _granted(principal: Principal, role: str) -> str:
    """A role an IdP group may give: never founder, and never above the role of whoever maps it."""
    granted = Role(role)
    if granted == Role.FOUNDER:
        raise Unprocessable("An identity provider cannot make founders", code="founder_not_mappable")
    organizations.ensure_can_grant(principal, granted)
    return granted.value


async def configure(
    session: AsyncSession, *, principal: Principal, body: SsoSettingsRequest, client: ClientMeta
) -> SamlConnection:
    """Create or change the org's connection. Metadata is required the first time; turning enforcement on ends the
    sessions members made any other way (founders keep theirs)."""
    connection = await connection_of(session, principal.org_id)
    metadata: IdpMetadata | None = None
    if body.metadata_xml is not None:
        metadata = parse_metadata(body.metadata_xml)
    elif body.metadata_url is not None:
        policy = outbound_policy(settings_of(session).outbound)
        metadata = parse_metadata(await fetch_metadata(policy, body.metadata_url))
    if connection is None:
        if metadata is None:
            raise Unprocessable(
                "Give the identity provider's metadata (upload it or its URL)", code="metadata_required"
            )
        connection = SamlConnection(
            id=uuid.uuid4(),
            org_id=principal.org_id,
            idp_entity_id=metadata.entity_id,
            idp_sso_url=metadata.sso_url,
            idp_certificates=metadata.certificates,
        )
        session.add(connection)
    elif metadata is not None:
        connection.idp_entity_id, connection.idp_sso_url = metadata.entity_id, metadata.sso_url
        connection.idp_certificates = metadata.certificates
    if body.metadata_url is not None:
        connection.metadata_url, connection.metadata_fetched_at = body.metadata_url, now()
    elif body.metadata_xml is not None:
        connection.metadata_url, connection.metadata_fetched_at = None, None
    connection.email_attribute = body.email_attribute
    connection.name_attribute = body.name_attribute
    connection.groups_attribute = body.groups_attribute
    connection.group_roles = {group: _granted(principal, role) for group, role in body.group_roles.items()}
    connection.default_role = _granted(principal, body.default_role)
    connection.just_in_time, connection.allow_idp_initiated = body.just_in_time, body.allow_idp_initiated
    newly_enforced = body.enforced and not connection.enforced
    connection.enforced = body.enforced
    connection.updated_at = now()
    await session.flush()
    if newly_enforced:
        ended = await _end_other_sessions(session, principal.org_id)
        log.info("saml.enforced", org_id=str(principal.org_id), sessions_ended=ended)
    return connection


async def _end_other_sessions(session: AsyncSession, org_id: uuid.UUID) -> int:
    """Revoke the org's sessions not made by its IdP, but founders' (their break-glass way in)."""
    founders = select(Membership.user_id).where(Membership.org_id == org_id, Membership.role == Role.FOUNDER.value)
    return await execute_count(
        session,
        update(RefreshToken)
        .where(
            RefreshToken.org_id == org_id,
            RefreshToken.single_sign_on.is_(False),
            RefreshToken.revoked_at.is_(None),
            RefreshToken.user_id.not_in(founders),
        )
        .values(revoked_at=now()),
    )


async def remove(session: AsyncSession, *, org_id: uuid.UUID) -> None:
    if await connection_of(session, org_id) is None:
        raise NotFound("This organization has no single sign-on", code="sso_not_configured")
    await session.execute(delete(SamlConnection).where(SamlConnection.org_id == org_id))
    await session.execute(delete(SamlIdentity).where(SamlIdentity.org_id == org_id))


async def linked_identity(session: AsyncSession, *, org_id: uuid.UUID, user_id: uuid.UUID) -> SamlIdentity | None:
    """The identity at the org's IdP a user's account is connected to, if any."""
    return await session.scalar(
        select(SamlIdentity).where(SamlIdentity.org_id == org_id, SamlIdentity.user_id == user_id)
    )


async def org_of_slug(session: AsyncSession, slug: str) -> uuid.UUID:
    """The org behind the login page's "organization" field, when it has single sign-on."""
    found = await session.scalar(select(func.core.saml_org_of_slug(slug.strip().lower())))
    if found is None:
        raise NotFound("No organization with single sign-on has that name", code="sso_not_configured")
    return uuid.UUID(str(found))


# -- sign-on -------------------------------------------------------------------------------------------------------


def _request_data(provider: ServiceProvider, post: dict[str, str]) -> dict[str, Any]:
    """The request as the toolkit checks it: our public ACS address (never the Host header a client sends)."""
    acs = urlsplit(provider.acs_url)
    return {
        "https": "on" if acs.scheme == "https" else "off",
        "http_host": acs.netloc,
        "script_name": acs.path,
        "get_data": {},
        "post_data": post,
    }


async def _configured(session: AsyncSession, org_id: uuid.UUID) -> SamlConnection:
    connection = await connection_of(session, org_id)
    if connection is None:
        raise NotFound("This organization has no single sign-on", code="sso_not_configured")
    return connection


async def start(
    session: AsyncSession, *, org_id: uuid.UUID, return_to: str, link_user_id: uuid.UUID | None = None
) -> str:
    """The IdP's sign-on URL with a new AuthnRequest (HTTP-Redirect binding), whose id the response must name."""
    settings = settings_of(session)
    connection = await _configured(session, org_id)
    provider = service_provider(settings.public_url, org_id)
    toolkit = OneLogin_Saml2_Auth(_request_data(provider, {}), old_settings=_toolkit(provider, connection))
    url: str = toolkit.login(return_to=return_to)
    session.add(
        SamlRequest(
            id=toolkit.get_last_request_id(),
            org_id=org_id,
            return_to=return_to,
            link_user_id=link_user_id,
            expires_at=now() + timedelta(seconds=settings.auth.sign_in_ttl_seconds),
        )
    )
    await session.flush()
    return url


@dataclass(frozen=True)
class Asserted:
    """What a checked response says of the person."""

    name_id: str
    email: str | None
    name: str
    groups: list[str]
    assertion_id: str
    expires_at: datetime


def _first(attributes: dict[str, list[str]], configured: str, known: tuple[str, ...]) -> list[str]:
    for name in (configured,) if configured else known:
        if attributes.get(name):
            return [str(value) for value in attributes[name] if value]
    return []


def _asserted(toolkit: OneLogin_Saml2_Auth, connection: SamlConnection) -> Asserted:
    attributes: dict[str, list[str]] = toolkit.get_attributes()
    name_id = str(toolkit.get_nameid() or "")
    emails = _first(attributes, connection.email_attribute, EMAIL_ATTRIBUTES)
    email = emails[0] if emails else (name_id if "@" in name_id and not connection.email_attribute else None)
    names = _first(attributes, connection.name_attribute, NAME_ATTRIBUTES)
    not_on_or_after = toolkit.get_last_assertion_not_on_or_after()
    expires_at = datetime.fromtimestamp(not_on_or_after, UTC) if not_on_or_after else now() + timedelta(hours=1)
    return Asserted(
        name_id=name_id[:255],
        email=email.strip().lower() if email else None,
        name=names[0] if names else "",
        groups=_first(attributes, connection.groups_attribute, GROUP_ATTRIBUTES),
        assertion_id=str(toolkit.get_last_assertion_id() or ""),
        expires_at=expires_at,
    )


def _checked(
    provider: ServiceProvider, connection: SamlConnection, saml_response: str, request_id: str | None
) -> OneLogin_Saml2_Auth:
    toolkit = OneLogin_Saml2_Auth(
        _request_data(provider, {"SAMLResponse": saml_response}), old_settings=_toolkit(provider, connection)
    )
    try:
        toolkit.process_response(request_id=request_id)
    except MALFORMED as exc:
        raise SsoRefused(f"The SAML response is not valid: {exc}") from exc
    if toolkit.get_errors() or not toolkit.is_authenticated():
        reason = toolkit.get_last_error_reason() or ", ".join(toolkit.get_errors())
        log.info("saml.refused", org_id=str(connection.org_id), reason=reason)
        raise SsoRefused(f"The SAML response was refused: {reason}")
    return toolkit


def _in_response_to(provider: ServiceProvider, connection: SamlConnection, saml_response: str) -> str | None:
    try:
        found = OneLogin_Saml2_Response(_toolkit(provider, connection), saml_response).get_in_response_to()
    except MALFORMED as exc:
        raise SsoRefused("The SAML response is not readable") from exc
    return str(found) if found else None


async def _use_request(session: AsyncSession, org_id: uuid.UUID, request_id: str) -> SamlRequest:
    used: SamlRequest | None = await session.scalar(
        update(SamlRequest)
        .where(
            SamlRequest.id == request_id,
            SamlRequest.org_id == org_id,
            SamlRequest.used_at.is_(None),
            SamlRequest.expires_at > now(),
        )
        .values(used_at=now())
        .returning(SamlRequest)
    )
    if used is None:
        raise SsoRefused("The response answers a sign-on request that is unknown, expired or already used")
    return used


async def _record_assertion(session: AsyncSession, org_id: uuid.UUID, asserted: Asserted) -> None:
    if not asserted.assertion_id:
        raise SsoRefused("The assertion has no id")
    recorded = await session.scalar(
        insert(SamlAssertion)
        .values(org_id=org_id, assertion_id=asserted.assertion_id[:255], expires_at=asserted.expires_at)
        .on_conflict_do_nothing()
        .returning(SamlAssertion.assertion_id)
    )
    if recorded is None:
        raise SsoRefused("This assertion was already used: a replay is refused")


Outcome = Literal["signed_in", "linked"]


@dataclass(frozen=True)
class Finished:
    outcome: Outcome
    return_to: str | None  # the page the sign-on began on; for an IdP-initiated one, its RelayState (unchecked)
    signed_in: LoginResult


async def finish(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    saml_response: str,
    relay_state: str | None,
    client: ClientMeta,
) -> Finished:
    """Check a response posted to the org's ACS, then sign the person in (or connect the account that asked)."""
    settings = settings_of(session)
    connection = await _configured(session, org_id)
    provider = service_provider(settings.public_url, org_id)
    request_id = _in_response_to(provider, connection, saml_response)
    begun: SamlRequest | None = None
    if request_id is not None:
        begun = await _use_request(session, org_id, request_id)
    elif not connection.allow_idp_initiated:
        raise SsoRefused("Sign-on must start at Northstar for this organization")
    asserted = _asserted(_checked(provider, connection, saml_response, request_id), connection)
    if not asserted.name_id:
        raise SsoRefused("The assertion names nobody")
    await _record_assertion(session, org_id, asserted)
    return_to = begun.return_to if begun is not None else relay_state
    if begun is not None and begun.link_user_id is not None:
        await _link(session, connection, asserted, begun.link_user_id, client)
        user = await get_user(session, begun.link_user_id)
        outcome: Outcome = "linked"
    else:
        user = await _person(session, connection, asserted, client)
        outcome = "signed_in"
    await set_tenant_context(session, org_id=org_id, user_id=user.id)
    result = await authentication.sign_in_with(
        session, user=user, client=client, method="saml", org_id=org_id, single_sign_on=True
    )
    return Finished(outcome, return_to, result)


def _role_of(connection: SamlConnection, groups: list[str]) -> Role:
    """The strongest role any of the person's groups maps to, else the org's default."""
    mapped = [Role(connection.group_roles[group]) for group in groups if group in connection.group_roles]
    return min(mapped, key=ROLE_RANK.__getitem__) if mapped else Role(connection.default_role)


async def _refuse_deprovisioned(session: AsyncSession, org_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """A person the org's directory deactivated through SCIM is not let back in by an IdP's assertion."""
    inactive = await session.scalar(
        select(ScimUser.id).where(ScimUser.org_id == org_id, ScimUser.user_id == user_id, ScimUser.active.is_(False))
    )
    if inactive is not None:
        raise SsoRefused("Your organization's directory has deactivated your account", code="account_inactive")


async def _audit(
    session: AsyncSession,
    connection: SamlConnection,
    user_id: uuid.UUID,
    action: str,
    client: ClientMeta,
    **details: str,
) -> None:
    await authentication.user_event(
        session,
        org_id=connection.org_id,
        user_id=user_id,
        action=action,
        client=client,
        idp=connection.idp_entity_id,
        **details,
    )


async def _admit(
    session: AsyncSession, connection: SamlConnection, user_id: uuid.UUID, role: Role, client: ClientMeta
) -> None:
    """Make the person a member with the role their groups give, or bring their role in line with the groups
    (founders keep theirs; without group mapping a member's role is left as the org set it)."""
    org_id = connection.org_id
    await _refuse_deprovisioned(session, org_id, user_id)
    membership = await organizations.find_membership(session, org_id=org_id, user_id=user_id)
    if membership is None:
        if not connection.just_in_time:
            raise SsoRefused(
                "You are not a member of this organization; ask an admin to invite you", code="not_a_member"
            )
        await organizations.add_member(session, principal=scim.acting(org_id), user_id=user_id, role=role)
        await _audit(session, connection, user_id, "sso.provisioned", client, role=role.value)
    elif membership.role != Role.FOUNDER.value and connection.group_roles and membership.role != role.value:
        membership.role = role.value
        await _audit(session, connection, user_id, "sso.role_synced", client, role=role.value)


async def _person(session: AsyncSession, connection: SamlConnection, asserted: Asserted, client: ClientMeta) -> User:
    """The user the assertion is: by NameID, else the org's member with its e-mail, else a new account."""
    org_id = connection.org_id
    role = _role_of(connection, asserted.groups)
    linked = await session.scalar(
        select(SamlIdentity).where(SamlIdentity.org_id == org_id, SamlIdentity.name_id == asserted.name_id)
    )
    if linked is not None:
        linked.last_used_at = now()
        await _admit(session, connection, linked.user_id, role, client)
        return await get_user(session, linked.user_id)
    if asserted.email is None:
        raise SsoRefused("The assertion carries no e-mail address; map the e-mail attribute in the SSO settings")
    user = await user_by_email(session, asserted.email)
    await set_tenant_context(session, org_id=org_id)
    if user is None:
        if not connection.just_in_time:
            raise SsoRefused("You have no account here; ask an admin to invite you", code="not_a_member")
        user = await create_user(session, email=asserted.email, password=None, name=asserted.name)
        await set_tenant_context(session, org_id=org_id)
    else:
        membership = await organizations.find_membership(session, org_id=org_id, user_id=user.id)
        if membership is None or membership.role == Role.FOUNDER.value:
            raise SsoRefused(
                f"An account with {asserted.email} already exists. Log in with its password, then connect your "
                "organization's single sign-on from your account page.",
                code="sso_link_required",
            )
    await _admit(session, connection, user.id, role, client)
    session.add(SamlIdentity(org_id=org_id, user_id=user.id, name_id=asserted.name_id, last_used_at=now()))
    await session.flush()
    return user


async def _link(
    session: AsyncSession, connection: SamlConnection, asserted: Asserted, user_id: uuid.UUID, client: ClientMeta
) -> None:
    """Connect a signed-in user's account to the NameID the IdP just asserted (and admit them to the org)."""
    org_id = connection.org_id
    taken = await session.scalar(
        select(SamlIdentity).where(SamlIdentity.org_id == org_id, SamlIdentity.name_id == asserted.name_id)
    )
    if taken is not None and taken.user_id != user_id:
        raise SsoRefused("That identity is connected to another account")
    if taken is None:
        await session.execute(
            delete(SamlIdentity).where(SamlIdentity.org_id == org_id, SamlIdentity.user_id == user_id)
        )
        session.add(SamlIdentity(org_id=org_id, user_id=user_id, name_id=asserted.name_id, last_used_at=now()))
        await session.flush()
    await _admit(session, connection, user_id, _role_of(connection, asserted.groups), client)
    await _audit(session, connection, user_id, "sso.linked", client)


async def purge_finished(session: AsyncSession) -> int:
    """The org's sign-on requests over for a day are forgotten, and assertion ids an hour past expiry (beyond the
    clock drift an assertion is still accepted in)."""
    requests = await execute_count(
        session, delete(SamlRequest).where(SamlRequest.expires_at < now() - timedelta(days=1))
    )
    assertions = await execute_count(
        session, delete(SamlAssertion).where(SamlAssertion.expires_at < now() - timedelta(hours=1))
    )
    return requests + assertions
