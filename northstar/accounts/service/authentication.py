"""Sign-up, login, refresh-token rotation with reuse detection, logout, passwords and TOTP MFA."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.models import Membership, MfaRecoveryCode, RefreshToken, SamlConnection, User
from northstar.accounts.schemas import LoginResult, MfaEnrollment, TokenPair
from northstar.accounts.service import pii
from northstar.accounts.service.organizations import accept_invitation
from northstar.accounts.service.users import (
    create_organization,
    create_user,
    get_user,
    now,
    user_by_email,
    validated_password,
)
from northstar.audit import service as audit
from northstar.core.context import ClientMeta
from northstar.core.db import set_tenant_context, settings_of
from northstar.core.http import AppError, Conflict, Forbidden, Unauthorized, Unprocessable
from northstar.core.permissions import Principal, Role
from northstar.core.search.indexing import index_rows
from northstar.core.security import (
    TokenError,
    auth_keys,
    constant_time_equal,
    hash_password,
    matching_totp_step,
    new_secret,
    new_totp_secret,
    password_needs_rehash,
    split_credential,
    totp_uri,
    verify_password,
)

REFRESH_PREFIX = "rt_"
RECOVERY_CODE_COUNT = 10
INVALID_LOGIN = "Invalid email or password"


@dataclass(frozen=True)
class SignupOutcome:
    user: User
    org_id: uuid.UUID
    role: Role


async def signup(
    session: AsyncSession,
    *,
    email: str,
    password: str | None,
    name: str,
    organization_name: str | None,
    invitation_token: str | None,
    client: ClientMeta,
) -> SignupOutcome:
    """Create the user and their first org (as Founder), or join the org of an invitation. No password: the user
    came through a sign-in provider (``identity``)."""
    user = await create_user(session, email=email, password=password, name=name)
    if invitation_token:
        membership = await accept_invitation(session, token=invitation_token, user=user, client=client)
        if await requires_sso(session, membership.org_id):
            raise SsoRequired("This organization requires single sign-on: sign in with SSO instead of signing up")
        return SignupOutcome(user, membership.org_id, Role(membership.role))
    org = await create_organization(
        session, name=organization_name or f"{name or email.split('@')[0]}'s org", founder=user
    )
    await audit.record(
        session,
        org_id=org.id,
        action="auth.signup",
        actor_type="user",
        actor_id=user.id,
        client=client,
        target_type="user",
        target_id=str(user.id),
    )
    return SignupOutcome(user, org.id, Role.FOUNDER)


async def _membership_role(session: AsyncSession, *, org_id: uuid.UUID, user_id: uuid.UUID) -> Role | None:
    role = await session.scalar(
        select(Membership.role).where(Membership.org_id == org_id, Membership.user_id == user_id)
    )
    return Role(role) if role else None


async def issue_tokens(
    session: AsyncSession,
    *,
    user: User,
    org_id: uuid.UUID,
    client: ClientMeta,
    family_id: uuid.UUID | None = None,
    single_sign_on: bool = False,
) -> TokenPair:
    """A new refresh token (starting a family unless given) and an access token bound to one org;
    ``single_sign_on`` marks a session the org's identity provider made."""
    settings = settings_of(session).auth
    keys = auth_keys(settings_of(session))
    secret = new_secret()
    token = RefreshToken(
        id=uuid.uuid4(),
        org_id=org_id,
        user_id=user.id,
        family_id=family_id or uuid.uuid4(),
        secret_hash=keys.hash_secret(secret),
        user_agent=client.user_agent,
        ip=client.ip,
        expires_at=now() + timedelta(seconds=settings.refresh_ttl_seconds),
        single_sign_on=single_sign_on,
    )
    session.add(token)
    await session.flush()
    access = keys.signer.issue(
        typ="access",
        subject=str(user.id),
        ttl_seconds=settings.access_ttl_seconds,
        claims={"org": str(org_id), "sid": str(token.family_id)},
    )
    return TokenPair(
        access_token=access,
        refresh_token=f"{REFRESH_PREFIX}{token.id.hex}_{secret}",
        expires_in=settings.access_ttl_seconds,
        org_id=org_id,
    )


async def audit_everywhere(
    session: AsyncSession, *, user_id: uuid.UUID, action: str, client: ClientMeta, details: dict[str, str]
) -> None:
    """An event of a user's own account (a failed login, a connected provider), in every org they belong to."""
    await set_tenant_context(session, user_id=user_id)
    org_ids = (await session.scalars(select(Membership.org_id).where(Membership.user_id == user_id))).all()
    for org_id in org_ids:
        await set_tenant_context(session, org_id=org_id, user_id=user_id)
        await audit.record(
            session, org_id=org_id, action=action, actor_type="user", actor_id=user_id, client=client, details=details
        )


async def _record_failed_login(session: AsyncSession, user: User, client: ClientMeta, reason: str) -> None:
    """Failed logins of a known account go to every org it belongs to (unknown accounts only to the log)."""
    await audit_everywhere(
        session, user_id=user.id, action="auth.login_failed", client=client, details={"reason": reason}
    )


async def login(
    session: AsyncSession, *, email: str, password: str, org_id: uuid.UUID | None, client: ClientMeta
) -> LoginResult:
    user = await user_by_email(session, email)
    settings = settings_of(session)
    if (
        not verify_password(settings, user.password_hash if user else None, password)
        or user is None
        or not user.is_active
    ):
        if user is not None:
            await _record_failed_login(session, user, client, "password")
        raise LoginFailed(INVALID_LOGIN)
    if password_needs_rehash(settings, user.password_hash):
        user.password_hash = hash_password(settings, password)
    return await sign_in_with(session, user=user, client=client, method="password", org_id=org_id)


async def sign_in_with(
    session: AsyncSession,
    *,
    user: User,
    client: ClientMeta,
    method: str,
    org_id: uuid.UUID | None = None,
    single_sign_on: bool = False,
) -> LoginResult:
    """A user whose first factor is proven (a password, a sign-in provider, the org's SAML IdP): their tokens, or
    the MFA step when they turned it on."""
    if not user.is_active:
        raise LoginFailed("This account is deactivated", code="account_inactive")
    if single_sign_on:
        assert org_id is not None
        target_org = org_id
    else:
        target_org = await _login_org(session, user=user, org_id=org_id, client=client, method=method)
    if user.mfa_enabled:
        challenge = auth_keys(settings_of(session)).signer.issue(
            typ="mfa",
            subject=str(user.id),
            ttl_seconds=settings_of(session).auth.mfa_challenge_ttl_seconds,
            claims={"org": str(target_org), "sso": single_sign_on},
        )
        return LoginResult(mfa_required=True, mfa_token=challenge)
    tokens = await _complete_login(session, user, target_org, client, method, single_sign_on=single_sign_on)
    return LoginResult(mfa_required=False, tokens=tokens)


class LoginFailed(Unauthorized):
    """Committed, not rolled back: the failed attempt stays in the audit trail."""

    code = "invalid_credentials"
    commit = True


async def user_event(
    session: AsyncSession, *, org_id: uuid.UUID, user_id: uuid.UUID, action: str, client: ClientMeta, **details: str
) -> None:
    """An event of a user's own sign-in, in the org it is in."""
    await audit.record(
        session, org_id=org_id, action=action, actor_type="user", actor_id=user_id, client=client, details=details
    )


async def requires_sso(session: AsyncSession, org_id: uuid.UUID) -> bool:
    """Whether the org (the transaction's tenant) lets its members in only through its SAML IdP."""
    return bool(await session.scalar(select(SamlConnection.enforced).where(SamlConnection.org_id == org_id)))


class SsoRequired(Forbidden):
    """The org requires its single sign-on: only its IdP (or a founder's break-glass password) lets members in."""

    code = "sso_required"


async def _login_org(
    session: AsyncSession, *, user: User, org_id: uuid.UUID | None, client: ClientMeta, method: str
) -> uuid.UUID:
    """The org a sign-in not made by an IdP goes to: the one asked for, else the user's first that lets them in
    without single sign-on. A founder's way into an org that enforces it is the audited break-glass."""
    await set_tenant_context(session, user_id=user.id)
    if org_id is not None:
        role = await _membership_role(session, org_id=org_id, user_id=user.id)
        if role is None:
            raise Unauthorized("You are not a member of that organization", code="not_a_member")
        candidates = [(org_id, role)]
    else:
        rows = await session.execute(
            select(Membership.org_id, Membership.role)
            .where(Membership.user_id == user.id)
            .order_by(Membership.created_at)
        )
        candidates = [(found, Role(role)) for found, role in rows.all()]
        if not candidates:
            raise Unauthorized("This account belongs to no organization", code="no_organization")
    enforcing = []
    for candidate, role in candidates:
        await set_tenant_context(session, org_id=candidate, user_id=user.id)
        if not await requires_sso(session, candidate):
            return candidate
        enforcing.append((candidate, role))
    founded = next((candidate for candidate, role in enforcing if role == Role.FOUNDER), None)
    if founded is None:
        raise SsoRequired("Your organization requires single sign-on: use “Sign in with SSO” on the login page")
    await set_tenant_context(session, org_id=founded, user_id=user.id)
    await user_event(
        session, org_id=founded, user_id=user.id, action="auth.sso_break_glass", client=client, method=method
    )
    return founded


async def _complete_login(
    session: AsyncSession,
    user: User,
    org_id: uuid.UUID,
    client: ClientMeta,
    method: str,
    *,
    single_sign_on: bool = False,
) -> TokenPair:
    await set_tenant_context(session, org_id=org_id, user_id=user.id)
    user.last_login_at = now()
    tokens = await issue_tokens(session, user=user, org_id=org_id, client=client, single_sign_on=single_sign_on)
    await user_event(session, org_id=org_id, user_id=user.id, action="auth.login", client=client, method=method)
    return tokens


async def verify_mfa_login(
    session: AsyncSession, *, mfa_token: str, code: str | None, recovery_code: str | None, client: ClientMeta
) -> TokenPair:
    try:
        claims = auth_keys(settings_of(session)).signer.verify(mfa_token, typ="mfa")
    except TokenError as exc:
        raise Unauthorized("The MFA challenge is invalid or expired; log in again", code="invalid_token") from exc
    user = await get_user(session, uuid.UUID(claims["sub"]))
    org_id = uuid.UUID(claims["org"])
    if code:
        ok = await _consume_totp(session, user, code)
    elif recovery_code:
        ok = await _consume_recovery_code(session, user, recovery_code)
    else:
        raise Unprocessable("Send a `code` or a `recoveryCode`")
    if not ok:
        await _record_failed_login(session, user, client, "mfa")
        raise LoginFailed("Invalid verification code", code="invalid_mfa_code")
    method = "mfa" if code else "recovery_code"
    return await _complete_login(session, user, org_id, client, method, single_sign_on=claims.get("sso") is True)


async def _consume_totp(session: AsyncSession, user: User, code: str) -> bool:
    """Accept a code at most once: its time step must be newer than the last one used."""
    if not user.mfa_secret_encrypted:
        return False
    secret = auth_keys(settings_of(session)).cipher.decrypt(user.mfa_secret_encrypted, associated_data=str(user.id))
    step = matching_totp_step(secret, code)
    if step is None or step <= user.mfa_last_step:
        return False
    user.mfa_last_step = step
    return True


async def _consume_recovery_code(session: AsyncSession, user: User, code: str) -> bool:
    digest = auth_keys(settings_of(session)).hash_secret(code.strip().lower().replace("-", ""))
    result = await session.execute(
        update(MfaRecoveryCode)
        .where(
            MfaRecoveryCode.user_id == user.id, MfaRecoveryCode.code_hash == digest, MfaRecoveryCode.used_at.is_(None)
        )
        .values(used_at=now())
        .returning(MfaRecoveryCode.id)
    )
    return result.first() is not None


class RefreshRejected(Unauthorized):
    """Committed, not rolled back: a reuse revokes the family, and that must stick."""

    code = "invalid_refresh_token"
    commit = True


async def refresh(
    session: AsyncSession, *, token: str, client: ClientMeta, reuse_grace_seconds: float = 0
) -> TokenPair:
    """New tokens for a refresh token, which is then used up; presenting a used one again revokes its family.

    ``reuse_grace_seconds`` forgives a second use that soon after the first (the console's pages may renew from
    several requests at once): it gets tokens of its own in the same family, which is still revoked as a whole by
    logout, a password change or a later reuse."""
    parsed = split_credential(token, REFRESH_PREFIX)
    if parsed is None:
        raise RefreshRejected("Invalid refresh token")
    token_id, secret = parsed
    await set_tenant_context(session, credential_id=token_id)
    row = await session.get(RefreshToken, token_id, with_for_update=True)
    if row is None or not constant_time_equal(row.secret_hash, auth_keys(settings_of(session)).hash_secret(secret)):
        raise RefreshRejected("Invalid refresh token")
    await set_tenant_context(session, org_id=row.org_id, user_id=row.user_id, credential_id=token_id)
    if row.used_at is None and row.revoked_at is not None:
        raise RefreshRejected(
            "This session has ended (logged out, password changed or revoked); log in again", code="session_revoked"
        )
    if row.used_at is not None and (
        row.revoked_at is not None or (now() - row.used_at).total_seconds() >= reuse_grace_seconds
    ):
        await revoke_family(session, family_id=row.family_id)
        await audit.record(
            session,
            org_id=row.org_id,
            action="auth.refresh_reuse_detected",
            actor_type="user",
            actor_id=row.user_id,
            client=client,
            details={"family": str(row.family_id)},
        )
        raise RefreshRejected("This refresh token was already used; the session has been revoked")
    if row.expires_at <= now():
        raise RefreshRejected("The refresh token has expired; log in again")
    user = await session.get(User, row.user_id)
    if (
        user is None
        or not user.is_active
        or await _membership_role(session, org_id=row.org_id, user_id=row.user_id) is None
    ):
        raise RefreshRejected("The account no longer has access to this organization")
    row.used_at = row.used_at or now()
    return await issue_tokens(
        session,
        user=user,
        org_id=row.org_id,
        client=client,
        family_id=row.family_id,
        single_sign_on=row.single_sign_on,
    )


async def switch_organization(
    session: AsyncSession, *, principal: Principal, org_id: uuid.UUID, client: ClientMeta
) -> TokenPair:
    """A session in another org of the same user, ending the current one (the console's org switcher)."""
    if principal.user_id is None:
        raise Forbidden("Only a signed-in user can switch organizations", code="user_required")
    user = await get_user(session, principal.user_id)
    if principal.session_id is not None:
        await set_tenant_context(session, org_id=principal.org_id, user_id=user.id)
        made_by_idp = await session.scalar(
            select(RefreshToken.single_sign_on).where(RefreshToken.family_id == principal.session_id).limit(1)
        )
        if made_by_idp and org_id != principal.org_id:
            raise Forbidden(
                "You signed in with this organization's single sign-on: log in again to reach another one",
                code="sso_session",
            )
    target = await _login_org(session, user=user, org_id=org_id, client=client, method="switch")
    if principal.session_id is not None:
        await set_tenant_context(session, org_id=principal.org_id, user_id=user.id)
        await revoke_family(session, family_id=principal.session_id)
    return await _complete_login(session, user, target, client, "switch")


async def revoke_family(session: AsyncSession, *, family_id: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now())
    )


async def revoke_all_sessions(session: AsyncSession, *, user_id: uuid.UUID) -> None:
    """Every session of the user in every org (the user context makes them all visible)."""
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now())
    )


async def change_password(
    session: AsyncSession, *, user_id: uuid.UUID, current_password: str, new_password: str
) -> None:
    user = await get_user(session, user_id)
    settings = settings_of(session)
    if not verify_password(settings, user.password_hash, current_password):
        raise AppError("The current password is wrong", code="invalid_credentials", status=400)
    user.password_hash = validated_password(settings, new_password)
    user.password_changed_at = now()
    await revoke_all_sessions(session, user_id=user_id)


async def enroll_mfa(session: AsyncSession, *, user_id: uuid.UUID) -> MfaEnrollment:
    user = await get_user(session, user_id)
    if user.mfa_enabled:
        raise Conflict("MFA is already enabled; disable it first to enroll a new device", code="mfa_enabled")
    secret = new_totp_secret()
    email = pii.open_token(settings_of(session), user.id, user.email_encrypted)  # the user's own, for their app
    user.mfa_secret_encrypted = auth_keys(settings_of(session)).cipher.encrypt(secret, associated_data=str(user.id))
    return MfaEnrollment(secret=secret, otpauth_uri=totp_uri(secret, account=email, issuer="Northstar"))


async def confirm_mfa(session: AsyncSession, *, user_id: uuid.UUID, code: str) -> list[str]:
    user = await get_user(session, user_id)
    if user.mfa_enabled:
        raise Conflict("MFA is already enabled", code="mfa_enabled")
    if not user.mfa_secret_encrypted:
        raise Conflict("Start enrollment first", code="mfa_not_enrolled")
    if not await _consume_totp(session, user, code):
        raise Unprocessable("Invalid verification code", code="invalid_mfa_code")
    user.mfa_enabled = True
    return await _new_recovery_codes(session, user)


async def _new_recovery_codes(session: AsyncSession, user: User) -> list[str]:
    await session.execute(
        update(MfaRecoveryCode)
        .where(MfaRecoveryCode.user_id == user.id, MfaRecoveryCode.used_at.is_(None))
        .values(used_at=now())
    )
    codes = [secrets.token_hex(5) for _ in range(RECOVERY_CODE_COUNT)]
    keys = auth_keys(settings_of(session))
    session.add_all([MfaRecoveryCode(user_id=user.id, code_hash=keys.hash_secret(code)) for code in codes])
    await session.flush()
    return [f"{code[:5]}-{code[5:]}" for code in codes]


async def regenerate_recovery_codes(session: AsyncSession, *, user_id: uuid.UUID, code: str) -> list[str]:
    user = await get_user(session, user_id)
    if not user.mfa_enabled or not await _consume_totp(session, user, code):
        raise Unprocessable("Invalid verification code", code="invalid_mfa_code")
    return await _new_recovery_codes(session, user)


async def disable_mfa(session: AsyncSession, *, user_id: uuid.UUID, password: str, code: str) -> None:
    user = await get_user(session, user_id)
    if not user.mfa_enabled:
        raise Conflict("MFA is not enabled", code="mfa_not_enabled")
    if not verify_password(settings_of(session), user.password_hash, password) or not (
        await _consume_totp(session, user, code) or await _consume_recovery_code(session, user, code)
    ):
        raise Unprocessable("Wrong password or verification code", code="invalid_mfa_code")
    user.mfa_enabled = False
    user.mfa_secret_encrypted = None
    user.mfa_last_step = 0


async def update_profile(session: AsyncSession, *, user_id: uuid.UUID, name: str) -> pii.Profile:
    user = await get_user(session, user_id)
    pii.seal_full_name(settings_of(session), user, name)
    await session.flush()
    # a member is found by name: the membership (of the org this request is in) did not change, its document does
    await index_rows(session, Membership, Membership.user_id == user.id)
    return await pii.get_profile(session, user_id=user.id, reader=pii.PLATFORM)
