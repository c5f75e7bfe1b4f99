"""Accounts: users, organizations, members and invitations, projects, teams, API keys, MFA."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from northstar.accounts import console, console_organization, console_sso, models, saml, scim, search
from northstar.accounts.api import api_keys, authentication, organizations, projects
from northstar.accounts.service import identity
from northstar.accounts.service.credentials import CredentialAuthenticator
from northstar.core.manifest import Manifest, NavLink
from northstar.core.permissions import Resource, allow


@asynccontextmanager
async def _runtime(app: FastAPI) -> AsyncIterator[None]:
    """Requests are authenticated by this module's credentials (tokens, sessions, API keys), rate limited; the
    console's layout learns who is signed in from it; sign-in providers are reached through one shared client."""
    app.state.authenticator = CredentialAuthenticator(app.state.rate_limiter, app.state.settings.rate_limit)
    app.state.console_viewer = console.load_viewer
    async with httpx.AsyncClient(timeout=identity.TIMEOUT) as http:
        app.state.sign_in_http = http
        yield


MANIFEST = Manifest(
    name="accounts",
    api_routers=(authentication.router, organizations.router, projects.router, api_keys.router),
    routers=(scim.router, saml.router),
    console_pages=(console.router, console_organization.router, console_sso.router),
    console_templates=console.TEMPLATES,
    console_nav=(
        NavLink("Members", "/app/members", "members", "read"),
        NavLink("API keys", "/app/api-keys", "api_keys", "read"),
        NavLink("Projects", "/app/projects", "projects", "read"),
        NavLink("Teams", "/app/teams", "teams", "read"),
        NavLink("Settings", "/app/settings", "organization", "read"),
    ),
    task_modules=("northstar.accounts.tasks",),
    model_modules=(models,),
    tables=(
        "auth.identities",
        "auth.mfa_recovery_codes",
        "auth.refresh_tokens",
        "auth.sign_in_states",
        "auth.users",
        "core.api_keys",
        "core.invitations",
        "core.memberships",
        "core.organizations",
        "core.project_members",
        "core.projects",
        "core.saml_assertions",
        "core.saml_connections",
        "core.saml_identities",
        "core.saml_requests",
        "core.scim_tokens",
        "core.scim_users",
        "core.team_members",
        "core.teams",
    ),
    schemas=("auth", "core"),
    resources=(
        Resource("members", member=(allow("read"),), analyst=(allow("read"),)),
        Resource("invitations"),
        Resource("api_keys"),
    ),
    audit_targets=("api_key", "invitation", "organization", "project", "saml_connection", "scim_token", "team", "user"),
    search_sources=search.SOURCES,
    lifespan=_runtime,
)
