"""Request and response shapes for accounts: camelCase on the wire, unknown fields rejected."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import EmailStr, Field, field_validator, model_validator

from northstar.core.http import CamelModel, Instant, Name, RequestModel
from northstar.core.permissions import RESOURCES

RoleName = Literal["founder", "admin", "member", "analyst", "investor"]
Password = Field(min_length=1, max_length=1024)


def _normalize_email(value: str) -> str:
    return value.strip().lower()


class SignupRequest(RequestModel):
    """A new account: founding a new organization, or joining the one an invitation is for (and no other)."""

    email: EmailStr
    password: str = Password
    name: Name = Field("", max_length=200)
    organization_name: Name | None = Field(
        None, min_length=1, max_length=255, description="the new organization's name (not with an invitation)"
    )
    invitation_token: str | None = Field(
        None, max_length=300, description="join the inviting organization with the invited role"
    )

    _email = field_validator("email")(_normalize_email)

    @model_validator(mode="after")
    def _one_organization(self) -> SignupRequest:
        if self.invitation_token and self.organization_name:
            raise ValueError("an invitation joins the organization that sent it: leave out organizationName")
        return self


class LoginRequest(RequestModel):
    email: EmailStr
    password: str = Password
    org_id: uuid.UUID | None = None

    _email = field_validator("email")(_normalize_email)


class RefreshRequest(RequestModel):
    refresh_token: str = Field(min_length=1, max_length=4096)


class MfaLoginRequest(RequestModel):
    mfa_token: str = Field(min_length=1, max_length=2000)
    code: str | None = Field(None, max_length=10)
    recovery_code: str | None = Field(None, max_length=40)


class MfaCodeRequest(RequestModel):
    code: str = Field(min_length=6, max_length=6)


class MfaDisableRequest(RequestModel):
    password: str = Password
    code: str = Field(min_length=6, max_length=40)


class PasswordChangeRequest(RequestModel):
    current_password: str = Password
    new_password: str = Password


class UserUpdateRequest(RequestModel):
    name: Name = Field(max_length=200)


class TokenPair(CamelModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int
    org_id: uuid.UUID


class IssuedTokens(CamelModel):
    """What sign-up, MFA verification and refresh answer: the tokens at ``data.tokens``, as login does."""

    tokens: TokenPair


class LoginResult(CamelModel):
    """Either tokens (at ``tokens``, as every route that issues them), or an MFA challenge to answer at
    ``/auth/mfa/verify``."""

    mfa_required: bool
    mfa_token: str | None = None
    tokens: TokenPair | None = None


class OAuthToken(CamelModel):
    """RFC 6749 token response (snake_case by the spec, for the OpenAPI Authorize button)."""

    access_token: str = Field(serialization_alias="access_token")
    token_type: str = Field("bearer", serialization_alias="token_type")
    expires_in: int = Field(serialization_alias="expires_in")
    refresh_token: str = Field(serialization_alias="refresh_token")


class MfaEnrollment(CamelModel):
    secret: str
    otpauth_uri: str


class RecoveryCodes(CamelModel):
    recovery_codes: list[str]


class UserOut(CamelModel):
    id: uuid.UUID
    email: str
    name: str
    mfa_enabled: bool
    created_at: datetime


class MeOut(UserOut):
    org_id: uuid.UUID
    role: RoleName


class OrganizationOut(CamelModel):
    id: uuid.UUID
    name: str
    slug: str
    subscription_tier: str
    created_at: datetime


class SignInProviderOut(CamelModel):
    name: str = Field(description="the path segment: /app/login/with/{name}")
    label: str
    kind: Literal["oidc", "github"]


class IdentityOut(CamelModel):
    provider: str
    label: str
    connected_at: datetime
    last_used_at: datetime | None


class DisconnectRequest(RequestModel):
    password: str | None = Field(None, max_length=1000, description="needed to disconnect the last connected account")


class ScimTokenOut(CamelModel):
    active: bool = Field(description="whether the org has a live SCIM token")
    created_at: datetime | None
    last_used_at: datetime | None
    base_url: str = Field(description="the SCIM base URL to give the identity provider")


class ScimTokenCreated(ScimTokenOut):
    token: str = Field(description="shown once: the identity provider's bearer token")


GrantedRoleName = Literal["admin", "member", "analyst", "investor"]
Attribute = Field("", max_length=255, description="the SAML attribute's name; empty: the usual names")


class SsoSettingsRequest(RequestModel):
    """The org's SAML identity provider. Metadata (its XML, or the URL it is published at) is needed the first
    time; later it may be left out to change only the mapping."""

    metadata_xml: str | None = Field(None, max_length=1024 * 1024, description="the IdP's SAML 2.0 metadata")
    metadata_url: str | None = Field(
        None, max_length=2000, pattern=r"^https?://", description="where the IdP publishes its metadata"
    )
    email_attribute: str = Attribute
    name_attribute: str = Attribute
    groups_attribute: str = Attribute
    group_roles: dict[str, GrantedRoleName] = Field(
        {}, max_length=200, description="the role each IdP group gives (the strongest wins); never founder"
    )
    default_role: GrantedRoleName = Field("member", description="the role of a person in no mapped group")
    just_in_time: bool = Field(True, description="make new people members at their first sign-on")
    allow_idp_initiated: bool = Field(True, description="accept sign-ons started at the IdP (no AuthnRequest)")
    enforced: bool = Field(False, description="members must sign in with SSO (founders keep a password login)")

    @model_validator(mode="after")
    def _one_metadata(self) -> SsoSettingsRequest:
        if self.metadata_xml is not None and self.metadata_url is not None:
            raise ValueError("give the metadata or its URL, not both")
        return self


class SsoSettingsOut(CamelModel):
    configured: bool
    entity_id: str = Field(description="our SP entity id, to give the IdP")
    acs_url: str = Field(description="our assertion consumer service (HTTP-POST), to give the IdP")
    metadata_url: str = Field(description="our SP metadata")
    login_url: str = Field(description="where members start a sign-on")
    idp_entity_id: str | None = None
    idp_sso_url: str | None = None
    idp_certificates: int = Field(0, description="how many signing certificates are trusted")
    idp_metadata_url: str | None = None
    metadata_fetched_at: datetime | None = None
    email_attribute: str = ""
    name_attribute: str = ""
    groups_attribute: str = ""
    group_roles: dict[str, str] = {}
    default_role: str = "member"
    just_in_time: bool = True
    allow_idp_initiated: bool = True
    enforced: bool = False


class MyOrganizationOut(OrganizationOut):
    role: RoleName


class OrganizationUpdate(RequestModel):
    name: Name = Field(min_length=1, max_length=255)


class MemberOut(CamelModel):
    user_id: uuid.UUID
    email: str
    name: str
    role: RoleName
    joined_at: datetime


class RoleUpdate(RequestModel):
    role: RoleName


class InvitationCreate(RequestModel):
    email: EmailStr
    role: RoleName = "member"

    _email = field_validator("email")(_normalize_email)


class InvitationOut(CamelModel):
    id: uuid.UUID
    email: str
    role: RoleName
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None


class InvitationCreated(InvitationOut):
    """The token is returned once to the inviter as well as e-mailed; only the invitee's account can use it."""

    token: str
    accept_url: str


class InvitationAccept(RequestModel):
    token: str = Field(min_length=1, max_length=300)


class NextStep(CamelModel):
    """A request that takes the invitation further."""

    when: str
    method: Literal["POST"] = "POST"
    url: str
    body: dict[str, str]


class InvitationPreview(CamelModel):
    """What an invitation link shows to whoever holds it: who invites, to what role, until when, and how to join."""

    organization_name: str
    role: RoleName
    email: str
    expires_at: datetime
    message: str
    sign_up: NextStep
    accept: NextStep


class ProjectCreate(RequestModel):
    name: Name = Field(min_length=1, max_length=255)
    description: str = Field("", max_length=10_000)


class ProjectUpdate(RequestModel):
    name: Name | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=10_000)


class ProjectOut(CamelModel):
    id: uuid.UUID
    name: str
    description: str
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class ScopedMemberOut(CamelModel):
    user_id: uuid.UUID
    role: RoleName
    created_at: datetime


class TeamCreate(RequestModel):
    name: Name = Field(min_length=1, max_length=255)
    description: str = Field("", max_length=10_000)
    project_id: uuid.UUID | None = None


class TeamUpdate(RequestModel):
    name: Name | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=10_000)


class TeamOut(CamelModel):
    id: uuid.UUID
    name: str
    description: str
    project_id: uuid.UUID | None
    created_at: datetime


class ApiKeyCreate(RequestModel):
    name: Name = Field(min_length=1, max_length=200)
    role: RoleName = "member"
    scopes: list[str] | None = Field(
        None, max_length=100, description="`resource:action` pairs (or `resource:*`) narrowing the role"
    )
    environment: Literal["live", "test"] = "live"
    expires_at: Instant | None = None

    @field_validator("scopes")
    @classmethod
    def _known_scopes(cls, scopes: list[str] | None) -> list[str] | None:
        if scopes is None:
            return None
        for scope in scopes:
            resource, _, action = scope.partition(":")
            if resource not in RESOURCES or action not in ("create", "read", "update", "delete", "*"):
                raise ValueError(f"unknown scope {scope!r}")
        return sorted(set(scopes))


class ApiKeyOut(CamelModel):
    id: uuid.UUID
    name: str
    role: RoleName
    scopes: list[str] | None
    environment: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    """The only response that carries the secret."""

    key: str


class MemberChanged(MemberOut):
    """A role change, with the member's API keys it narrowed (each key now does at most what the new role may)."""

    api_keys_capped: list[ApiKeyOut]


class MemberRemoved(CamelModel):
    """A removal, with the member's API keys it revoked."""

    user_id: uuid.UUID
    api_keys_revoked: list[ApiKeyOut]
