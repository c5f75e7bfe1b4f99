"""SCIM 2.0 provisioning (RFC 7643, 7644) of an organization's members by its identity provider.

A SCIM User is a person the org's provider provisions (``core.scim_users``): a platform user (found by e-mail, or
made without a password, as sign-up through a provider makes one) who is a member of the org while the resource is
``active``. Deactivating it (``active: false``, by PUT or PATCH) removes the membership, which ends the person's
sessions in the org at once (every request checks membership) and revokes their refresh tokens there and the API
keys they made; activating it again makes them a member with the role the resource carries. Deleting it does the
same as deactivating and forgets the resource. Founders are never changed through SCIM.

Groups are the org's teams (``scim_groups.py``).

``userName`` is the user's e-mail and ``displayName`` their name: both stay encrypted on the user (``pii``), so a
``userName eq`` filter is looked up by the e-mail's blind index. The provider authenticates with a bearer token of
the org's (``scim_<id>_<secret>``, kept as its HMAC; a new one revokes the earlier ones).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVarTuple

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.models import RefreshToken, ScimToken, ScimUser, User
from northstar.accounts.service import organizations, pii
from northstar.accounts.service.users import create_user, now, user_by_email
from northstar.core.context import ClientMeta
from northstar.core.db import set_tenant_context, settings_of
from northstar.core.http import AppError
from northstar.core.permissions import Principal, Role
from northstar.core.security import auth_keys, constant_time_equal, new_secret, split_credential

TOKEN_PREFIX = "scim_"  # noqa: S105 - a prefix, not a secret
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
MAX_RESULTS = 1000
DEFAULT_COUNT = 100
PROVISIONED_ROLES = (Role.ADMIN, Role.MEMBER, Role.ANALYST, Role.INVESTOR)
FILTER = re.compile(r'^\s*(userName|externalId)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)
ROLE_EXTENSION = "urn:northstar:params:scim:schemas:extension:2.0:Membership"
Columns = TypeVarTuple("Columns")


class ScimError(AppError):
    """An error in SCIM's own shape (``scimType`` says which kind, RFC 7644 §3.12)."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail, status=status, code=scim_type or "scim_error")
        self.scim_type = scim_type

    def body(self) -> dict[str, Any]:
        found: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(self.status), "detail": self.message}
        if self.scim_type:
            found["scimType"] = self.scim_type
        return found


# -- the org's token ---------------------------------------------------------------------------------------------


async def new_token(session: AsyncSession, *, principal: Principal) -> str:
    """A new bearer token for the org's provider, shown once; earlier tokens stop working."""
    await revoke_tokens(session, org_id=principal.org_id)
    secret = new_secret()
    token = ScimToken(
        id=uuid.uuid4(),
        org_id=principal.org_id,
        secret_hash=auth_keys(settings_of(session)).hash_secret(secret),
        created_by=principal.user_id,
    )
    session.add(token)
    await session.flush()
    return f"{TOKEN_PREFIX}{token.id.hex}_{secret}"


async def revoke_tokens(session: AsyncSession, *, org_id: uuid.UUID) -> None:
    await session.execute(
        update(ScimToken).where(ScimToken.org_id == org_id, ScimToken.revoked_at.is_(None)).values(revoked_at=now())
    )


async def token_status(session: AsyncSession, *, org_id: uuid.UUID) -> ScimToken | None:
    """The org's live token (never its secret), if it has one."""
    query = select(ScimToken).where(ScimToken.org_id == org_id, ScimToken.revoked_at.is_(None))
    return await session.scalar(query.order_by(ScimToken.created_at.desc()).limit(1))


async def org_of(session: AsyncSession, token: str | None) -> uuid.UUID:
    """The org a bearer token provisions for, the session bound to it; 401 for anything else."""
    parsed = split_credential(token or "", TOKEN_PREFIX)
    if parsed is None:
        raise ScimError(401, "A SCIM bearer token is required")
    token_id, secret = parsed
    await set_tenant_context(session, credential_id=token_id)
    found = await session.get(ScimToken, token_id)
    expected = auth_keys(settings_of(session)).hash_secret(secret)
    if found is None or found.revoked_at is not None or not constant_time_equal(found.secret_hash, expected):
        raise ScimError(401, "The SCIM bearer token is not valid")
    await set_tenant_context(session, org_id=found.org_id)
    found.last_used_at = now()
    return found.org_id


def acting(org_id: uuid.UUID) -> Principal:
    """What provisioning may do: an admin's changes to members (so never a founder's)."""
    return Principal(org_id=org_id, role=Role.ADMIN)


# -- resources -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserIn:
    user_name: str
    display_name: str | None
    active: bool
    external_id: str | None
    role: Role


def _role(body: dict[str, Any], default: Role) -> Role:
    extension = body.get(ROLE_EXTENSION)
    if extension is None:
        return default
    value = extension.get("role") if isinstance(extension, dict) else None
    allowed = ", ".join(role.value for role in PROVISIONED_ROLES)
    try:
        role = Role(str(value))
    except ValueError:
        raise ScimError(400, f"role must be one of {allowed}", "invalidValue") from None
    if role not in PROVISIONED_ROLES:
        raise ScimError(400, "SCIM does not make founders", "invalidValue")
    return role


def parse_user(body: Any, *, default_role: Role = Role.MEMBER) -> UserIn:
    if not isinstance(body, dict):
        raise ScimError(400, "The body must be a JSON object", "invalidSyntax")
    if USER_SCHEMA not in (body.get("schemas") or []):
        raise ScimError(400, f"schemas must include {USER_SCHEMA}", "invalidSyntax")
    user_name = body.get("userName")
    if not isinstance(user_name, str) or "@" not in user_name or len(user_name) > 320:
        raise ScimError(400, "userName must be the person's e-mail address", "invalidValue")
    active = body.get("active", True)
    if not isinstance(active, bool):
        raise ScimError(400, "active must be true or false", "invalidValue")
    display = body.get("displayName")
    given_name = body.get("name")
    name: dict[str, Any] = given_name if isinstance(given_name, dict) else {}
    if not isinstance(display, str) or not display.strip():
        parts = [name.get("givenName"), name.get("familyName")]
        display = name.get("formatted") or " ".join(part for part in parts if isinstance(part, str) and part) or None
    external = body.get("externalId")
    if external is not None and (not isinstance(external, str) or len(external) > 255):
        raise ScimError(400, "externalId must be a string of at most 255 characters", "invalidValue")
    return UserIn(pii.normalise_email(user_name), display, active, external, _role(body, default_role))


def _resource(session: AsyncSession, scim_user: ScimUser, user: User, base_url: str) -> dict[str, Any]:
    settings = settings_of(session)
    email = pii.open_token(settings, user.id, user.email_encrypted)
    name = pii.open_token(settings, user.id, user.full_name_encrypted)
    found: dict[str, Any] = {
        "schemas": [USER_SCHEMA, ROLE_EXTENSION],
        "id": str(scim_user.id),
        "userName": email,
        "displayName": name or email,
        "name": {"formatted": name or email},
        "emails": [{"value": email, "type": "work", "primary": True}],
        "active": scim_user.active,
        ROLE_EXTENSION: {"role": scim_user.role},
        "meta": {
            "resourceType": "User",
            "created": scim_user.created_at.isoformat(),
            "lastModified": scim_user.updated_at.isoformat(),
            "location": f"{base_url}/Users/{scim_user.id}",
            "version": f'W/"{int(scim_user.updated_at.timestamp() * 1_000_000)}"',
        },
    }
    if scim_user.external_id is not None:
        found["externalId"] = scim_user.external_id
    return found


async def _loaded(session: AsyncSession, org_id: uuid.UUID, resource_id: str) -> tuple[ScimUser, User]:
    try:
        wanted = uuid.UUID(resource_id)
    except ValueError:
        raise ScimError(404, "No such user") from None
    row = (
        await session.execute(
            select(ScimUser, User)
            .join(User, User.id == ScimUser.user_id)
            .where(ScimUser.org_id == org_id, ScimUser.id == wanted)
        )
    ).first()
    if row is None:
        raise ScimError(404, "No such user")
    return row[0], row[1]


async def _apply(session: AsyncSession, scim_user: ScimUser, user: User, given: UserIn, *, client: ClientMeta) -> None:
    """Make the membership what the resource says: a member with its role while active, none while not."""
    membership = await organizations.find_membership(session, org_id=scim_user.org_id, user_id=user.id)
    if membership is not None and membership.role == Role.FOUNDER.value:
        raise ScimError(403, "A founder is not provisioned through SCIM", "mutability")
    if given.display_name and given.display_name != pii.open_token(
        settings_of(session), user.id, user.full_name_encrypted
    ):
        pii.seal_full_name(settings_of(session), user, given.display_name)
    scim_user.active, scim_user.external_id, scim_user.role = given.active, given.external_id, given.role.value
    principal = acting(scim_user.org_id)
    if given.active and membership is None:
        await organizations.add_member(session, principal=principal, user_id=user.id, role=given.role)
    elif given.active and membership is not None and membership.role != given.role.value:
        membership.role = given.role.value
    elif not given.active and membership is not None:
        await organizations.remove_member(session, principal=principal, user_id=user.id, client=client)
        await session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.org_id == scim_user.org_id,
                RefreshToken.user_id == user.id,
                RefreshToken.revoked_at.is_(None),
            )
            .values(revoked_at=now())
        )
    scim_user.updated_at = now()
    await session.flush()


async def create(
    session: AsyncSession, *, org_id: uuid.UUID, body: Any, base_url: str, client: ClientMeta
) -> dict[str, Any]:
    given = parse_user(body)
    user = await user_by_email(session, given.user_name)
    if user is None:
        user = await create_user(session, email=given.user_name, password=None, name=given.display_name or "")
        await set_tenant_context(session, org_id=org_id)
    elif await session.scalar(select(ScimUser.id).where(ScimUser.org_id == org_id, ScimUser.user_id == user.id)):
        raise ScimError(409, "A user with this userName is already provisioned", "uniqueness")
    scim_user = ScimUser(id=uuid.uuid4(), org_id=org_id, user_id=user.id, created_at=now(), updated_at=now())
    session.add(scim_user)
    await session.flush()
    await _apply(session, scim_user, user, given, client=client)
    return _resource(session, scim_user, user, base_url)


async def get(session: AsyncSession, *, org_id: uuid.UUID, resource_id: str, base_url: str) -> dict[str, Any]:
    scim_user, user = await _loaded(session, org_id, resource_id)
    return _resource(session, scim_user, user, base_url)


async def listed(
    session: AsyncSession,
    query: Select[*Columns],
    *,
    start_index: int | None,
    count: int | None,
    shown: Callable[[Any], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """A ListResponse of one page of ``query`` (already ordered): ``startIndex`` 1-based, ``count`` at most
    ``MAX_RESULTS`` (0: the total alone), each row made a resource by ``shown``."""
    start = max(1, start_index or 1)
    wanted = DEFAULT_COUNT if count is None else max(0, min(count, MAX_RESULTS))
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = (await session.execute(query.offset(start - 1).limit(wanted))).all()
    resources = [await shown(row) for row in rows]
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


async def list_users(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    filter: str | None,
    start_index: int | None,
    count: int | None,
    base_url: str,
) -> dict[str, Any]:
    """A page of the org's users, oldest first, with ``userName eq`` or ``externalId eq`` filtering."""
    query = select(ScimUser, User).join(User, User.id == ScimUser.user_id).where(ScimUser.org_id == org_id)
    if filter:
        matched = FILTER.match(filter)
        if matched is None:
            raise ScimError(400, 'Filters supported: userName eq "…" and externalId eq "…"', "invalidFilter")
        attribute, value = matched[1].lower(), matched[2].replace('\\"', '"')
        if attribute == "username":
            query = query.where(User.email_blind_index == pii.email_index(settings_of(session), value))
        else:
            query = query.where(ScimUser.external_id == value)

    async def shown(row: Any) -> dict[str, Any]:
        return _resource(session, row[0], row[1], base_url)

    ordered = query.order_by(ScimUser.created_at, ScimUser.id)
    return await listed(session, ordered, start_index=start_index, count=count, shown=shown)


async def replace(
    session: AsyncSession, *, org_id: uuid.UUID, resource_id: str, body: Any, base_url: str, client: ClientMeta
) -> dict[str, Any]:
    scim_user, user = await _loaded(session, org_id, resource_id)
    given = parse_user(body, default_role=Role(scim_user.role))
    if given.user_name != pii.open_token(settings_of(session), user.id, user.email_encrypted):
        raise ScimError(400, "userName is the person's account e-mail and cannot change here", "mutability")
    await _apply(session, scim_user, user, given, client=client)
    return _resource(session, scim_user, user, base_url)


PATCHABLE = {"active", "displayname", "externalid", "name.formatted", "name.givenname", "name.familyname"}


async def patch(
    session: AsyncSession, *, org_id: uuid.UUID, resource_id: str, body: Any, base_url: str, client: ClientMeta
) -> dict[str, Any]:
    """PATCH operations (add, replace, remove) on ``active``, ``displayName``, ``name`` and ``externalId``, with a
    path or (as Azure AD sends them) a value object; the result is applied as a whole."""
    scim_user, user = await _loaded(session, org_id, resource_id)
    if not isinstance(body, dict) or PATCH_SCHEMA not in (body.get("schemas") or []):
        raise ScimError(400, f"schemas must include {PATCH_SCHEMA}", "invalidSyntax")
    operations = body.get("Operations")
    if not isinstance(operations, list) or not operations:
        raise ScimError(400, "Operations must be a non-empty list", "invalidSyntax")
    current = _resource(session, scim_user, user, base_url)
    state: dict[str, Any] = {
        "active": current["active"],
        "displayname": current["displayName"],
        "externalid": current.get("externalId"),
    }
    for operation in operations:
        if not isinstance(operation, dict):
            raise ScimError(400, "Each operation must be an object", "invalidSyntax")
        op = str(operation.get("op", "")).lower()
        if op not in ("add", "replace", "remove"):
            raise ScimError(400, "op must be add, replace or remove", "invalidSyntax")
        path = operation.get("path")
        value = operation.get("value")
        changes = {str(path).lower(): value} if path else value
        if not isinstance(changes, dict):
            raise ScimError(400, "An operation without a path needs an object value", "invalidSyntax")
        for key, item in _flattened(changes).items():
            if key not in PATCHABLE:
                raise ScimError(400, f"{key} cannot be changed through PATCH", "invalidPath")
            if key.startswith("name."):
                key = "displayname"
            state[key] = None if op == "remove" else item
    given = UserIn(
        user_name=current["userName"],
        display_name=state["displayname"] if isinstance(state["displayname"], str) else None,
        active=_boolean(state["active"]),
        external_id=state["externalid"] if isinstance(state["externalid"], str) else None,
        role=Role(scim_user.role),
    )
    await _apply(session, scim_user, user, given, client=client)
    return _resource(session, scim_user, user, base_url)


def _flattened(changes: dict[str, Any]) -> dict[str, Any]:
    """``{"name": {"givenName": "Ada"}}`` as ``{"name.givenname": "Ada"}``; keys lower case."""
    flat: dict[str, Any] = {}
    for key, value in changes.items():
        if isinstance(value, dict) and key.lower() == "name":
            for inner, item in value.items():
                flat[f"name.{inner.lower()}"] = item
        else:
            flat[key.lower()] = value
    return flat


def _boolean(value: Any) -> bool:
    """``active`` as providers send it: true, or (some do) the string "True"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ScimError(400, "active must be true or false", "invalidValue")


async def delete(session: AsyncSession, *, org_id: uuid.UUID, resource_id: str, client: ClientMeta) -> None:
    scim_user, user = await _loaded(session, org_id, resource_id)
    given = UserIn(
        user_name="", display_name=None, active=False, external_id=scim_user.external_id, role=Role(scim_user.role)
    )
    await _apply(session, scim_user, user, given, client=client)
    await session.delete(scim_user)
    await session.flush()


# -- discovery (RFC 7644 §4) ---------------------------------------------------------------------------------------

CONFIG_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"


def service_provider_config(base_url: str) -> dict[str, Any]:
    return {
        "schemas": [CONFIG_SCHEMA],
        "documentationUri": "https://github.com/northstar/northstar/blob/main/docs/identity.md",
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "The organization's SCIM token, made in its settings",
                "primary": True,
            }
        ],
        "meta": {"resourceType": "ServiceProviderConfig", "location": f"{base_url}/ServiceProviderConfig"},
    }


def resource_types(base_url: str) -> dict[str, Any]:
    user = {
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "schema": USER_SCHEMA,
        "schemaExtensions": [{"schema": ROLE_EXTENSION, "required": False}],
        "meta": {"resourceType": "ResourceType", "location": f"{base_url}/ResourceTypes/User"},
    }
    group = {
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": "Group",
        "name": "Group",
        "endpoint": "/Groups",
        "schema": GROUP_SCHEMA,
        "meta": {"resourceType": "ResourceType", "location": f"{base_url}/ResourceTypes/Group"},
    }
    return _listed([user, group])


def _attribute(name: str, kind: str = "string", **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "multiValued": False,
        "required": False,
        "caseExact": False,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
        **more,
    }


def schemas() -> dict[str, Any]:
    user = {
        "schemas": [SCHEMA_SCHEMA],
        "id": USER_SCHEMA,
        "name": "User",
        "description": "A member of the organization, provisioned by its identity provider",
        "attributes": [
            _attribute("userName", required=True, uniqueness="server", description="the person's e-mail"),
            _attribute("displayName"),
            _attribute(
                "name",
                "complex",
                subAttributes=[_attribute("formatted"), _attribute("givenName"), _attribute("familyName")],
            ),
            _attribute(
                "emails",
                "complex",
                multiValued=True,
                mutability="readOnly",
                subAttributes=[_attribute("value"), _attribute("type"), _attribute("primary", "boolean")],
            ),
            _attribute("active", "boolean"),
            _attribute("externalId", caseExact=True),
        ],
    }
    membership = {
        "schemas": [SCHEMA_SCHEMA],
        "id": ROLE_EXTENSION,
        "name": "Membership",
        "description": "The role the person has in the organization",
        "attributes": [
            _attribute("role", canonicalValues=[role.value for role in PROVISIONED_ROLES], description="default member")
        ],
    }
    group = {
        "schemas": [SCHEMA_SCHEMA],
        "id": GROUP_SCHEMA,
        "name": "Group",
        "description": "A team of the organization",
        "attributes": [
            _attribute("displayName", required=True, uniqueness="server"),
            _attribute(
                "members",
                "complex",
                multiValued=True,
                subAttributes=[_attribute("value"), _attribute("display", mutability="readOnly")],
            ),
            _attribute("externalId", caseExact=True),
        ],
    }
    return _listed([user, group, membership])


def _listed(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A whole list, in one page."""
    count = len(resources)
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": count,
        "startIndex": 1,
        "itemsPerPage": count,
        "Resources": resources,
    }
