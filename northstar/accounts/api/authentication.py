"""Authentication routes: sign-up, login (JSON and OAuth2 form), refresh, logout, MFA, passwords."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import ValidationError

from northstar.accounts.schemas import (
    IssuedTokens,
    LoginRequest,
    LoginResult,
    MfaCodeRequest,
    MfaDisableRequest,
    MfaEnrollment,
    MfaLoginRequest,
    OAuthToken,
    PasswordChangeRequest,
    RecoveryCodes,
    RefreshRequest,
    SignupRequest,
)
from northstar.accounts.service import authentication as service
from northstar.core.context import ClientMeta, CurrentPrincipal, DbSession
from northstar.core.http import ERROR_RESPONSES, Envelope, Forbidden, Unauthorized
from northstar.core.permissions import Principal
from northstar.core.ratelimit import RateLimiter

router = APIRouter(prefix="/auth", tags=["auth"], responses=ERROR_RESPONSES)


async def limit_auth(request: Request, account: str | None = None) -> None:
    """Brute-force brakes: per client IP, and per account name when one is given."""
    limits = request.app.state.settings.rate_limit
    if not limits.enabled:
        return
    limiter: RateLimiter = request.app.state.rate_limiter
    client = ClientMeta.of(request)
    await limiter.enforce(f"auth-ip:{client.ip}", limit=limits.auth_per_ip_per_minute)
    if account:
        await limiter.enforce(f"auth-account:{account}", limit=limits.auth_per_account_per_minute)


def user_id_of(principal: Principal) -> uuid.UUID:
    if principal.user_id is None:
        raise Forbidden("This route needs a user's access token, not an API key", code="user_required")
    return principal.user_id


@router.post("/signup", status_code=status.HTTP_201_CREATED, response_model=Envelope[IssuedTokens], name="auth.signup")
async def signup(body: SignupRequest, request: Request, session: DbSession) -> Envelope[IssuedTokens]:
    await limit_auth(request, body.email)
    client = ClientMeta.of(request)
    outcome = await service.signup(
        session,
        email=body.email,
        password=body.password,
        name=body.name,
        organization_name=body.organization_name,
        invitation_token=body.invitation_token,
        client=client,
    )
    tokens = await service.issue_tokens(session, user=outcome.user, org_id=outcome.org_id, client=client)
    return Envelope(data=IssuedTokens(tokens=tokens))


@router.post("/login", response_model=Envelope[LoginResult], name="auth.login")
async def login(body: LoginRequest, request: Request, session: DbSession) -> Envelope[LoginResult]:
    await limit_auth(request, body.email)
    result = await service.login(
        session, email=body.email, password=body.password, org_id=body.org_id, client=ClientMeta.of(request)
    )
    return Envelope(data=result)


@router.post(
    "/token",
    response_model=OAuthToken,
    name="auth.token",
    summary="OAuth2 password flow (for the OpenAPI Authorize button)",
)
async def oauth_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request, session: DbSession
) -> OAuthToken:
    """RFC 6749 shape, not the envelope. Accounts with MFA must use /auth/login and /auth/mfa/verify."""
    try:
        credentials = LoginRequest(email=form.username, password=form.password)
    except ValidationError as exc:  # same rules as /auth/login, reported against the form's field names
        raise RequestValidationError(
            [
                {**error, "loc": ("body", "username" if error["loc"][0] == "email" else error["loc"][0])}
                for error in exc.errors()
            ]
        ) from None
    await limit_auth(request, credentials.email)
    result = await service.login(
        session, email=credentials.email, password=credentials.password, org_id=None, client=ClientMeta.of(request)
    )
    if result.tokens is None:
        raise Unauthorized("This account uses MFA: log in with /auth/login", code="mfa_required")
    return OAuthToken(
        access_token=result.tokens.access_token,
        expires_in=result.tokens.expires_in,
        refresh_token=result.tokens.refresh_token,
    )


@router.post("/mfa/verify", response_model=Envelope[IssuedTokens], name="auth.mfa_verify")
async def verify_mfa(body: MfaLoginRequest, request: Request, session: DbSession) -> Envelope[IssuedTokens]:
    await limit_auth(request)
    tokens = await service.verify_mfa_login(
        session,
        mfa_token=body.mfa_token,
        code=body.code,
        recovery_code=body.recovery_code,
        client=ClientMeta.of(request),
    )
    return Envelope(data=IssuedTokens(tokens=tokens))


@router.post("/refresh", response_model=Envelope[IssuedTokens], name="auth.refresh")
async def refresh(body: RefreshRequest, request: Request, session: DbSession) -> Envelope[IssuedTokens]:
    """A new token pair for a refresh token, which is then used up (presenting it again ends the session)."""
    await limit_auth(request)
    tokens = await service.refresh(session, token=body.refresh_token, client=ClientMeta.of(request))
    return Envelope(data=IssuedTokens(tokens=tokens))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, name="auth.logout")
async def logout(principal: CurrentPrincipal, session: DbSession) -> None:
    """Ends the session of the access token used (its whole refresh-token family)."""
    user_id_of(principal)
    if principal.session_id is not None:
        await service.revoke_family(session, family_id=principal.session_id)


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT, name="auth.change_password")
async def change_password(body: PasswordChangeRequest, principal: CurrentPrincipal, session: DbSession) -> None:
    """Changing the password ends every session of the account, this one included."""
    await service.change_password(
        session, user_id=user_id_of(principal), current_password=body.current_password, new_password=body.new_password
    )


@router.post("/mfa/enroll", response_model=Envelope[MfaEnrollment], name="auth.mfa_enroll")
async def enroll_mfa(principal: CurrentPrincipal, session: DbSession) -> Envelope[MfaEnrollment]:
    user_id = user_id_of(principal)
    return Envelope(data=await service.enroll_mfa(session, user_id=user_id))


@router.post("/mfa/confirm", response_model=Envelope[RecoveryCodes], name="auth.mfa_confirm")
async def confirm_mfa(body: MfaCodeRequest, principal: CurrentPrincipal, session: DbSession) -> Envelope[RecoveryCodes]:
    user_id = user_id_of(principal)
    codes = await service.confirm_mfa(session, user_id=user_id, code=body.code)
    return Envelope(data=RecoveryCodes(recovery_codes=codes))


@router.post("/mfa/recovery-codes", response_model=Envelope[RecoveryCodes], name="auth.mfa_recovery_codes")
async def regenerate_recovery_codes(
    body: MfaCodeRequest, principal: CurrentPrincipal, session: DbSession
) -> Envelope[RecoveryCodes]:
    user_id = user_id_of(principal)
    codes = await service.regenerate_recovery_codes(session, user_id=user_id, code=body.code)
    return Envelope(data=RecoveryCodes(recovery_codes=codes))


@router.post("/mfa/disable", status_code=status.HTTP_204_NO_CONTENT, name="auth.mfa_disable")
async def disable_mfa(body: MfaDisableRequest, principal: CurrentPrincipal, session: DbSession) -> None:
    user_id = user_id_of(principal)
    await service.disable_mfa(session, user_id=user_id, password=body.password, code=body.code)
