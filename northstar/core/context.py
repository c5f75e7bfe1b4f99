"""Per-request dependencies: the tenant transaction, the authenticated principal, permission gates.

Core knows no domain module: the authenticator and the audit recorder are plugged in at app start
(``app.state``), implemented by ``accounts`` and ``audit``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.http import AppError, Forbidden, NotFound
from northstar.core.permissions import SCOPE_RESOURCES, Principal, Scope

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Authenticator(Protocol):
    async def authenticate(
        self, request: Request, session: AsyncSession, *, credential: str | None = None
    ) -> Principal: ...


AuditRecorder = Callable[[AsyncSession, Request, Principal], Awaitable[None]]


async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request, committed after the handler returns and before the response is sent.

    It starts as the app role with no tenant (``TenantSession``: sees no tenant rows); authentication
    binds the org in the same round trip that opens the transaction.
    A successful state-changing request is recorded in the audit trail inside the same transaction.
    Errors roll back, except those marked ``commit`` (a failed login must stay in the audit trail).
    """
    async with request.app.state.database.sessionmaker() as session:
        await session.begin()
        try:
            yield session
            principal: Principal | None = getattr(request.state, "principal", None)
            if principal is not None and request.method in MUTATING_METHODS:
                recorder: AuditRecorder = request.app.state.audit_recorder
                await recorder(session, request, principal)
        except AppError as exc:
            await (session.commit() if exc.commit else session.rollback())
            raise
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


DbSession = Annotated[AsyncSession, Depends(request_session, scope="function")]


# Declared so the OpenAPI "Authorize" button offers both; authentication itself reads the headers.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False)


async def current_principal(
    request: Request,
    session: DbSession,
    _bearer: Annotated[str | None, Depends(oauth2_scheme)],
    _api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Principal:
    authenticator: Authenticator = request.app.state.authenticator
    principal = await authenticator.authenticate(request, session)
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


class require:
    """A route gate: the caller's role (or API key scopes) must grant ``action`` on ``resource``.

    ``scope`` says what the route acts on. An ``"org"`` route is decided by the org-wide role alone: a role
    granted on one project or team never opens it. A ``"project"`` (or ``"team"``) route is decided by the
    org-wide role or by the grant on the project (team) named in its path (``{project_id}``/``{team_id}``);
    without one in the path (a list), the service shows only what ``Principal.reach`` allows. A caller whose
    grants allow this on other projects only gets 403 where they may see the project, else the 404 of a
    missing project: a grant on one project tells nothing about the others.

    Grants with conditions (e.g. only your own projects) pass the gate; the service checks them
    against the loaded object. ``permission`` and ``scope`` are read by the role x route matrix test.
    """

    def __init__(self, resource: str, action: str, *, scope: Scope = "org") -> None:
        self.permission = (resource, action)
        self.scope: Scope = scope

    async def __call__(self, request: Request, principal: CurrentPrincipal) -> Principal:
        return self.check(request, principal)

    def check(self, request: Request, principal: Principal) -> Principal:
        """The principal, if its grants let it through this gate; else 403 (or the 404 of an unseen object)."""
        resource, action = self.permission
        if principal.may_try(action, resource):
            return principal
        reach = principal.reach(action, resource, self.scope) if self.scope != "org" else None
        if reach:
            raw_id = request.path_params.get(f"{self.scope}_id")
            if raw_id is None:
                return principal  # a list: the service narrows it to ``reach``
            scope_id = _as_uuid(raw_id)
            if scope_id in reach:
                return principal
            visible = principal.reach("read", SCOPE_RESOURCES[self.scope], self.scope)
            if visible is not None and scope_id not in visible:
                raise NotFound(f"No such {self.scope}")
        raise Forbidden(f"Your role cannot {action} {resource}")


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def audit_target(request: Request, target_type: str, target_id: object, **details: Any) -> None:
    """Name what a state-changing request acted on, for its audit entry."""
    request.state.audit_target = (target_type, str(target_id))
    if details:
        request.state.audit_details = details


@dataclass(frozen=True)
class ClientMeta:
    """Where a request came from, for audit entries and refresh-token records."""

    ip: str
    user_agent: str
    request_id: str

    @classmethod
    def of(cls, request: Request) -> ClientMeta:
        return cls(
            ip=getattr(request.state, "client_ip", None) or (request.client.host if request.client else ""),
            user_agent=request.headers.get("user-agent", "")[:500],
            request_id=getattr(request.state, "trace_id", ""),
        )
