"""SCIM 2.0 Groups: an organization's teams, as its identity provider sees them.

Every team of the org is a Group (``id`` the team's, ``displayName`` its name, ``externalId`` the provider's id of
it); a Group made through SCIM is a new team. A Group's ``members`` are the provisioned Users (``scim.py``) in the
team; the team's other members (added by hand in the console) are neither listed nor touched. A User joins a team
as a ``member`` of it, and only while active: a deactivated person is in no team, and a Group naming one answers
400. Deleting a Group deletes the team.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.models import ScimUser, Team, TeamMember, User
from northstar.accounts.service import pii, projects
from northstar.accounts.service.scim import GROUP_SCHEMA, PATCH_SCHEMA, ScimError, acting, listed
from northstar.core.db import settings_of
from northstar.core.http import Conflict
from northstar.core.permissions import Role

FILTER = re.compile(r'^\s*(displayName|externalId)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)
MEMBER_PATH = re.compile(r'^members\[\s*value\s+eq\s+"([^"]+)"\s*\]$', re.IGNORECASE)


async def _members(session: AsyncSession, team: Team) -> list[tuple[ScimUser, User]]:
    rows = await session.execute(
        select(ScimUser, User)
        .join(User, User.id == ScimUser.user_id)
        .join(TeamMember, (TeamMember.user_id == ScimUser.user_id) & (TeamMember.org_id == ScimUser.org_id))
        .where(TeamMember.team_id == team.id, ScimUser.org_id == team.org_id)
        .order_by(ScimUser.created_at)
    )
    return [(row[0], row[1]) for row in rows.all()]


def _resource(session: AsyncSession, team: Team, members: list[tuple[ScimUser, User]], base_url: str) -> dict[str, Any]:
    settings = settings_of(session)
    found: dict[str, Any] = {
        "schemas": [GROUP_SCHEMA],
        "id": str(team.id),
        "displayName": team.name,
        "members": [
            {
                "value": str(scim_user.id),
                "$ref": f"{base_url}/Users/{scim_user.id}",
                "display": pii.open_token(settings, user.id, user.full_name_encrypted)
                or pii.open_token(settings, user.id, user.email_encrypted),
                "type": "User",
            }
            for scim_user, user in members
        ],
        "meta": {
            "resourceType": "Group",
            "created": team.created_at.isoformat(),
            "location": f"{base_url}/Groups/{team.id}",
        },
    }
    if team.scim_external_id is not None:
        found["externalId"] = team.scim_external_id
    return found


async def _team(session: AsyncSession, org_id: uuid.UUID, resource_id: str) -> Team:
    try:
        wanted = uuid.UUID(resource_id)
    except ValueError:
        raise ScimError(404, "No such group") from None
    team = await session.scalar(select(Team).where(Team.org_id == org_id, Team.id == wanted))
    if team is None:
        raise ScimError(404, "No such group")
    return team


def _member_ids(value: Any) -> list[uuid.UUID]:
    if not isinstance(value, list):
        raise ScimError(400, "members must be a list of {value}", "invalidValue")
    found = []
    for member in value:
        try:
            found.append(uuid.UUID(str(member["value"])))
        except (KeyError, TypeError, ValueError):
            raise ScimError(400, "Each member needs the value of a provisioned User's id", "invalidValue") from None
    return found


async def _set_members(session: AsyncSession, team: Team, wanted: list[uuid.UUID]) -> None:
    """Make the team's provisioned members exactly ``wanted`` (SCIM User ids), leaving the others alone."""
    users = dict(
        (await session.execute(
            select(ScimUser.id, ScimUser.user_id).where(ScimUser.org_id == team.org_id, ScimUser.active.is_(True))
        )).tuples().all()
    )  # fmt: skip
    unknown = [str(member) for member in wanted if member not in users]
    if unknown:
        raise ScimError(400, f"Not active provisioned users: {', '.join(unknown)}", "invalidValue")
    principal = acting(team.org_id)
    current = {scim_user.id for scim_user, _ in await _members(session, team)}
    for scim_id in current - set(wanted):
        await projects.remove_team_member(session, principal=principal, team_id=team.id, user_id=users[scim_id])
    for scim_id in dict.fromkeys(wanted):
        if scim_id not in current:
            await projects.set_team_role(
                session, principal=principal, team_id=team.id, user_id=users[scim_id], role=Role.MEMBER
            )


def _display_name(body: dict[str, Any]) -> str:
    name = body.get("displayName")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise ScimError(400, "displayName is required, at most 255 characters", "invalidValue")
    return name.strip()


def _external_id(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > 255):
        raise ScimError(400, "externalId must be a string of at most 255 characters", "invalidValue")
    return value


def _group_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or GROUP_SCHEMA not in (body.get("schemas") or []):
        raise ScimError(400, f"schemas must include {GROUP_SCHEMA}", "invalidSyntax")
    return body


async def create(session: AsyncSession, *, org_id: uuid.UUID, body: Any, base_url: str) -> dict[str, Any]:
    given = _group_body(body)
    try:
        async with session.begin_nested():
            team = await projects.create_team(
                session, org_id=org_id, name=_display_name(given), description="", project_id=None
            )
    except Conflict:
        raise ScimError(409, "A team with this displayName already exists", "uniqueness") from None
    team.scim_external_id = _external_id(given.get("externalId"))
    await _set_members(session, team, _member_ids(given.get("members", [])))
    await session.flush()
    return _resource(session, team, await _members(session, team), base_url)


async def get(session: AsyncSession, *, org_id: uuid.UUID, resource_id: str, base_url: str) -> dict[str, Any]:
    team = await _team(session, org_id, resource_id)
    return _resource(session, team, await _members(session, team), base_url)


async def list_groups(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    filter: str | None,
    start_index: int | None,
    count: int | None,
    base_url: str,
) -> dict[str, Any]:
    query = select(Team).where(Team.org_id == org_id)
    if filter:
        matched = FILTER.match(filter)
        if matched is None:
            raise ScimError(400, 'Filters supported: displayName eq "…" and externalId eq "…"', "invalidFilter")
        value = matched[2]
        if matched[1].lower() == "displayname":
            query = query.where(func.lower(Team.name) == value.lower())
        else:
            query = query.where(Team.scim_external_id == value)

    async def shown(row: Any) -> dict[str, Any]:
        return _resource(session, row[0], await _members(session, row[0]), base_url)

    ordered = query.order_by(Team.created_at, Team.id)
    return await listed(session, ordered, start_index=start_index, count=count, shown=shown)


async def _rename(session: AsyncSession, team: Team, name: str) -> None:
    try:
        async with session.begin_nested():
            await projects.update_team(session, org_id=team.org_id, team_id=team.id, name=name, description=None)
    except Conflict:
        raise ScimError(409, "A team with this displayName already exists", "uniqueness") from None


async def replace(
    session: AsyncSession, *, org_id: uuid.UUID, resource_id: str, body: Any, base_url: str
) -> dict[str, Any]:
    team = await _team(session, org_id, resource_id)
    given = _group_body(body)
    await _rename(session, team, _display_name(given))
    team.scim_external_id = _external_id(given.get("externalId"))
    await _set_members(session, team, _member_ids(given.get("members", [])))
    await session.flush()
    return _resource(session, team, await _members(session, team), base_url)


async def patch(
    session: AsyncSession, *, org_id: uuid.UUID, resource_id: str, body: Any, base_url: str
) -> dict[str, Any]:
    """``add``/``remove``/``replace`` of ``members`` (a list, or one member by ``members[value eq "…"]``),
    ``displayName`` and ``externalId``, applied in order."""
    team = await _team(session, org_id, resource_id)
    if not isinstance(body, dict) or PATCH_SCHEMA not in (body.get("schemas") or []):
        raise ScimError(400, f"schemas must include {PATCH_SCHEMA}", "invalidSyntax")
    operations = body.get("Operations")
    if not isinstance(operations, list) or not operations:
        raise ScimError(400, "Operations must be a non-empty list", "invalidSyntax")
    members = [scim_user.id for scim_user, _ in await _members(session, team)]
    for operation in operations:
        if not isinstance(operation, dict):
            raise ScimError(400, "Each operation must be an object", "invalidSyntax")
        op, path, value = str(operation.get("op", "")).lower(), str(operation.get("path") or ""), operation.get("value")
        single = MEMBER_PATH.match(path)
        if op not in ("add", "remove", "replace"):
            raise ScimError(400, "op must be add, replace or remove", "invalidSyntax")
        if single is not None and op == "remove":
            members = [member for member in members if str(member) != single[1]]
        elif path.lower() == "members":
            given = [] if op == "remove" and value is None else _member_ids(value)
            if op == "add":
                members += given
            elif op == "remove":
                members = [member for member in members if member not in given] if given else []
            else:
                members = given
        elif path.lower() == "displayname":
            await _rename(session, team, _display_name({"displayName": value}))
        elif not path and isinstance(value, dict) and "displayName" in value:  # as Azure AD sends it
            await _rename(session, team, _display_name(value))
        elif path.lower() == "externalid":
            team.scim_external_id = None if op == "remove" else _external_id(value)
        else:
            raise ScimError(400, f"{path or 'that value'} cannot be changed through PATCH", "invalidPath")
    await _set_members(session, team, members)
    await session.flush()
    return _resource(session, team, await _members(session, team), base_url)


async def delete(session: AsyncSession, *, org_id: uuid.UUID, resource_id: str) -> None:
    team = await _team(session, org_id, resource_id)
    await projects.delete_team(session, org_id=org_id, team_id=team.id)
