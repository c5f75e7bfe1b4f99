"""Identity (schema ``auth``) and tenancy (schema ``core``) tables.

Every table with ``org_id`` is under forced row-level security (policies in the migration), and
foreign keys between tenant tables include ``org_id`` so no row can point into another tenant.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from northstar.core.crypto import EncryptedColumn, register_encrypted_column
from northstar.core.db import Base, created_at, org_fk, updated_at, uuid_pk

ROLE_CHECK = "role IN ('founder', 'admin', 'member', 'analyst', 'investor')"


class User(Base):
    """E-mail and full name are stored only as AES-256-GCM tokens (``accounts.service.pii`` reads and writes them);
    ``email_blind_index`` (an HMAC of the normalised address) finds a user by e-mail and keeps addresses unique."""

    __tablename__ = "users"
    __table_args__ = {"schema": "auth"}

    id: Mapped[uuid.UUID] = uuid_pk()
    email_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    email_encryption_key_id: Mapped[str] = mapped_column(String(40), nullable=False)
    email_blind_index: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    full_name_encrypted: Mapped[str | None] = mapped_column(Text)
    full_name_encryption_key_id: Mapped[str | None] = mapped_column(String(40))
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    password_changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    mfa_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    mfa_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    mfa_last_step: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


register_encrypted_column(EncryptedColumn("auth.users", "mfa_secret_encrypted", tenant=False))
register_encrypted_column(
    EncryptedColumn("auth.users", "email_encrypted", tenant=False, key_id_column="email_encryption_key_id")
)
register_encrypted_column(
    EncryptedColumn("auth.users", "full_name_encrypted", tenant=False, key_id_column="full_name_encryption_key_id")
)


class Identity(Base):
    """A user's account at a sign-in provider (seed 001's ``auth_provider`` and ``auth_provider_id``): the provider's
    stable subject, never its e-mail, finds the user again."""

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("auth_provider", "auth_provider_id", name="uq_identities_provider_subject"),
        UniqueConstraint("user_id", "auth_provider", name="uq_identities_user_provider"),
        {"schema": "auth"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("auth.users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    auth_provider: Mapped[str] = mapped_column(String(40), nullable=False)
    auth_provider_id: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[datetime] = created_at()
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SignInState(Base):
    """One trip to a provider and back: what the callback must find (``state``, kept as its hash), the ID token's
    ``nonce``, the PKCE verifier, and, when a signed-in user connects an account, who. Used once."""

    __tablename__ = "sign_in_states"
    __table_args__ = {"schema": "auth"}

    id: Mapped[uuid.UUID] = uuid_pk()
    state_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    provider: Mapped[str] = mapped_column(String(40), nullable=False)
    nonce: Mapped[str] = mapped_column(String(64), nullable=False)
    code_verifier: Mapped[str] = mapped_column(String(128), nullable=False)
    link_user_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("auth.users.id", ondelete="CASCADE")
    )
    return_to: Mapped[str] = mapped_column(Text, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MfaRecoveryCode(Base):
    __tablename__ = "mfa_recovery_codes"
    __table_args__ = {"schema": "auth"}

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("auth.users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    code_hash: Mapped[str] = mapped_column(Text, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Organization(Base):
    __tablename__ = "organizations"
    __table_args__ = {"schema": "core"}

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    slug: Mapped[str] = mapped_column(String(80), nullable=False, unique=True)
    subscription_tier: Mapped[str] = mapped_column(String(50), nullable=False, server_default="free")
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class RefreshToken(Base):
    """One row per issued refresh token; a login starts a family, each refresh adds a child."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        ForeignKeyConstraint(
            ["org_id", "user_id"], ["core.memberships.org_id", "core.memberships.user_id"], ondelete="CASCADE"
        ),
        Index("ix_refresh_tokens_family_id", "family_id"),
        Index("ix_refresh_tokens_user_id", "user_id"),
        {"schema": "auth"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    family_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    secret_hash: Mapped[str] = mapped_column(Text, nullable=False)
    user_agent: Mapped[str] = mapped_column(String(500), nullable=False, server_default="")
    ip: Mapped[str] = mapped_column(String(64), nullable=False, server_default="")
    created_at: Mapped[datetime] = created_at()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    single_sign_on: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("org_id", "user_id", name="uq_memberships_org_id_user_id"),
        CheckConstraint(ROLE_CHECK, name="role"),
        Index("ix_memberships_user_id", "user_id"),
        {"schema": "core"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("auth.users.id", ondelete="CASCADE"), nullable=False
    )
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    created_at: Mapped[datetime] = created_at()


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (
        UniqueConstraint("org_id", "id", name="uq_projects_org_id_id"),
        Index("ix_projects_org_id_created_at", "org_id", "created_at"),
        {"schema": "core"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class ProjectMember(Base):
    """A role at project scope, on top of the member's org-wide role."""

    __tablename__ = "project_members"
    __table_args__ = (
        ForeignKeyConstraint(
            ["org_id", "project_id"], ["core.projects.org_id", "core.projects.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["org_id", "user_id"], ["core.memberships.org_id", "core.memberships.user_id"], ondelete="CASCADE"
        ),
        UniqueConstraint("org_id", "project_id", "user_id", name="uq_project_members_org_project_user"),
        Index("ix_project_members_org_id_user_id", "org_id", "user_id"),
        CheckConstraint(ROLE_CHECK, name="role"),
        {"schema": "core"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    project_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    created_at: Mapped[datetime] = created_at()


class Team(Base):
    __tablename__ = "teams"
    __table_args__ = (
        UniqueConstraint("org_id", "id", name="uq_teams_org_id_id"),
        UniqueConstraint("org_id", "name", name="uq_teams_org_id_name"),
        ForeignKeyConstraint(
            ["org_id", "project_id"], ["core.projects.org_id", "core.projects.id"], ondelete="CASCADE"
        ),
        {"schema": "core"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    project_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    scim_external_id: Mapped[str | None] = mapped_column(String(255))  # the identity provider's id (SCIM Group)
    created_at: Mapped[datetime] = created_at()


class TeamMember(Base):
    __tablename__ = "team_members"
    __table_args__ = (
        ForeignKeyConstraint(["org_id", "team_id"], ["core.teams.org_id", "core.teams.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["org_id", "user_id"], ["core.memberships.org_id", "core.memberships.user_id"], ondelete="CASCADE"
        ),
        UniqueConstraint("org_id", "team_id", "user_id", name="uq_team_members_org_team_user"),
        Index("ix_team_members_org_id_user_id", "org_id", "user_id"),
        CheckConstraint(ROLE_CHECK, name="role"),
        {"schema": "core"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    team_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    created_at: Mapped[datetime] = created_at()


class Invitation(Base):
    __tablename__ = "invitations"
    __table_args__ = (
        CheckConstraint(ROLE_CHECK, name="role"),
        CheckConstraint("email = lower(email)", name="email_lowercase"),
        {"schema": "core"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    token_hash: Mapped[str] = mapped_column(Text, nullable=False)
    invited_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        Index("ix_api_keys_org_id", "org_id"),
        CheckConstraint(ROLE_CHECK, name="role"),
        CheckConstraint("environment IN ('live', 'test')", name="environment"),
        {"schema": "core"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    environment: Mapped[str] = mapped_column(String(10), nullable=False, server_default="live")
    secret_hash: Mapped[str] = mapped_column(Text, nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    scopes: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rotated_to: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class ScimToken(Base):
    """The bearer token an organization's identity provider provisions with (SCIM 2.0): kept as its HMAC; the id
    finds it before the org is known (its policy lets the presented id through)."""

    __tablename__ = "scim_tokens"
    __table_args__ = (Index("ix_scim_tokens_org_id", "org_id"), {"schema": "core"})

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    secret_hash: Mapped[str] = mapped_column(Text, nullable=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ScimUser(Base):
    """A person the org's identity provider provisions: its SCIM id, the user it is, whether it is active (an
    inactive one is no member: their sessions in the org end) and the role it is given. ``userName`` is the user's
    e-mail, kept encrypted on the user, never here."""

    __tablename__ = "scim_users"
    __table_args__ = (
        UniqueConstraint("org_id", "user_id", name="uq_scim_users_org_user"),
        Index("ix_scim_users_org_id_created_at", "org_id", "created_at"),
        CheckConstraint(ROLE_CHECK, name="role"),
        {"schema": "core"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("auth.users.id", ondelete="CASCADE"), nullable=False
    )
    external_id: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    role: Mapped[str] = mapped_column(String(20), nullable=False, server_default="member")
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


GRANTED_ROLE_CHECK = "default_role IN ('admin', 'member', 'analyst', 'investor')"


class SamlConnection(Base):
    """An org's SAML identity provider: who it is (entity id), where people sign on, the certificates its
    assertions must be signed with (more than one during a rotation), which attributes carry the e-mail, name and
    groups, the role each IdP group gives (founders are never made by an IdP), and whether members must use it."""

    __tablename__ = "saml_connections"
    __table_args__ = (
        UniqueConstraint("org_id", name="uq_saml_connections_org_id"),
        CheckConstraint(GRANTED_ROLE_CHECK, name="default_role"),
        {"schema": "core"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    idp_entity_id: Mapped[str] = mapped_column(String(1000), nullable=False)
    idp_sso_url: Mapped[str] = mapped_column(String(2000), nullable=False)
    idp_certificates: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    metadata_url: Mapped[str | None] = mapped_column(String(2000))
    metadata_fetched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    email_attribute: Mapped[str] = mapped_column(String(255), nullable=False, server_default="")
    name_attribute: Mapped[str] = mapped_column(String(255), nullable=False, server_default="")
    groups_attribute: Mapped[str] = mapped_column(String(255), nullable=False, server_default="")
    group_roles: Mapped[dict[str, str]] = mapped_column(JSONB, nullable=False, server_default="{}")
    default_role: Mapped[str] = mapped_column(String(20), nullable=False, server_default="member")
    just_in_time: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    allow_idp_initiated: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    enforced: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class SamlRequest(Base):
    """An AuthnRequest we sent: a response's ``InResponseTo`` must name one of the org's, unexpired, and uses it up.
    ``link_user_id`` is the signed-in user who started it to connect their account to the org's IdP."""

    __tablename__ = "saml_requests"
    __table_args__ = (Index("ix_saml_requests_org_id_expires_at", "org_id", "expires_at"), {"schema": "core"})

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    org_id: Mapped[uuid.UUID] = org_fk()
    return_to: Mapped[str] = mapped_column(Text, nullable=False)
    link_user_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("auth.users.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = created_at()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SamlAssertion(Base):
    """An assertion id already accepted: the same assertion posted again before it expires is a replay."""

    __tablename__ = "saml_assertions"
    __table_args__ = {"schema": "core"}

    org_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("core.organizations.id", ondelete="CASCADE"), primary_key=True
    )
    assertion_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = created_at()


class SamlIdentity(Base):
    """The user the org's IdP means by a NameID: found by it again, whatever e-mail the IdP later sends."""

    __tablename__ = "saml_identities"
    __table_args__ = (
        UniqueConstraint("org_id", "name_id", name="uq_saml_identities_org_name_id"),
        UniqueConstraint("org_id", "user_id", name="uq_saml_identities_org_user"),
        {"schema": "core"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("auth.users.id", ondelete="CASCADE"), nullable=False
    )
    name_id: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[datetime] = created_at()
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
