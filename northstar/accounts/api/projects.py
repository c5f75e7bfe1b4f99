"""Projects and teams, with roles at project and team scope."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from northstar.accounts.auth import (
    ProjectMembersUpdate,
    ProjectsCreate,
    ProjectsDelete,
    ProjectsRead,
    ProjectsUpdate,
    TeamsCreate,
    TeamsDelete,
    TeamsRead,
    TeamsUpdate,
)
from northstar.accounts.schemas import (
    ProjectCreate,
    ProjectOut,
    ProjectUpdate,
    RoleUpdate,
    ScopedMemberOut,
    TeamCreate,
    TeamOut,
    TeamUpdate,
)
from northstar.accounts.service import projects as service
from northstar.core.context import DbSession, audit_target
from northstar.core.http import ERROR_RESPONSES, Envelope, Page, PageEnvelope
from northstar.core.idempotency import Idempotent
from northstar.core.permissions import Role

router = APIRouter(tags=["projects"], responses=ERROR_RESPONSES)

# A role granted on a project (team) counts on that project's (team's) routes only; creating is org-level.


@router.get("/projects", response_model=PageEnvelope[ProjectOut], name="projects.list")
async def list_projects(
    principal: ProjectsRead,
    session: DbSession,
    page: Page,
    q: Annotated[str | None, Query(max_length=200, description="name contains")] = None,
) -> PageEnvelope[ProjectOut]:
    projects, total = await service.list_projects(
        session,
        org_id=principal.org_id,
        search=q,
        only=principal.reach("read", "projects", "project"),
        offset=page.offset,
        limit=page.limit,
    )
    return PageEnvelope(data=[ProjectOut.model_validate(p) for p in projects], meta=page.meta(total))


@router.post(
    "/projects",
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[ProjectOut],
    name="projects.create",
    dependencies=[Idempotent],
)
async def create_project(
    body: ProjectCreate, request: Request, principal: ProjectsCreate, session: DbSession
) -> Envelope[ProjectOut]:
    project = await service.create_project(session, principal=principal, name=body.name, description=body.description)
    audit_target(request, "project", project.id)
    return Envelope(data=ProjectOut.model_validate(project))


@router.get("/projects/{project_id}", response_model=Envelope[ProjectOut], name="projects.get")
async def get_project(project_id: uuid.UUID, principal: ProjectsRead, session: DbSession) -> Envelope[ProjectOut]:
    project = await service.get_project(session, org_id=principal.org_id, project_id=project_id)
    return Envelope(data=ProjectOut.model_validate(project))


@router.patch("/projects/{project_id}", response_model=Envelope[ProjectOut], name="projects.update")
async def update_project(
    project_id: uuid.UUID, body: ProjectUpdate, request: Request, principal: ProjectsUpdate, session: DbSession
) -> Envelope[ProjectOut]:
    project = await service.update_project(
        session, principal=principal, project_id=project_id, name=body.name, description=body.description
    )
    audit_target(request, "project", project.id, **body.model_dump(exclude_none=True, by_alias=True))
    return Envelope(data=ProjectOut.model_validate(project))


@router.delete("/projects/{project_id}", status_code=status.HTTP_204_NO_CONTENT, name="projects.delete")
async def delete_project(
    project_id: uuid.UUID, request: Request, principal: ProjectsDelete, session: DbSession
) -> None:
    await service.delete_project(session, principal=principal, project_id=project_id)
    audit_target(request, "project", project_id)


@router.get(
    "/projects/{project_id}/members", response_model=Envelope[list[ScopedMemberOut]], name="projects.list_members"
)
async def list_project_members(
    project_id: uuid.UUID, principal: ProjectsRead, session: DbSession
) -> Envelope[list[ScopedMemberOut]]:
    members = await service.list_project_members(session, org_id=principal.org_id, project_id=project_id)
    return Envelope(data=[ScopedMemberOut.model_validate(m) for m in members])


@router.put(
    "/projects/{project_id}/members/{user_id}",
    response_model=Envelope[ScopedMemberOut],
    name="projects.set_member_role",
)
async def set_project_role(
    project_id: uuid.UUID,
    user_id: uuid.UUID,
    body: RoleUpdate,
    request: Request,
    principal: ProjectMembersUpdate,
    session: DbSession,
) -> Envelope[ScopedMemberOut]:
    member = await service.set_project_role(
        session, principal=principal, project_id=project_id, user_id=user_id, role=Role(body.role)
    )
    audit_target(request, "project", project_id, userId=str(user_id), role=body.role)
    return Envelope(data=ScopedMemberOut.model_validate(member))


@router.delete(
    "/projects/{project_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    name="projects.remove_member_role",
)
async def remove_project_role(
    project_id: uuid.UUID, user_id: uuid.UUID, request: Request, principal: ProjectMembersUpdate, session: DbSession
) -> None:
    await service.remove_project_role(session, principal=principal, project_id=project_id, user_id=user_id)
    audit_target(request, "project", project_id, userId=str(user_id))


@router.get("/teams", response_model=PageEnvelope[TeamOut], name="teams.list")
async def list_teams(
    principal: TeamsRead,
    session: DbSession,
    page: Page,
    project_id: Annotated[uuid.UUID | None, Query(alias="projectId")] = None,
) -> PageEnvelope[TeamOut]:
    teams, total = await service.list_teams(
        session,
        org_id=principal.org_id,
        project_id=project_id,
        only=principal.reach("read", "teams", "team"),
        offset=page.offset,
        limit=page.limit,
    )
    return PageEnvelope(data=[TeamOut.model_validate(t) for t in teams], meta=page.meta(total))


@router.post(
    "/teams",
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[TeamOut],
    name="teams.create",
    dependencies=[Idempotent],
)
async def create_team(
    body: TeamCreate, request: Request, principal: TeamsCreate, session: DbSession
) -> Envelope[TeamOut]:
    team = await service.create_team(
        session, org_id=principal.org_id, name=body.name, description=body.description, project_id=body.project_id
    )
    audit_target(request, "team", team.id)
    return Envelope(data=TeamOut.model_validate(team))


@router.get("/teams/{team_id}", response_model=Envelope[TeamOut], name="teams.get")
async def get_team(team_id: uuid.UUID, principal: TeamsRead, session: DbSession) -> Envelope[TeamOut]:
    return Envelope(
        data=TeamOut.model_validate(await service.get_team(session, org_id=principal.org_id, team_id=team_id))
    )


@router.patch("/teams/{team_id}", response_model=Envelope[TeamOut], name="teams.update")
async def update_team(
    team_id: uuid.UUID, body: TeamUpdate, request: Request, principal: TeamsUpdate, session: DbSession
) -> Envelope[TeamOut]:
    team = await service.update_team(
        session, org_id=principal.org_id, team_id=team_id, name=body.name, description=body.description
    )
    audit_target(request, "team", team.id, **body.model_dump(exclude_none=True, by_alias=True))
    return Envelope(data=TeamOut.model_validate(team))


@router.delete("/teams/{team_id}", status_code=status.HTTP_204_NO_CONTENT, name="teams.delete")
async def delete_team(team_id: uuid.UUID, request: Request, principal: TeamsDelete, session: DbSession) -> None:
    await service.delete_team(session, org_id=principal.org_id, team_id=team_id)
    audit_target(request, "team", team_id)


@router.get("/teams/{team_id}/members", response_model=Envelope[list[ScopedMemberOut]], name="teams.list_members")
async def list_team_members(
    team_id: uuid.UUID, principal: TeamsRead, session: DbSession
) -> Envelope[list[ScopedMemberOut]]:
    members = await service.list_team_members(session, org_id=principal.org_id, team_id=team_id)
    return Envelope(data=[ScopedMemberOut.model_validate(m) for m in members])


@router.put(
    "/teams/{team_id}/members/{user_id}", response_model=Envelope[ScopedMemberOut], name="teams.set_member_role"
)
async def set_team_role(
    team_id: uuid.UUID,
    user_id: uuid.UUID,
    body: RoleUpdate,
    request: Request,
    principal: TeamsUpdate,
    session: DbSession,
) -> Envelope[ScopedMemberOut]:
    member = await service.set_team_role(
        session, principal=principal, team_id=team_id, user_id=user_id, role=Role(body.role)
    )
    audit_target(request, "team", team_id, userId=str(user_id), role=body.role)
    return Envelope(data=ScopedMemberOut.model_validate(member))


@router.delete("/teams/{team_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT, name="teams.remove_member")
async def remove_team_member(
    team_id: uuid.UUID, user_id: uuid.UUID, request: Request, principal: TeamsUpdate, session: DbSession
) -> None:
    await service.remove_team_member(session, principal=principal, team_id=team_id, user_id=user_id)
    audit_target(request, "team", team_id, userId=str(user_id))
