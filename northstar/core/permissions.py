"""RBAC: permissions are (action, resource, conditions) granted to roles at org, project or team scope.

Roles and their grants are data: each module declares its resources and their grants in its manifest, core keeps
the mechanism and the tenancy scopes, and the role x route matrix (``rbac_matrix.csv``) is checked against them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

Action = Literal["create", "read", "update", "delete"]
Scope = Literal["org", "project", "team"]
ACTIONS: tuple[Action, ...] = ("create", "read", "update", "delete")
CRUD = ACTIONS


class Role(StrEnum):
    FOUNDER = "founder"
    ADMIN = "admin"
    MEMBER = "member"
    ANALYST = "analyst"
    INVESTOR = "investor"


# Lower rank = more powerful; a user may only grant roles at or below their own rank.
ROLE_RANK = {Role.FOUNDER: 0, Role.ADMIN: 1, Role.MEMBER: 2, Role.ANALYST: 3, Role.INVESTOR: 3}


@dataclass(frozen=True)
class Permission:
    action: Action
    resource: str
    conditions: Mapping[str, Any] = field(default_factory=dict)

    def matches(self, action: str, resource: str, context: Mapping[str, Any]) -> bool:
        if self.action != action or self.resource not in (resource, "*"):
            return False
        return all(_condition_holds(key, expected, context) for key, expected in self.conditions.items())


def _condition_holds(key: str, expected: Any, context: Mapping[str, Any]) -> bool:
    """``{"owner": "self"}``: the target was created by the acting user (checked by the service)."""
    if key == "owner" and expected == "self":
        return context.get("owner_id") is not None and context.get("owner_id") == context.get("user_id")
    return bool(context.get(key) == expected)


@dataclass(frozen=True)
class Grant:
    """Actions one role may take on a resource; with ``owner="self"`` only on what the acting user created."""

    actions: tuple[Action, ...]
    conditions: Mapping[str, Any] = field(default_factory=dict)


def allow(*actions: Action) -> Grant:
    return Grant(actions)


def own(*actions: Action) -> Grant:
    return Grant(actions, {"owner": "self"})


@dataclass(frozen=True)
class Resource:
    """Something roles are granted actions on, with each role's grants: the module that owns it declares it in its
    manifest. Founders may do everything; admins too, unless ``admin`` says less."""

    name: str
    admin: tuple[Grant, ...] = (allow(*CRUD),)
    member: tuple[Grant, ...] = ()
    analyst: tuple[Grant, ...] = ()
    investor: tuple[Grant, ...] = ()

    def permissions(self, role: Role) -> list[Permission]:
        grants = {
            Role.FOUNDER: (allow(*CRUD),),
            Role.ADMIN: self.admin,
            Role.MEMBER: self.member,
            Role.ANALYST: self.analyst,
            Role.INVESTOR: self.investor,
        }[role]
        return [Permission(action, self.name, dict(grant.conditions)) for grant in grants for action in grant.actions]


# The resources every role is checked against, filled by ``register_resources`` from the installed manifests.
RESOURCES: list[str] = []
ROLE_PERMISSIONS: dict[Role, list[Permission]] = {role: [] for role in Role}
_DECLARED: dict[str, Resource] = {}


def register_resources(resources: Iterable[Resource]) -> None:
    """Grant the roles what ``resources`` say; declaring the same resource again changes nothing, declaring a name
    another way is a mistake caught at start."""
    for resource in resources:
        known = _DECLARED.get(resource.name)
        if known == resource:
            continue
        if known is not None:
            raise ValueError(f"the permission resource {resource.name!r} is declared twice, differently")
        _DECLARED[resource.name] = resource
        RESOURCES.append(resource.name)
        for role in Role:
            ROLE_PERMISSIONS[role].extend(resource.permissions(role))


# The tenancy scopes core's own checks name (``require(..., scope=...)`` reads the scope's resource).
PLATFORM_RESOURCES = (
    Resource(
        "organization",
        admin=(allow("read", "update"),),
        member=(allow("read"),),
        analyst=(allow("read"),),
        investor=(allow("read"),),
    ),
    Resource("projects", member=(allow("read", "create"), own("update", "delete")), analyst=(allow("read"),)),
    Resource("teams", member=(allow("read"),), analyst=(allow("read"),)),
)
SCOPE_RESOURCES: dict[Scope, str] = {"org": "organization", "project": "projects", "team": "teams"}
register_resources(PLATFORM_RESOURCES)


def role_allows(role: Role, action: str, resource: str, context: Mapping[str, Any] | None = None) -> bool:
    ctx = context or {}
    return any(p.matches(action, resource, ctx) for p in ROLE_PERMISSIONS[role])


def scope_string(action: str, resource: str) -> str:
    return f"{resource}:{action}"


def all_scopes_of(role: Role) -> set[str]:
    return {scope_string(p.action, p.resource) for p in ROLE_PERMISSIONS[role] if not p.conditions}


def capped_key_grant(role: Role, scopes: list[str] | None, ceiling: Role) -> tuple[Role, list[str] | None] | None:
    """An API key's role and scopes narrowed to what ``ceiling`` allows, or ``None`` when they already fit.

    A key holds only unconditional grants (it is nobody, so "your own" never applies to it): what it may do is
    its role's scopes, narrowed by its own scopes if it has any. Capped, it gets the ceiling role and keeps only
    the scopes both allow; it keeps no scope list when it may do all the ceiling role does.
    """
    allowed = all_scopes_of(role)
    if scopes is not None:
        wildcards = {scope[:-2] for scope in scopes if scope.endswith(":*")}
        allowed = {scope for scope in allowed if scope in scopes or scope.split(":")[0] in wildcards}
    limit = all_scopes_of(ceiling)
    if allowed <= limit and ROLE_RANK[role] >= ROLE_RANK[ceiling]:
        return None
    kept = allowed & limit
    return ceiling, None if kept == limit else sorted(kept)


@dataclass(frozen=True)
class ScopedRole:
    """A role granted at project or team scope, on top of the org-wide role."""

    scope: Scope
    scope_id: uuid.UUID
    role: Role


@dataclass
class Principal:
    """Who is calling: a user acting in one org, or an org API key narrowed to its scopes.

    The org-wide ``role`` decides org-level routes alone. A role granted on one project or team
    (``scoped_roles``) adds to it only on that project or team: ``can``/``may_try`` take the scope's id.
    """

    org_id: uuid.UUID
    role: Role
    user_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    api_key_scopes: frozenset[str] | None = None
    scoped_roles: list[ScopedRole] = field(default_factory=list)

    @property
    def actor_id(self) -> uuid.UUID:
        return self.user_id or self.api_key_id or uuid.UUID(int=0)

    @property
    def actor_type(self) -> str:
        return "user" if self.user_id else "api_key"

    def roles_for(self, *, project_id: uuid.UUID | None = None, team_id: uuid.UUID | None = None) -> list[Role]:
        roles = [self.role]
        for scoped in self.scoped_roles:
            if (scoped.scope == "project" and scoped.scope_id == project_id) or (
                scoped.scope == "team" and scoped.scope_id == team_id
            ):
                roles.append(scoped.role)
        return roles

    def _key_allows(self, action: str, resource: str) -> bool:
        return self.api_key_scopes is None or (
            scope_string(action, resource) in self.api_key_scopes or f"{resource}:*" in self.api_key_scopes
        )

    def can(
        self,
        action: str,
        resource: str,
        *,
        owner_id: uuid.UUID | None = None,
        project_id: uuid.UUID | None = None,
        team_id: uuid.UUID | None = None,
    ) -> bool:
        """Whether the action is allowed on one object (its owner, project or team given when it has them)."""
        if not self._key_allows(action, resource):
            return False
        context = {"owner_id": owner_id, "user_id": self.user_id}
        return any(
            role_allows(role, action, resource, context)
            for role in self.roles_for(project_id=project_id, team_id=team_id)
        )

    def may_try(
        self, action: str, resource: str, *, project_id: uuid.UUID | None = None, team_id: uuid.UUID | None = None
    ) -> bool:
        """The route gate: a grant (possibly conditional) of the org role, or of the role on the given project or
        team, could allow this; the service checks conditions against the loaded object."""
        if not self._key_allows(action, resource):
            return False
        return any(_grants(role, action, resource) for role in self.roles_for(project_id=project_id, team_id=team_id))

    def reach(self, action: str, resource: str, scope: Scope) -> frozenset[uuid.UUID] | None:
        """Where this principal may try ``action`` on ``resource``: everywhere (``None``) through the org role,
        else only in the projects (or teams) whose grant allows it (possibly none). Lists filter by it."""
        if self.may_try(action, resource):
            return None
        if not self._key_allows(action, resource):
            return frozenset()
        return frozenset(
            scoped.scope_id
            for scoped in self.scoped_roles
            if scoped.scope == scope and _grants(scoped.role, action, resource)
        )


def _grants(role: Role, action: str, resource: str) -> bool:
    return any(p.action == action and p.resource in (resource, "*") for p in ROLE_PERMISSIONS[role])
