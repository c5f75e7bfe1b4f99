"""The console's organization pages: members and invitations, API keys, projects, teams and the org's settings.

Every page calls the services the API routes call, through the same gates, and validates forms with the API's
request models; refusals the user can act on (a role they cannot grant, the last founder) are shown in the page.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.auth import (
    InvitationsCreatePage,
    InvitationsDeletePage,
    KeysCreatePage,
    KeysDeletePage,
    KeysReadPage,
    MembersDeletePage,
    MembersReadPage,
    MembersUpdatePage,
    OrgReadPage,
    OrgUpdatePage,
    ProjectMembersUpdatePage,
    ProjectsCreatePage,
    ProjectsDeletePage,
    ProjectsReadPage,
    ProjectsUpdatePage,
    TeamsCreatePage,
    TeamsDeletePage,
    TeamsReadPage,
    TeamsUpdatePage,
)
from northstar.accounts.schemas import (
    ApiKeyCreate,
    InvitationCreate,
    OrganizationUpdate,
    ProjectCreate,
    ProjectUpdate,
    RoleUpdate,
    TeamCreate,
    TeamUpdate,
)
from northstar.accounts.service import credentials, organizations, projects, scim
from northstar.core.console.pages import attempt, console_router, field_errors, read_form, redirect, render
from northstar.core.context import ClientMeta, DbSession, audit_target
from northstar.core.http import Page
from northstar.core.permissions import ROLE_RANK, Principal, Role

router = console_router()
ALL = 100  # the most a list route gives in one page; forms pick members and projects from it


def grantable_roles(principal: Principal) -> list[tuple[str, str]]:
    """The roles this principal may give (its own rank or below), as select options."""
    rank = ROLE_RANK[principal.role]
    return [(role.value, role.value.capitalize()) for role in Role if ROLE_RANK[role] >= rank]


# Members and invitations


async def _members_page(
    request: Request, session: AsyncSession, principal: Principal, page: Any, *, status: int = 200, **extra: Any
) -> Response:
    members, total = await organizations.list_members(
        session, org_id=principal.org_id, offset=page.offset, limit=page.limit
    )
    invitations: Sequence[Any] = []
    if principal.may_try("read", "invitations"):
        invitations, _ = await organizations.list_invitations(session, org_id=principal.org_id, offset=0, limit=ALL)
    context = {
        "members": members,
        "total": total,
        "page": page,
        "invitations": [i for i in invitations if i.accepted_at is None and i.revoked_at is None],
        "roles": grantable_roles(principal),
        "values": {},
        "errors": {},
        "notice": None,
        "invited": None,
        **extra,
    }
    return render(request, "accounts/members.html", context, status=status)


@router.get("/members", name="console.accounts_members")
async def members_page(request: Request, principal: MembersReadPage, session: DbSession, page: Page) -> Response:
    return await _members_page(request, session, principal, page)


@router.post("/members/{user_id}/role", name="console.accounts_member_role")
async def change_role(
    user_id: uuid.UUID, request: Request, principal: MembersUpdatePage, session: DbSession, page: Page
) -> Response:
    form = await read_form(request, RoleUpdate)
    if form.model is None:
        return await _members_page(request, session, principal, page, status=422, errors=form.errors)
    role = Role(form.model.role)
    change, refusal, status = await attempt(
        request,
        session,
        lambda: organizations.change_member_role(
            session, principal=principal, user_id=user_id, role=role, client=ClientMeta.of(request)
        ),
    )
    if change is None:
        return await _members_page(request, session, principal, page, status=status, errors={"form": refusal})
    audit_target(request, "user", user_id, previousRole=change.previous_role, role=role.value)
    notice = f"{change.member.email} is now {role.value}."
    if change.capped_keys:
        notice += f" {len(change.capped_keys)} of their API keys were narrowed to the new role."
    return await _members_page(request, session, principal, page, notice=notice)


@router.post("/members/{user_id}/remove", name="console.accounts_member_remove")
async def remove_member(
    user_id: uuid.UUID, request: Request, principal: MembersDeletePage, session: DbSession, page: Page
) -> Response:
    revoked, refusal, status = await attempt(
        request,
        session,
        lambda: organizations.remove_member(
            session, principal=principal, user_id=user_id, client=ClientMeta.of(request)
        ),
    )
    if revoked is None:
        return await _members_page(request, session, principal, page, status=status, errors={"form": refusal})
    audit_target(request, "user", user_id, apiKeysRevoked=[str(key.id) for key in revoked])
    notice = "The member was removed" + (f" and {len(revoked)} of their API keys revoked." if revoked else ".")
    return await _members_page(request, session, principal, page, notice=notice)


@router.post("/invitations", name="console.accounts_invite")
async def invite(request: Request, principal: InvitationsCreatePage, session: DbSession, page: Page) -> Response:
    form = await read_form(request, InvitationCreate)
    if form.model is None:
        return await _members_page(
            request, session, principal, page, status=422, values=form.values, errors=form.errors
        )
    email, role = form.model.email, Role(form.model.role)
    created, refusal, status = await attempt(
        request,
        session,
        lambda: organizations.create_invitation(session, principal=principal, email=email, role=role),
    )
    if created is None:
        return await _members_page(
            request, session, principal, page, status=status, values=form.values, errors={"invite": refusal}
        )
    audit_target(request, "invitation", created.invitation.id, email=email, role=role.value)
    return await _members_page(request, session, principal, page, invited=created)


@router.post("/invitations/{invitation_id}/revoke", name="console.accounts_invitation_revoke")
async def revoke_invitation(
    invitation_id: uuid.UUID, request: Request, principal: InvitationsDeletePage, session: DbSession
) -> Response:
    await organizations.revoke_invitation(session, org_id=principal.org_id, invitation_id=invitation_id)
    audit_target(request, "invitation", invitation_id)
    return redirect(request, "/app/members")


# API keys


async def _keys_page(
    request: Request, session: AsyncSession, principal: Principal, page: Any, *, status: int = 200, **extra: Any
) -> Response:
    keys, total = await credentials.list_api_keys(
        session, org_id=principal.org_id, offset=page.offset, limit=page.limit
    )
    context = {
        "keys": keys,
        "total": total,
        "page": page,
        "prefix_of": credentials.key_prefix,
        "roles": grantable_roles(principal),
        "values": {},
        "errors": {},
        "created": None,
        "rotated": False,
        **extra,
    }
    return render(request, "accounts/api_keys.html", context, status=status)


@router.get("/api-keys", name="console.accounts_api_keys")
async def api_keys_page(request: Request, principal: KeysReadPage, session: DbSession, page: Page) -> Response:
    return await _keys_page(request, session, principal, page)


@router.post("/api-keys", name="console.accounts_api_key_create")
async def create_api_key(request: Request, principal: KeysCreatePage, session: DbSession, page: Page) -> Response:
    """The secret is in this answer only; the page it redirects nowhere, so a reload of the list never shows it."""
    raw = await request.form()
    scopes = str(raw.get("scopes") or "").replace(",", " ").split()
    expires = str(raw.get("expires_at") or "").strip()
    form = await read_form(request, ApiKeyCreate, scopes=scopes or None, expires_at=expires or None)
    if form.model is None:
        return await _keys_page(request, session, principal, page, status=422, values=form.values, errors=form.errors)
    body = form.model
    new, refusal, status = await attempt(
        request,
        session,
        lambda: credentials.create_api_key(
            session,
            principal=principal,
            name=body.name,
            role=Role(body.role),
            scopes=body.scopes,
            environment=body.environment,
            expires_at=body.expires_at,
        ),
    )
    if new is None:
        return await _keys_page(
            request, session, principal, page, status=status, values=form.values, errors={"form": refusal}
        )
    audit_target(request, "api_key", new.key.id, role=body.role, scopes=body.scopes)
    return await _keys_page(request, session, principal, page, created=new)


@router.post("/api-keys/{key_id}/rotate", name="console.accounts_api_key_rotate")
async def rotate_api_key(
    key_id: uuid.UUID, request: Request, principal: KeysCreatePage, session: DbSession, page: Page
) -> Response:
    new, refusal, status = await attempt(
        request, session, lambda: credentials.rotate_api_key(session, principal=principal, key_id=key_id)
    )
    if new is None:
        return await _keys_page(request, session, principal, page, status=status, errors={"form": refusal})
    audit_target(request, "api_key", key_id, rotatedTo=str(new.key.id))
    return await _keys_page(request, session, principal, page, created=new, rotated=True)


@router.post("/api-keys/{key_id}/revoke", name="console.accounts_api_key_revoke")
async def revoke_api_key(
    key_id: uuid.UUID, request: Request, principal: KeysDeletePage, session: DbSession
) -> Response:
    await credentials.revoke_api_key(session, org_id=principal.org_id, key_id=key_id)
    audit_target(request, "api_key", key_id)
    return redirect(request, "/app/api-keys")


# Projects and teams


async def _member_options(session: AsyncSession, principal: Principal) -> list[tuple[str, str]]:
    members, _ = await organizations.list_members(session, org_id=principal.org_id, offset=0, limit=ALL)
    return [(str(m.user_id), f"{m.name or m.email} ({m.email})") for m in members]


async def _projects_page(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    page: Any,
    q: str | None,
    *,
    status: int = 200,
    **extra: Any,
) -> Response:
    rows, total = await projects.list_projects(
        session,
        org_id=principal.org_id,
        search=q,
        only=principal.reach("read", "projects", "project"),
        offset=page.offset,
        limit=page.limit,
    )
    context = {"projects": rows, "total": total, "page": page, "q": q or "", "values": {}, "errors": {}, **extra}
    return render(request, "accounts/projects.html", context, status=status)


@router.get("/projects", name="console.accounts_projects")
async def projects_page(
    request: Request,
    principal: ProjectsReadPage,
    session: DbSession,
    page: Page,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    return await _projects_page(request, session, principal, page, q)


@router.post("/projects", name="console.accounts_project_create")
async def create_project(request: Request, principal: ProjectsCreatePage, session: DbSession, page: Page) -> Response:
    form = await read_form(request, ProjectCreate)
    if form.model is None:
        return await _projects_page(
            request, session, principal, page, None, values=form.values, errors=form.errors, status=422
        )
    project = await projects.create_project(
        session, principal=principal, name=form.model.name, description=form.model.description
    )
    audit_target(request, "project", project.id)
    return redirect(request, f"/app/projects/{project.id}")


async def _subject(session: AsyncSession, principal: Principal, *, kind: str, scope_id: uuid.UUID) -> Any:
    """The project or team, or the 404 of a missing one (another org's id included)."""
    if kind == "project":
        return await projects.get_project(session, org_id=principal.org_id, project_id=scope_id)
    return await projects.get_team(session, org_id=principal.org_id, team_id=scope_id)


async def _grants_page(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    *,
    kind: str,
    scope_id: uuid.UUID,
    status: int = 200,
    **extra: Any,
) -> Response:
    """A project or a team with the roles granted on it, and (for who may) the forms granting one, renaming it and
    deleting it. The rename and delete forms show only where the service would allow them (a member's own project)."""
    subject = await _subject(session, principal, kind=kind, scope_id=scope_id)
    if kind == "project":
        grants: Sequence[Any] = await projects.list_project_members(
            session, org_id=principal.org_id, project_id=scope_id
        )
        may_grant = principal.may_try("update", "members", project_id=scope_id)
        scope: dict[str, Any] = {"project_id": scope_id, "owner_id": subject.created_by}
    else:
        grants = await projects.list_team_members(session, org_id=principal.org_id, team_id=scope_id)
        may_grant = principal.may_try("update", "teams", team_id=scope_id)
        scope = {"team_id": scope_id}
    people = await _member_options(session, principal) if may_grant else []
    names = dict(people)
    context = {
        "kind": kind,
        "subject": subject,
        "grants": grants,
        "names": names,
        "people": people,
        "may_grant": may_grant,
        "may_update": principal.can("update", f"{kind}s", **scope),
        "may_delete": principal.can("delete", f"{kind}s", **scope),
        "roles": grantable_roles(principal),
        "values": {},
        "errors": {},
        "saved": False,
        **extra,
    }
    return render(request, "accounts/grants.html", context, status=status)


@router.get("/projects/{project_id}", name="console.accounts_project")
async def project_page(
    project_id: uuid.UUID,
    request: Request,
    principal: ProjectsReadPage,
    session: DbSession,
    saved: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    return await _grants_page(request, session, principal, kind="project", scope_id=project_id, saved=saved is not None)


async def _rename(
    request: Request, session: AsyncSession, principal: Principal, *, kind: str, scope_id: uuid.UUID
) -> Response:
    """Rename (and describe) a project or a team through the service the API's PATCH calls."""
    form = await read_form(request, ProjectUpdate if kind == "project" else TeamUpdate)
    errors, status = form.errors, 422
    if (body := form.model) is not None:
        update: Callable[..., Awaitable[Any]]
        if kind == "project":
            update = partial(projects.update_project, session, principal=principal, project_id=scope_id)
        else:
            update = partial(projects.update_team, session, org_id=principal.org_id, team_id=scope_id)
        done, refusal, status = await attempt(
            request, session, lambda: update(name=body.name, description=body.description)
        )
        if done is not None:
            audit_target(request, kind, scope_id, **body.model_dump(exclude_none=True, by_alias=True))
            return redirect(request, f"/app/{kind}s/{scope_id}?saved=1")
        errors = {"form": refusal or ""}
    return await _grants_page(
        request, session, principal, kind=kind, scope_id=scope_id, values=form.values, errors=errors, status=status
    )


async def _delete(
    request: Request, session: AsyncSession, principal: Principal, *, kind: str, scope_id: uuid.UUID
) -> Response:
    """Delete a project or a team once its name is typed back: what goes with it (a project's teams, every grant on
    them) cannot be brought back, so a stray click must not be enough."""
    subject = await _subject(session, principal, kind=kind, scope_id=scope_id)
    typed = (await request.form()).get("confirm")
    if not isinstance(typed, str) or typed.strip() != subject.name.strip():
        errors = {"confirm": f"Type the {kind}'s name exactly as shown to delete it."}
        return await _grants_page(request, session, principal, kind=kind, scope_id=scope_id, errors=errors, status=422)
    remove: Callable[[], Awaitable[None]]
    if kind == "project":
        remove = partial(projects.delete_project, session, principal=principal, project_id=scope_id)
    else:
        remove = partial(projects.delete_team, session, org_id=principal.org_id, team_id=scope_id)
    _, refusal, status = await attempt(request, session, remove)
    if refusal is not None:
        return await _grants_page(
            request, session, principal, kind=kind, scope_id=scope_id, errors={"form": refusal}, status=status
        )
    audit_target(request, kind, scope_id)
    return redirect(request, f"/app/{kind}s")


@router.post("/projects/{project_id}", name="console.accounts_project_update")
async def update_project(
    project_id: uuid.UUID, request: Request, principal: ProjectsUpdatePage, session: DbSession
) -> Response:
    return await _rename(request, session, principal, kind="project", scope_id=project_id)


@router.post("/projects/{project_id}/delete", name="console.accounts_project_delete")
async def delete_project(
    project_id: uuid.UUID, request: Request, principal: ProjectsDeletePage, session: DbSession
) -> Response:
    return await _delete(request, session, principal, kind="project", scope_id=project_id)


async def _grant(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    *,
    kind: str,
    scope_id: uuid.UUID,
    user_id: uuid.UUID,
) -> Response:
    raw = await request.form()  # the member is the form's other field: RoleUpdate takes the role alone
    try:
        role = Role(RoleUpdate.model_validate({"role": raw.get("role")}).role)
    except ValidationError as exc:
        return await _grants_page(
            request, session, principal, kind=kind, scope_id=scope_id, errors=field_errors(exc), status=422
        )
    setter = projects.set_project_role if kind == "project" else projects.set_team_role
    scope = {f"{kind}_id": scope_id}
    done, refusal, status = await attempt(
        request, session, lambda: setter(session, principal=principal, user_id=user_id, role=role, **scope)
    )
    if done is None:
        return await _grants_page(
            request, session, principal, kind=kind, scope_id=scope_id, errors={"form": refusal}, status=status
        )
    audit_target(request, kind, scope_id, userId=str(user_id), role=role.value)
    return redirect(request, f"/app/{kind}s/{scope_id}")


async def _ungrant(
    request: Request, session: AsyncSession, principal: Principal, *, kind: str, scope_id: uuid.UUID, user_id: uuid.UUID
) -> Response:
    remover = projects.remove_project_role if kind == "project" else projects.remove_team_member
    scope = {f"{kind}_id": scope_id}
    await remover(session, principal=principal, user_id=user_id, **scope)
    audit_target(request, kind, scope_id, userId=str(user_id))
    return redirect(request, f"/app/{kind}s/{scope_id}")


@router.post("/projects/{project_id}/members", name="console.accounts_project_grant")
async def grant_project_role(
    project_id: uuid.UUID,
    request: Request,
    principal: ProjectMembersUpdatePage,
    session: DbSession,
    user_id: Annotated[uuid.UUID, Form()],
) -> Response:
    return await _grant(request, session, principal, kind="project", scope_id=project_id, user_id=user_id)


@router.post("/projects/{project_id}/members/{user_id}/remove", name="console.accounts_project_ungrant")
async def remove_project_role(
    project_id: uuid.UUID, user_id: uuid.UUID, request: Request, principal: ProjectMembersUpdatePage, session: DbSession
) -> Response:
    return await _ungrant(request, session, principal, kind="project", scope_id=project_id, user_id=user_id)


async def _teams_page(
    request: Request, session: AsyncSession, principal: Principal, page: Any, *, status: int = 200, **extra: Any
) -> Response:
    rows, total = await projects.list_teams(
        session,
        org_id=principal.org_id,
        project_id=None,
        only=principal.reach("read", "teams", "team"),
        offset=page.offset,
        limit=page.limit,
    )
    in_reach, _ = await projects.list_projects(
        session,
        org_id=principal.org_id,
        search=None,
        only=principal.reach("read", "projects", "project"),
        offset=0,
        limit=ALL,
    )
    context = {
        "teams": rows,
        "total": total,
        "page": page,
        "project_names": {p.id: p.name for p in in_reach},
        "project_options": [("", "No project")] + [(str(p.id), p.name) for p in in_reach],
        "values": {},
        "errors": {},
        **extra,
    }
    return render(request, "accounts/teams.html", context, status=status)


@router.get("/teams", name="console.accounts_teams")
async def teams_page(request: Request, principal: TeamsReadPage, session: DbSession, page: Page) -> Response:
    return await _teams_page(request, session, principal, page)


@router.post("/teams", name="console.accounts_team_create")
async def create_team(request: Request, principal: TeamsCreatePage, session: DbSession, page: Page) -> Response:
    raw = await request.form()
    form = await read_form(request, TeamCreate, project_id=raw.get("project_id") or None)
    if form.model is None:
        return await _teams_page(request, session, principal, page, values=form.values, errors=form.errors, status=422)
    body = form.model
    team = await projects.create_team(
        session, org_id=principal.org_id, name=body.name, description=body.description, project_id=body.project_id
    )
    audit_target(request, "team", team.id)
    return redirect(request, f"/app/teams/{team.id}")


@router.get("/teams/{team_id}", name="console.accounts_team")
async def team_page(
    team_id: uuid.UUID,
    request: Request,
    principal: TeamsReadPage,
    session: DbSession,
    saved: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    return await _grants_page(request, session, principal, kind="team", scope_id=team_id, saved=saved is not None)


@router.post("/teams/{team_id}", name="console.accounts_team_update")
async def update_team(team_id: uuid.UUID, request: Request, principal: TeamsUpdatePage, session: DbSession) -> Response:
    return await _rename(request, session, principal, kind="team", scope_id=team_id)


@router.post("/teams/{team_id}/delete", name="console.accounts_team_delete")
async def delete_team(team_id: uuid.UUID, request: Request, principal: TeamsDeletePage, session: DbSession) -> Response:
    return await _delete(request, session, principal, kind="team", scope_id=team_id)


@router.post("/teams/{team_id}/members", name="console.accounts_team_grant")
async def grant_team_role(
    team_id: uuid.UUID,
    request: Request,
    principal: TeamsUpdatePage,
    session: DbSession,
    user_id: Annotated[uuid.UUID, Form()],
) -> Response:
    return await _grant(request, session, principal, kind="team", scope_id=team_id, user_id=user_id)


@router.post("/teams/{team_id}/members/{user_id}/remove", name="console.accounts_team_ungrant")
async def remove_team_role(
    team_id: uuid.UUID, user_id: uuid.UUID, request: Request, principal: TeamsUpdatePage, session: DbSession
) -> Response:
    return await _ungrant(request, session, principal, kind="team", scope_id=team_id, user_id=user_id)


# The organization's settings


async def _settings(
    request: Request,
    session: DbSession,
    principal: Principal,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    saved: bool = False,
    new_scim_token: str | None = None,
    status: int = 200,
) -> Response:
    """The settings page; its provisioning section (the SCIM token) is for those who may change the org."""
    org = await organizations.get_organization(session, org_id=principal.org_id)
    may_provision = principal.may_try("update", "organization")
    context = {
        "org": org,
        "values": values or {},
        "errors": errors or {},
        "saved": saved,
        "scim": await scim.token_status(session, org_id=principal.org_id) if may_provision else None,
        "scim_url": f"{request.app.state.settings.public_url.rstrip('/')}/scim/v2",
        "new_scim_token": new_scim_token,
    }
    return render(request, "accounts/settings.html", context, status=status)


@router.get("/settings", name="console.accounts_settings")
async def settings_page(
    request: Request,
    principal: OrgReadPage,
    session: DbSession,
    saved: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    return await _settings(request, session, principal, saved=saved is not None)


@router.post("/settings", name="console.accounts_settings_update")
async def update_settings(request: Request, principal: OrgUpdatePage, session: DbSession) -> Response:
    form = await read_form(request, OrganizationUpdate)
    if form.model is None:
        return await _settings(request, session, principal, values=form.values, errors=form.errors, status=422)
    org = await organizations.update_organization(session, org_id=principal.org_id, name=form.model.name)
    audit_target(request, "organization", org.id, name=form.model.name)
    return redirect(request, "/app/settings?saved=1")


@router.post("/settings/scim-token", name="console.accounts_scim_token")
async def new_scim_token(request: Request, principal: OrgUpdatePage, session: DbSession) -> Response:
    """A new SCIM token, shown once on the page that answers; the earlier one stops working."""
    token = await scim.new_token(session, principal=principal)
    audit_target(request, "scim_token", principal.org_id)
    return await _settings(request, session, principal, new_scim_token=token)


@router.post("/settings/scim-token/revoke", name="console.accounts_scim_token_revoke")
async def revoke_scim_token(request: Request, principal: OrgUpdatePage, session: DbSession) -> Response:
    await scim.revoke_tokens(session, org_id=principal.org_id)
    audit_target(request, "scim_token", principal.org_id)
    return redirect(request, "/app/settings")
