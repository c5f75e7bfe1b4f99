"""Projects and teams, and the roles members hold at project or team scope."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any, TypeVar

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.models import Membership, Project, ProjectMember, Team, TeamMember
from northstar.accounts.service.organizations import ensure_can_change, ensure_can_grant
from northstar.core.db import fetch_page, fetch_rows_page, flush_unique, get_in_org
from northstar.core.http import Forbidden, NotFound
from northstar.core.permissions import Principal, Role

# What a project listing shows, read as plain rows (no ORM objects): the hottest authenticated read.
_LISTED = (Project.id, Project.name, Project.description, Project.created_by, Project.created_at, Project.updated_at)


async def list_projects(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    search: str | None,
    only: Collection[uuid.UUID] | None,
    offset: int,
    limit: int,
) -> tuple[list[Row[*tuple[Any, ...]]], int]:
    """The org's projects, or ``only`` these (a caller who reads projects through project grants alone)."""
    query = select(*_LISTED).where(Project.org_id == org_id)
    if only is not None:
        query = query.where(Project.id.in_(only))
    if search:
        query = query.where(Project.name.icontains(search, autoescape=True))
    return await fetch_rows_page(
        session, query.order_by(Project.created_at.desc(), Project.id), offset=offset, limit=limit
    )


async def get_project(session: AsyncSession, *, org_id: uuid.UUID, project_id: uuid.UUID) -> Project:
    return await get_in_org(session, Project, project_id, org_id=org_id, missing="No such project")


async def create_project(session: AsyncSession, *, principal: Principal, name: str, description: str) -> Project:
    project = Project(
        id=uuid.uuid4(), org_id=principal.org_id, name=name, description=description, created_by=principal.user_id
    )
    session.add(project)
    await session.flush()
    return project


def _ensure_may_change(principal: Principal, project: Project, action: str) -> None:
    if not principal.can(action, "projects", owner_id=project.created_by, project_id=project.id):
        raise Forbidden(f"Your role cannot {action} this project")


async def update_project(
    session: AsyncSession,
    *,
    principal: Principal,
    project_id: uuid.UUID,
    name: str | None,
    description: str | None,
) -> Project:
    project = await get_project(session, org_id=principal.org_id, project_id=project_id)
    _ensure_may_change(principal, project, "update")
    if name is not None:
        project.name = name
    if description is not None:
        project.description = description
    await session.flush()
    return project


async def delete_project(session: AsyncSession, *, principal: Principal, project_id: uuid.UUID) -> None:
    project = await get_project(session, org_id=principal.org_id, project_id=project_id)
    _ensure_may_change(principal, project, "delete")
    await session.delete(project)
    await session.flush()


async def _ensure_member(session: AsyncSession, *, org_id: uuid.UUID, user_id: uuid.UUID) -> None:
    found = await session.scalar(
        select(Membership.id).where(Membership.org_id == org_id, Membership.user_id == user_id)
    )
    if found is None:
        raise NotFound("No such member in this organization")


ScopedGrant = TypeVar("ScopedGrant", ProjectMember, TeamMember)


async def _list_scoped(
    session: AsyncSession, model: type[ScopedGrant], scope: dict[str, uuid.UUID]
) -> list[ScopedGrant]:
    filters = [getattr(model, column) == value for column, value in scope.items()]
    return list((await session.scalars(select(model).where(*filters).order_by(model.created_at))).all())


async def _grant_scoped(
    session: AsyncSession,
    model: type[ScopedGrant],
    *,
    principal: Principal,
    scope: dict[str, uuid.UUID],
    user_id: uuid.UUID,
    role: Role,
) -> ScopedGrant:
    """Give ``user_id`` a role on one project or team (creating or changing the grant).

    The caller's rank there (org role or their own grant on it) bounds both the role given and the one replaced.
    """
    ensure_can_grant(principal, role, **scope)
    await _ensure_member(session, org_id=principal.org_id, user_id=user_id)
    filters = [getattr(model, column) == value for column, value in scope.items()]
    grant = await session.scalar(select(model).where(model.user_id == user_id, *filters))
    if grant is not None:
        ensure_can_change(principal, Role(grant.role), verb="changed", **scope)
    if grant is None:
        grant = model(org_id=principal.org_id, user_id=user_id, role=role.value, **scope)
        session.add(grant)
    else:
        grant.role = role.value
    await session.flush()
    return grant


async def _revoke_scoped(
    session: AsyncSession,
    model: type[ScopedGrant],
    *,
    principal: Principal,
    scope: dict[str, uuid.UUID],
    user_id: uuid.UUID,
    missing: str,
) -> None:
    filters = [getattr(model, column) == value for column, value in scope.items()]
    grant = await session.scalar(select(model).where(model.user_id == user_id, *filters))
    if grant is None:
        raise NotFound(missing)
    ensure_can_change(principal, Role(grant.role), verb="removed", **scope)
    await session.delete(grant)
    await session.flush()


async def list_project_members(
    session: AsyncSession, *, org_id: uuid.UUID, project_id: uuid.UUID
) -> list[ProjectMember]:
    await get_project(session, org_id=org_id, project_id=project_id)
    return await _list_scoped(session, ProjectMember, {"project_id": project_id})


async def set_project_role(
    session: AsyncSession, *, principal: Principal, project_id: uuid.UUID, user_id: uuid.UUID, role: Role
) -> ProjectMember:
    await get_project(session, org_id=principal.org_id, project_id=project_id)
    return await _grant_scoped(
        session, ProjectMember, principal=principal, scope={"project_id": project_id}, user_id=user_id, role=role
    )


async def remove_project_role(
    session: AsyncSession, *, principal: Principal, project_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    await _revoke_scoped(
        session,
        ProjectMember,
        principal=principal,
        scope={"project_id": project_id},
        user_id=user_id,
        missing="This member has no role on this project",
    )


async def list_teams(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    project_id: uuid.UUID | None,
    only: Collection[uuid.UUID] | None,
    offset: int,
    limit: int,
) -> tuple[list[Team], int]:
    query = select(Team).where(Team.org_id == org_id)
    if only is not None:
        query = query.where(Team.id.in_(only))
    if project_id:
        query = query.where(Team.project_id == project_id)
    return await fetch_page(session, query.order_by(Team.name), offset=offset, limit=limit)


async def get_team(session: AsyncSession, *, org_id: uuid.UUID, team_id: uuid.UUID) -> Team:
    return await get_in_org(session, Team, team_id, org_id=org_id, missing="No such team")


async def create_team(
    session: AsyncSession, *, org_id: uuid.UUID, name: str, description: str, project_id: uuid.UUID | None
) -> Team:
    if project_id:
        await get_project(session, org_id=org_id, project_id=project_id)
    team = Team(id=uuid.uuid4(), org_id=org_id, name=name, description=description, project_id=project_id)
    session.add(team)
    await flush_unique(session, "A team with this name already exists")
    return team


async def update_team(
    session: AsyncSession, *, org_id: uuid.UUID, team_id: uuid.UUID, name: str | None, description: str | None
) -> Team:
    team = await get_team(session, org_id=org_id, team_id=team_id)
    if name is not None:
        team.name = name
    if description is not None:
        team.description = description
    await flush_unique(session, "A team with this name already exists")
    return team


async def delete_team(session: AsyncSession, *, org_id: uuid.UUID, team_id: uuid.UUID) -> None:
    team = await get_team(session, org_id=org_id, team_id=team_id)
    await session.delete(team)
    await session.flush()


async def list_team_members(session: AsyncSession, *, org_id: uuid.UUID, team_id: uuid.UUID) -> list[TeamMember]:
    await get_team(session, org_id=org_id, team_id=team_id)
    return await _list_scoped(session, TeamMember, {"team_id": team_id})


async def set_team_role(
    session: AsyncSession, *, principal: Principal, team_id: uuid.UUID, user_id: uuid.UUID, role: Role
) -> TeamMember:
    await get_team(session, org_id=principal.org_id, team_id=team_id)
    return await _grant_scoped(
        session, TeamMember, principal=principal, scope={"team_id": team_id}, user_id=user_id, role=role
    )


async def remove_team_member(
    session: AsyncSession, *, principal: Principal, team_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    await _revoke_scoped(
        session,
        TeamMember,
        principal=principal,
        scope={"team_id": team_id},
        user_id=user_id,
        missing="This member is not in this team",
    )
