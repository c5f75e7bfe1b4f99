"""The current user, their organizations, members and roles, invitations."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status

from northstar.accounts.api.api_keys import api_key_out
from northstar.accounts.api.authentication import limit_auth, user_id_of
from northstar.accounts.auth import (
    InvitationsCreate,
    InvitationsDelete,
    InvitationsRead,
    MembersDelete,
    MembersRead,
    MembersUpdate,
    OrgRead,
    OrgUpdate,
)
from northstar.accounts.models import ScimToken
from northstar.accounts.schemas import (
    DisconnectRequest,
    IdentityOut,
    InvitationAccept,
    InvitationCreate,
    InvitationCreated,
    InvitationOut,
    InvitationPreview,
    MemberChanged,
    MemberOut,
    MemberRemoved,
    MeOut,
    MyOrganizationOut,
    NextStep,
    OrganizationOut,
    OrganizationUpdate,
    RoleUpdate,
    ScimTokenCreated,
    ScimTokenOut,
    SignInProviderOut,
    SsoSettingsOut,
    SsoSettingsRequest,
    UserOut,
    UserUpdateRequest,
)
from northstar.accounts.service import authentication as auth_service
from northstar.accounts.service import identity, pii, saml, scim, users
from northstar.accounts.service import organizations as service
from northstar.core.context import ClientMeta, CurrentPrincipal, DbSession, audit_target
from northstar.core.http import ERROR_RESPONSES, Envelope, Page, PageEnvelope
from northstar.core.idempotency import Idempotent
from northstar.core.permissions import Role

router = APIRouter(tags=["organizations"], responses=ERROR_RESPONSES)


@router.get("/users/me", response_model=Envelope[MeOut], name="users.me")
async def get_me(principal: CurrentPrincipal, session: DbSession) -> Envelope[MeOut]:
    user = await pii.get_profile(session, user_id=user_id_of(principal), reader=principal)
    me = MeOut.model_validate(
        {**UserOut.model_validate(user).model_dump(), "org_id": principal.org_id, "role": principal.role.value}
    )
    return Envelope(data=me)


@router.patch("/users/me", response_model=Envelope[UserOut], name="users.update_me")
async def update_me(body: UserUpdateRequest, principal: CurrentPrincipal, session: DbSession) -> Envelope[UserOut]:
    user = await auth_service.update_profile(session, user_id=user_id_of(principal), name=body.name)
    return Envelope(data=UserOut.model_validate(user))


@router.get("/auth/providers", response_model=Envelope[list[SignInProviderOut]], name="auth.providers")
async def sign_in_providers(request: Request) -> Envelope[list[SignInProviderOut]]:
    """The providers people may sign in with here (a login page's buttons): ``/app/login/with/{name}``."""
    configured = identity.configured(request.app.state.settings)
    return Envelope(data=[SignInProviderOut.model_validate(provider, from_attributes=True) for provider in configured])


@router.get("/users/me/identities", response_model=Envelope[list[IdentityOut]], name="users.identities")
async def my_identities(
    request: Request, principal: CurrentPrincipal, session: DbSession
) -> Envelope[list[IdentityOut]]:
    """The sign-in providers connected to your account."""
    labels = {provider.name: provider.label for provider in identity.configured(request.app.state.settings)}
    found = await identity.identities(session, user_id=user_id_of(principal))
    return Envelope(
        data=[
            IdentityOut(
                provider=linked.auth_provider,
                label=labels.get(linked.auth_provider, linked.auth_provider),
                connected_at=linked.created_at,
                last_used_at=linked.last_used_at,
            )
            for linked in found
        ]
    )


@router.post(
    "/users/me/identities/{provider}/disconnect",
    status_code=status.HTTP_204_NO_CONTENT,
    name="users.disconnect_identity",
)
async def disconnect_identity(
    provider: Annotated[str, Path(max_length=40)],
    body: DisconnectRequest,
    request: Request,
    principal: CurrentPrincipal,
    session: DbSession,
) -> None:
    """Disconnect a provider; the last connected account goes only with your password (403 without it)."""
    await identity.unlink(
        session,
        user_id=user_id_of(principal),
        provider_name=provider,
        password=body.password,
        client=ClientMeta.of(request),
    )


@router.get("/organizations", response_model=Envelope[list[MyOrganizationOut]], name="organizations.list_mine")
async def list_my_organizations(principal: CurrentPrincipal, session: DbSession) -> Envelope[list[MyOrganizationOut]]:
    rows = await service.list_my_organizations(session, user_id=user_id_of(principal))
    return Envelope(
        data=[
            MyOrganizationOut.model_validate({**OrganizationOut.model_validate(org).model_dump(), "role": role})
            for org, role in rows
        ]
    )


@router.post(
    "/organizations",
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[OrganizationOut],
    name="organizations.create",
    dependencies=[Idempotent],
)
async def create_organization(
    body: OrganizationUpdate, request: Request, principal: CurrentPrincipal, session: DbSession
) -> Envelope[OrganizationOut]:
    """A new org with the caller as Founder; switch to it with ``X-Org-Id`` or a new login."""
    user_id_of(principal)
    org = await service.create_additional_organization(session, principal=principal, name=body.name)
    audit_target(request, "organization", org.id)
    return Envelope(data=OrganizationOut.model_validate(org))


@router.get("/organization", response_model=Envelope[OrganizationOut], name="organization.get")
async def get_organization(principal: OrgRead, session: DbSession) -> Envelope[OrganizationOut]:
    org = await service.get_organization(session, org_id=principal.org_id)
    return Envelope(data=OrganizationOut.model_validate(org))


@router.patch("/organization", response_model=Envelope[OrganizationOut], name="organization.update")
async def update_organization(
    body: OrganizationUpdate, request: Request, principal: OrgUpdate, session: DbSession
) -> Envelope[OrganizationOut]:
    org = await service.update_organization(session, org_id=principal.org_id, name=body.name)
    audit_target(request, "organization", org.id, name=body.name)
    return Envelope(data=OrganizationOut.model_validate(org))


def _scim_out(request: Request, token: ScimToken | None) -> dict[str, object]:
    return {
        "active": token is not None,
        "created_at": token.created_at if token else None,
        "last_used_at": token.last_used_at if token else None,
        "base_url": f"{request.app.state.settings.public_url.rstrip('/')}/scim/v2",
    }


@router.get("/organization/scim-token", response_model=Envelope[ScimTokenOut], name="organization.scim_token")
async def scim_token(request: Request, principal: OrgUpdate, session: DbSession) -> Envelope[ScimTokenOut]:
    """Whether the org's identity provider has a live SCIM token, and the base URL to give it."""
    found = await scim.token_status(session, org_id=principal.org_id)
    return Envelope(data=ScimTokenOut.model_validate(_scim_out(request, found)))


@router.post(
    "/organization/scim-token",
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[ScimTokenCreated],
    name="organization.new_scim_token",
)
async def new_scim_token(request: Request, principal: OrgUpdate, session: DbSession) -> Envelope[ScimTokenCreated]:
    """A new SCIM bearer token for the org's identity provider, shown once; the earlier one stops working."""
    token = await scim.new_token(session, principal=principal)
    found = await scim.token_status(session, org_id=principal.org_id)
    audit_target(request, "scim_token", principal.org_id)
    return Envelope(data=ScimTokenCreated.model_validate({**_scim_out(request, found), "token": token}))


@router.delete(
    "/organization/scim-token", status_code=status.HTTP_204_NO_CONTENT, name="organization.revoke_scim_token"
)
async def revoke_scim_token(request: Request, principal: OrgUpdate, session: DbSession) -> None:
    await scim.revoke_tokens(session, org_id=principal.org_id)
    audit_target(request, "scim_token", principal.org_id)


@router.get("/organization/sso", response_model=Envelope[SsoSettingsOut], name="organization.sso")
async def sso_settings(request: Request, principal: OrgUpdate, session: DbSession) -> Envelope[SsoSettingsOut]:
    """The org's SAML single sign-on: the addresses to give the IdP, and the IdP as configured."""
    connection = await saml.connection_of(session, principal.org_id)
    return Envelope(data=saml.described(request.app.state.settings.public_url, principal.org_id, connection))


@router.put("/organization/sso", response_model=Envelope[SsoSettingsOut], name="organization.configure_sso")
async def configure_sso(
    body: SsoSettingsRequest, request: Request, principal: OrgUpdate, session: DbSession
) -> Envelope[SsoSettingsOut]:
    """Configure SAML single sign-on from the IdP's metadata (uploaded, or fetched from its URL), with attribute
    and group-to-role mapping; ``enforced`` ends members' other sessions at once."""
    connection = await saml.configure(session, principal=principal, body=body, client=ClientMeta.of(request))
    audit_target(request, "saml_connection", connection.id)
    return Envelope(data=saml.described(request.app.state.settings.public_url, principal.org_id, connection))


@router.delete("/organization/sso", status_code=status.HTTP_204_NO_CONTENT, name="organization.remove_sso")
async def remove_sso(request: Request, principal: OrgUpdate, session: DbSession) -> None:
    """Remove single sign-on: members sign in with their passwords or sign-in providers again."""
    await saml.remove(session, org_id=principal.org_id)
    audit_target(request, "saml_connection", principal.org_id)


@router.get("/members", response_model=PageEnvelope[MemberOut], name="members.list")
async def list_members(principal: MembersRead, session: DbSession, page: Page) -> PageEnvelope[MemberOut]:
    members, total = await service.list_members(session, org_id=principal.org_id, offset=page.offset, limit=page.limit)
    return PageEnvelope(data=[MemberOut.model_validate(m) for m in members], meta=page.meta(total))


@router.patch("/members/{user_id}", response_model=Envelope[MemberChanged], name="members.change_role")
async def change_member_role(
    user_id: uuid.UUID, body: RoleUpdate, request: Request, principal: MembersUpdate, session: DbSession
) -> Envelope[MemberChanged]:
    """The API keys the member made are capped to the new role; the answer lists those it narrowed."""
    change = await service.change_member_role(
        session, principal=principal, user_id=user_id, role=Role(body.role), client=ClientMeta.of(request)
    )
    audit_target(
        request,
        "user",
        user_id,
        previousRole=change.previous_role,
        role=body.role,
        apiKeysCapped=[str(key.id) for key in change.capped_keys],
    )
    return Envelope(
        data=MemberChanged.model_validate(
            {
                **MemberOut.model_validate(change.member).model_dump(),
                "api_keys_capped": [api_key_out(key) for key in change.capped_keys],
            }
        )
    )


@router.delete("/members/{user_id}", response_model=Envelope[MemberRemoved], name="members.remove")
async def remove_member(
    user_id: uuid.UUID, request: Request, principal: MembersDelete, session: DbSession
) -> Envelope[MemberRemoved]:
    """The API keys the member made are revoked with them; the answer lists them."""
    revoked = await service.remove_member(session, principal=principal, user_id=user_id, client=ClientMeta.of(request))
    audit_target(request, "user", user_id, apiKeysRevoked=[str(key.id) for key in revoked])
    return Envelope(data=MemberRemoved(user_id=user_id, api_keys_revoked=[api_key_out(key) for key in revoked]))


@router.get("/invitations", response_model=PageEnvelope[InvitationOut], name="invitations.list")
async def list_invitations(principal: InvitationsRead, session: DbSession, page: Page) -> PageEnvelope[InvitationOut]:
    rows, total = await service.list_invitations(session, org_id=principal.org_id, offset=page.offset, limit=page.limit)
    return PageEnvelope(data=[InvitationOut.model_validate(i) for i in rows], meta=page.meta(total))


@router.post(
    "/invitations",
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[InvitationCreated],
    name="invitations.create",
    dependencies=[Idempotent],
)
async def create_invitation(
    body: InvitationCreate, request: Request, principal: InvitationsCreate, session: DbSession
) -> Envelope[InvitationCreated]:
    created = await service.create_invitation(session, principal=principal, email=body.email, role=Role(body.role))
    audit_target(request, "invitation", created.invitation.id, email=body.email, role=body.role)
    out = InvitationCreated.model_validate(
        {
            **InvitationOut.model_validate(created.invitation).model_dump(),
            "token": created.token,
            "accept_url": created.accept_url,
        }
    )
    return Envelope(data=out)


@router.delete("/invitations/{invitation_id}", response_model=Envelope[InvitationOut], name="invitations.revoke")
async def revoke_invitation(
    invitation_id: uuid.UUID, principal: InvitationsDelete, session: DbSession
) -> Envelope[InvitationOut]:
    invitation = await service.revoke_invitation(session, org_id=principal.org_id, invitation_id=invitation_id)
    return Envelope(data=InvitationOut.model_validate(invitation))


@router.get("/invitations/accept", response_model=Envelope[InvitationPreview], name="invitations.preview")
async def preview_invitation(
    request: Request, session: DbSession, token: Annotated[str, Query(min_length=1, max_length=300)]
) -> Envelope[InvitationPreview]:
    """Where the link in an invitation e-mail leads (no login): the inviting org, the role, the expiry, and the two
    ways to join. An unknown, expired, revoked or used token is a 404 that says nothing more."""
    await limit_auth(request)
    view = await service.view_invitation(session, token=token)
    invitation, base = view.invitation, request.app.state.settings.public_url.rstrip("/")
    return Envelope(
        data=InvitationPreview(
            organization_name=view.org_name,
            role=invitation.role,
            email=invitation.email,
            expires_at=invitation.expires_at,
            message=(
                f"You are invited to join {view.org_name} as {invitation.role}. New to Northstar: sign up with "
                f"this invitation (you join {view.org_name} only). Already have an account: accept it signed in."
            ),
            sign_up=NextStep(
                when="you have no account yet",
                url=f"{base}/api/v1/auth/signup",
                body={
                    "email": invitation.email,
                    "password": "<choose a password>",
                    "name": "<your name>",
                    "invitationToken": token,
                },
            ),
            accept=NextStep(
                when="you are signed in as " + invitation.email,
                url=f"{base}/api/v1/invitations/accept",
                body={"token": token},
            ),
        )
    )


@router.post("/invitations/accept", response_model=Envelope[MyOrganizationOut], name="invitations.accept")
async def accept_invitation(
    body: InvitationAccept, request: Request, principal: CurrentPrincipal, session: DbSession
) -> Envelope[MyOrganizationOut]:
    """Any signed-in user whose e-mail the invitation was sent to; they then act in it with ``X-Org-Id``."""
    user = await users.get_user(session, user_id_of(principal))
    membership = await service.accept_invitation(session, token=body.token, user=user, client=ClientMeta.of(request))
    org = await service.get_organization(session, org_id=membership.org_id)
    request.state.principal = None  # recorded in the joined org by the service, not the caller's
    return Envelope(
        data=MyOrganizationOut.model_validate(
            {**OrganizationOut.model_validate(org).model_dump(), "role": membership.role}
        )
    )
