"""The caller and their organizations in the graph (``me``, ``organizations``, ``organization``) and the changes
REST offers on them, through ``accounts.service`` and behind the same gates."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry
from strawberry.types import Info

from northstar.accounts.service import authentication, inputs, organizations, pii
from northstar.core.context import require
from northstar.graphapi.context import context_of
from northstar.graphapi.wire import from_row, validated

ORG_READ = require("organization", "read")
ORG_UPDATE = require("organization", "update")


@strawberry.type
class User:
    id: uuid.UUID
    email: str
    name: str
    mfa_enabled: bool
    created_at: datetime


@strawberry.type(description="The caller: their user, the organization they act in and their role there.")
class Me(User):
    org_id: uuid.UUID
    role: str


@strawberry.type
class Organization:
    id: uuid.UUID
    name: str
    slug: str
    subscription_tier: str
    created_at: datetime


@strawberry.type(description="An organization the caller belongs to, with their role in it.")
class MyOrganization(Organization):
    role: str


@strawberry.type
class Query:
    @strawberry.field(description="As GET /users/me (a user's token, not an API key).")
    async def me(self, info: Info) -> Me | None:
        ctx = context_of(info)
        user_id = ctx.user_id()
        async with ctx.db() as session:
            user = await pii.get_profile(session, user_id=user_id, reader=ctx.principal)
        return from_row(Me, user, org_id=ctx.principal.org_id, role=ctx.principal.role.value)

    @strawberry.field(description="As GET /organizations: every organization the caller belongs to.")
    async def organizations(self, info: Info) -> list[MyOrganization] | None:
        ctx = context_of(info)
        user_id = ctx.user_id()
        async with ctx.db() as session:
            rows = await organizations.list_my_organizations(session, user_id=user_id)
        return [from_row(MyOrganization, org, role=role) for org, role in rows]

    @strawberry.field(description="As GET /organization: the organization the caller acts in.")
    async def organization(self, info: Info) -> Organization | None:
        ctx = context_of(info)
        principal = ctx.allow(ORG_READ)
        async with ctx.db() as session:
            org = await organizations.get_organization(session, org_id=principal.org_id)
        return from_row(Organization, org)


@strawberry.input(description="As the body of PATCH /users/me.")
class UpdateMeInput:
    name: str


@strawberry.input(description="As the body of PATCH /organization.")
class UpdateOrganizationInput:
    name: str


@strawberry.type
class Mutation:
    @strawberry.mutation(description="As PATCH /users/me.")
    async def update_me(self, info: Info, input: UpdateMeInput) -> User | None:
        ctx = context_of(info)
        user_id = ctx.user_id()
        body = validated(inputs.UserUpdateRequest, input)
        async with ctx.mutation("updateMe") as session:
            changed = await authentication.update_profile(session, user_id=user_id, name=body.name)
            ctx.changed("updateMe", "user", changed.id)
            user = await pii.get_profile(session, user_id=user_id, reader=ctx.principal)
        return from_row(User, user)

    @strawberry.mutation(description="As PATCH /organization.")
    async def update_organization(self, info: Info, input: UpdateOrganizationInput) -> Organization | None:
        ctx = context_of(info)
        principal = ctx.allow(ORG_UPDATE)
        body = validated(inputs.OrganizationUpdate, input)
        async with ctx.mutation("updateOrganization") as session:
            org = await organizations.update_organization(session, org_id=principal.org_id, name=body.name)
            ctx.changed("updateOrganization", "organization", org.id, name=body.name)
        return from_row(Organization, org)
