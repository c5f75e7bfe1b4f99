"""Demo data for `northstar seed`: one org, a user for every role, projects, teams and an API key."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.service import credentials, organizations, projects
from northstar.accounts.service.users import create_organization, create_user
from northstar.audit import service as audit
from northstar.core.context import ClientMeta
from northstar.core.db import Database
from northstar.core.permissions import Principal, Role

SAMPLE_PROJECTS = [
    ("Website relaunch", "New marketing site and onboarding flow"),
    ("Mobile app", "iOS and Android apps for the core product"),
    ("Data platform", "Warehouse, KPIs and investor reporting"),
]
SAMPLE_TEAMS = [("Growth", "Acquisition and activation"), ("Platform", "Infrastructure and reliability")]


@dataclass(frozen=True)
class SeedResult:
    org_id: uuid.UUID
    org_name: str
    users: list[tuple[str, str, str]]
    api_key: str
    founder: Principal


async def create_demo_org(session: AsyncSession, *, suffix: str) -> SeedResult:
    """A new org named with ``suffix``, a user for every role (fresh passwords), projects, teams and an admin key."""
    client = ClientMeta(ip="", user_agent="northstar-seed", request_id="")
    users: list[tuple[str, str, str]] = []
    founder_password = f"demo-{secrets.token_urlsafe(9)}"
    founder_email = f"founder+{suffix}@demo.northstar.dev"
    founder = await create_user(session, email=founder_email, password=founder_password, name="Fiona Founder")
    org = await create_organization(session, name=f"Acme {suffix}", founder=founder)
    users.append(("founder", founder_email, founder_password))
    principal = Principal(org_id=org.id, role=Role.FOUNDER, user_id=founder.id)
    for role in (Role.ADMIN, Role.MEMBER, Role.ANALYST, Role.INVESTOR):
        password = f"demo-{secrets.token_urlsafe(9)}"
        email = f"{role.value}+{suffix}@demo.northstar.dev"
        user = await create_user(session, email=email, password=password, name=f"Demo {role.value.title()}")
        await organizations.add_member(session, principal=principal, user_id=user.id, role=role)
        users.append((role.value, email, password))
    for name, description in SAMPLE_PROJECTS:
        await projects.create_project(session, principal=principal, name=name, description=description)
    for name, description in SAMPLE_TEAMS:
        await projects.create_team(session, org_id=org.id, name=name, description=description, project_id=None)
    key = await credentials.create_api_key(
        session,
        principal=principal,
        name="Demo integration",
        role=Role.ADMIN,
        scopes=None,
        environment="test",
        expires_at=None,
    )
    await audit.record(
        session, org_id=org.id, action="seed.demo", actor_type="user", actor_id=founder.id, client=client
    )
    return SeedResult(org_id=org.id, org_name=org.name, users=users, api_key=key.secret, founder=principal)


async def seed_demo(url: str) -> SeedResult:
    """Idempotent enough for demos: every run creates a new org with fresh users."""
    database = Database(url, pool_size=1)
    try:
        async with database.tenant_transaction() as session:
            return await create_demo_org(session, suffix=secrets.token_hex(3))
    finally:
        await database.dispose()
