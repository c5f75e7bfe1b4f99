"""The console's sign-in pages and the signed-in user's own: login (with MFA), sign-up, invitations, logout,
session renewal, the org switcher, and the account page (profile, password, MFA)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.api.authentication import limit_auth
from northstar.accounts.schemas import (
    LoginRequest,
    LoginResult,
    MfaCodeRequest,
    MfaLoginRequest,
    PasswordChangeRequest,
    SignupRequest,
    TokenPair,
    UserUpdateRequest,
)
from northstar.accounts.service import authentication, identity, organizations, pii, saml, users
from northstar.core.console.pages import (
    CONSOLE_PREFIX,
    LOGIN_PATH,
    REFRESH_COOKIE,
    ConsolePrincipal,
    MaybeConsolePrincipal,
    Membership,
    Viewer,
    console_router,
    end_session,
    leave_for,
    read_form,
    redirect,
    render,
    safe_next,
    start_session,
)
from northstar.core.context import ClientMeta, DbSession
from northstar.core.http import AppError, NotFound
from northstar.core.permissions import Principal

TEMPLATES = FilePath(__file__).parent / "templates"
RENEWAL_GRACE_SECONDS = 15  # parallel requests of one page may all find the access token expired

router = console_router()


async def load_viewer(session: AsyncSession, principal: Principal) -> Viewer:
    """The layout's view of the signed-in user: name, current org and the orgs to switch to."""
    assert principal.user_id is not None
    user = await pii.get_profile(session, user_id=principal.user_id, reader=principal)
    orgs = tuple(
        Membership(org_id=org.id, name=org.name, role=role)
        for org, role in await organizations.list_my_organizations(session, user_id=user.id)
    )
    current = next((org for org in orgs if org.org_id == principal.org_id), None)
    if current is None:
        raise NotFound("No such organization")
    return Viewer(user_name=user.name, email=user.email, org=current, orgs=orgs, mfa_enabled=user.mfa_enabled)


def _signed_in(request: Request, tokens: TokenPair, target: str) -> Response:
    response = redirect(request, safe_next(target))
    start_session(
        request,
        response,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
    )
    return response


def login_form(
    request: Request,
    target: str,
    *,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    status: int = 200,
) -> Response:
    """The login page: the form, and a button for each configured sign-in provider."""
    context = {
        "next": target,
        "values": values or {},
        "errors": errors or {},
        "providers": identity.configured(request.app.state.settings),
    }
    return render(request, "accounts/login.html", context, status=status)


@router.get("/login", name="console.login")
async def login_page(request: Request, next: Annotated[str | None, Query(max_length=2000)] = None) -> Response:
    return login_form(request, safe_next(next))


@router.post("/login", name="console.login_submit")
async def login(
    request: Request, session: DbSession, next: Annotated[str | None, Query(max_length=2000)] = None
) -> Response:
    form = await read_form(request, LoginRequest)
    target = safe_next(next)
    if form.model is None:
        return login_form(request, target, values=form.values, errors=form.errors, status=422)
    await limit_auth(request, form.model.email)
    try:
        result = await authentication.login(
            session, email=form.model.email, password=form.model.password, org_id=None, client=ClientMeta.of(request)
        )
    except AppError as exc:
        await session.commit() if exc.commit else await session.rollback()
        return login_form(request, target, values=form.values, errors={"form": exc.message}, status=exc.status)
    return first_factor_passed(request, result, target)


def first_factor_passed(request: Request, result: LoginResult, target: str) -> Response:
    """Signed in, or on to the MFA step for an account that turned it on."""
    if result.mfa_required:
        return render(request, "accounts/mfa.html", {"next": target, "mfa_token": result.mfa_token, "errors": {}})
    assert result.tokens is not None
    return _signed_in(request, result.tokens, target)


@router.get("/login/sso", name="console.sso_login")
async def sso_login_page(request: Request, next: Annotated[str | None, Query(max_length=2000)] = None) -> Response:
    """``GET /login/sso``: the organization to sign in to with its single sign-on."""
    return render(request, "accounts/login_sso.html", {"next": safe_next(next), "values": {}, "errors": {}})


@router.post("/login/sso", name="console.sso_login_submit")
async def sso_login(
    request: Request,
    session: DbSession,
    organization: Annotated[str, Form(max_length=80)] = "",
    next: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    """On to the organization's IdP (through ``/saml/{org}/login``), found by its identifier."""
    await limit_auth(request)
    target = safe_next(next)
    try:
        org_id = await saml.org_of_slug(session, organization)
    except AppError as exc:
        context = {"next": target, "values": {"organization": organization}, "errors": {"organization": exc.message}}
        return render(request, "accounts/login_sso.html", context, status=422)
    return leave_for(request, f"/saml/{org_id}/login?next={quote(target, safe='/')}", "your identity provider")


def _callback_url(request: Request, provider: str) -> str:
    """The redirect URI registered with the provider: the public address, so it matches behind a proxy."""
    return f"{request.app.state.settings.public_url.rstrip('/')}{CONSOLE_PREFIX}/login/with/{provider}/callback"


@router.get("/login/with/{provider}", name="console.sign_in_with")
async def sign_in_with(
    provider: Annotated[str, Path(max_length=40)],
    request: Request,
    session: DbSession,
    next: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    """Off to the provider's sign-in (authorization code with PKCE); it comes back to the callback below."""
    await limit_auth(request)
    target = safe_next(next)
    try:
        url = await identity.start(
            session,
            http=request.app.state.sign_in_http,
            provider_name=provider,
            redirect_uri=_callback_url(request, provider),
            return_to=target,
        )
    except AppError as exc:
        return login_form(request, target, errors={"form": exc.message}, status=exc.status)
    return RedirectResponse(url, status_code=303)


@router.get("/login/with/{provider}/callback", name="console.sign_in_callback")
async def sign_in_callback(
    provider: Annotated[str, Path(max_length=40)],
    request: Request,
    session: DbSession,
    code: Annotated[str | None, Query(max_length=2000)] = None,
    state: Annotated[str | None, Query(max_length=200)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Back from the provider: signed in (or up), on to the MFA step, a connected account, or why not."""
    await limit_auth(request)
    if error or not code or not state:
        why = "The sign-in was cancelled at the provider." if error else "The provider sent no sign-in code."
        return login_form(request, safe_next(None), errors={"form": why}, status=400)
    try:
        finished = await identity.finish(
            session,
            http=request.app.state.sign_in_http,
            provider_name=provider,
            code=code,
            state=state,
            redirect_uri=_callback_url(request, provider),
            client=ClientMeta.of(request),
        )
    except AppError as exc:
        await session.rollback()
        return login_form(request, safe_next(None), errors={"form": exc.message}, status=exc.status)
    if finished.outcome == "linked":
        return redirect(request, f"{CONSOLE_PREFIX}/account/connected?connected={quote(provider)}")
    if finished.outcome == "link_required":
        label = identity.provider_of(request.app.state.settings, provider).label
        why = (
            f"An account with {finished.email} already exists. Log in with its password, then connect {label} from "
            "your account page."
        )
        return login_form(
            request, finished.return_to, values={"email": finished.email or ""}, errors={"form": why}, status=409
        )
    assert finished.signed_in is not None
    return first_factor_passed(request, finished.signed_in, finished.return_to)


@router.post("/login/mfa", name="console.login_mfa")
async def login_mfa(
    request: Request, session: DbSession, next: Annotated[str | None, Query(max_length=2000)] = None
) -> Response:
    form = await read_form(request, MfaLoginRequest)
    target = safe_next(next)
    mfa_token = form.values.get("mfa_token", "")
    if form.model is None:
        return render(
            request, "accounts/mfa.html", {"next": target, "mfa_token": mfa_token, "errors": form.errors}, status=422
        )
    await limit_auth(request)
    try:
        tokens = await authentication.verify_mfa_login(
            session,
            mfa_token=form.model.mfa_token,
            code=form.model.code or None,
            recovery_code=form.model.recovery_code or None,
            client=ClientMeta.of(request),
        )
    except AppError as exc:
        await session.commit() if exc.commit else await session.rollback()
        context = {"next": target, "mfa_token": mfa_token, "errors": {"form": exc.message}}
        return render(request, "accounts/mfa.html", context, status=exc.status)
    return _signed_in(request, tokens, target)


@router.get("/signup", name="console.signup")
async def signup_page(
    request: Request, session: DbSession, invitation: Annotated[str | None, Query(max_length=300)] = None
) -> Response:
    invited = await organizations.view_invitation(session, token=invitation) if invitation else None
    values = {"email": invited.invitation.email} if invited else {}
    return render(
        request, "accounts/signup.html", {"invited": invited, "invitation": invitation, "values": values, "errors": {}}
    )


@router.post("/signup", name="console.signup_submit")
async def signup(request: Request, session: DbSession) -> Response:
    form = await read_form(request, SignupRequest)
    token = form.values.get("invitation_token") or None
    context = {"invited": None, "invitation": token, "values": form.values, "errors": form.errors}
    if form.model is None:
        return render(request, "accounts/signup.html", context, status=422)
    await limit_auth(request, form.model.email)
    client = ClientMeta.of(request)
    try:
        outcome = await authentication.signup(
            session,
            email=form.model.email,
            password=form.model.password,
            name=form.model.name,
            organization_name=form.model.organization_name,
            invitation_token=form.model.invitation_token,
            client=client,
        )
    except AppError as exc:
        await session.rollback()
        return render(request, "accounts/signup.html", {**context, "errors": {"form": exc.message}}, status=exc.status)
    tokens = await authentication.issue_tokens(session, user=outcome.user, org_id=outcome.org_id, client=client)
    return _signed_in(request, tokens, "/app/")


@router.get("/invitations/accept", name="console.invitation")
async def invitation_page(
    request: Request,
    session: DbSession,
    principal: MaybeConsolePrincipal,
    token: Annotated[str, Query(min_length=1, max_length=300)],
) -> Response:
    """Where the link in an invitation e-mail leads: who invites, as what, and the way in (sign up or accept)."""
    await limit_auth(request)
    invited = await organizations.view_invitation(session, token=token)
    return render(request, "accounts/invitation.html", {"invited": invited, "token": token})


@router.post("/invitations/accept", name="console.invitation_accept")
async def accept_invitation(
    request: Request, principal: ConsolePrincipal, session: DbSession, token: Annotated[str, Form(max_length=300)]
) -> Response:
    assert principal.user_id is not None
    user = await users.get_user(session, principal.user_id)
    client = ClientMeta.of(request)
    membership = await organizations.accept_invitation(session, token=token, user=user, client=client)
    request.state.principal = None  # recorded in the joined org by the service
    tokens = await authentication.switch_organization(
        session, principal=principal, org_id=membership.org_id, client=client
    )
    return _signed_in(request, tokens, "/app/")


@router.api_route("/session/renew", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], name="console.renew")
async def renew(
    request: Request, session: DbSession, next: Annotated[str | None, Query(max_length=2000)] = None
) -> Response:
    """A new access token from the refresh cookie, then back where the browser was going (307 keeps a form's
    method and body). No refresh cookie, or a dead one: the login page, which brings the user back."""
    target = safe_next(next)
    token = request.cookies.get(REFRESH_COOKIE)
    if token:
        try:
            tokens = await authentication.refresh(
                session, token=token, client=ClientMeta.of(request), reuse_grace_seconds=RENEWAL_GRACE_SECONDS
            )
        except AppError:
            pass  # committed as it is: a reuse's revocation must stick
        else:
            response = redirect(request, target, status=307)
            start_session(
                request,
                response,
                access_token=tokens.access_token,
                refresh_token=tokens.refresh_token,
                expires_in=tokens.expires_in,
                renewal=True,
            )
            return response
    response = redirect(request, f"{LOGIN_PATH}?next={quote(target, safe='/')}" if target != "/app/" else LOGIN_PATH)
    end_session(request, response)
    return response


@router.post("/session/logout", name="console.logout")
async def logout(request: Request, principal: ConsolePrincipal, session: DbSession) -> Response:
    if principal.session_id is not None:
        await authentication.revoke_family(session, family_id=principal.session_id)
    response = redirect(request, LOGIN_PATH)
    end_session(request, response)
    return response


@router.post("/session/org", name="console.switch_org")
async def switch_org(
    request: Request, principal: ConsolePrincipal, session: DbSession, org_id: Annotated[uuid.UUID, Form()]
) -> Response:
    tokens = await authentication.switch_organization(
        session, principal=principal, org_id=org_id, client=ClientMeta.of(request)
    )
    request.state.principal = None  # recorded by the service as a sign-in to the new org
    return _signed_in(request, tokens, "/app/")


def _account(
    request: Request,
    *,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    saved: str | None = None,
    status: int = 200,
    **extra: Any,
) -> Response:
    """The account page, with a form's values and errors or what was just saved."""
    context = {"values": values or {}, "errors": errors or {}, "saved": saved, **extra}
    return render(request, "accounts/account.html", context, status=status)


@router.get("/account", name="console.account")
async def account_page(
    request: Request, principal: ConsolePrincipal, changed: Annotated[str | None, Query(max_length=20)] = None
) -> Response:
    saved = "Your password was changed; your other sessions have ended." if changed == "password" else None
    return _account(request, saved=saved)


@router.post("/account/profile", name="console.account_profile")
async def update_profile(request: Request, principal: ConsolePrincipal, session: DbSession) -> Response:
    assert principal.user_id is not None
    form = await read_form(request, UserUpdateRequest)
    if form.model is None:
        return _account(request, values=form.values, errors=form.errors, status=422)
    await authentication.update_profile(session, user_id=principal.user_id, name=form.model.name)
    request.state.viewer = await load_viewer(session, principal)
    return _account(request, saved="Your name was saved.")


@router.post("/account/password", name="console.account_password")
async def change_password(request: Request, principal: ConsolePrincipal, session: DbSession) -> Response:
    """Every session of the user ends, as through the API; this browser gets a new one and stays signed in."""
    assert principal.user_id is not None
    form = await read_form(request, PasswordChangeRequest)
    if form.model is None:
        return _account(request, errors=form.errors, status=422)
    try:
        async with session.begin_nested():
            await authentication.change_password(
                session,
                user_id=principal.user_id,
                current_password=form.model.current_password,
                new_password=form.model.new_password,
            )
    except AppError as exc:
        errors = {"current_password" if exc.code == "invalid_credentials" else "new_password": exc.message}
        return _account(request, errors=errors, status=exc.status)
    user = await users.get_user(session, principal.user_id)
    tokens = await authentication.issue_tokens(
        session, user=user, org_id=principal.org_id, client=ClientMeta.of(request)
    )
    return _signed_in(request, tokens, "/app/account?changed=password")


@router.post("/account/mfa", name="console.mfa_enroll")
async def enroll_mfa(request: Request, principal: ConsolePrincipal, session: DbSession) -> Response:
    assert principal.user_id is not None
    enrollment = await authentication.enroll_mfa(session, user_id=principal.user_id)
    return _account(request, enrollment=enrollment)


@router.post("/account/mfa/confirm", name="console.mfa_confirm")
async def confirm_mfa(request: Request, principal: ConsolePrincipal, session: DbSession) -> Response:
    assert principal.user_id is not None
    form = await read_form(request, MfaCodeRequest)
    if form.model is None:
        return _account(request, errors=form.errors, status=422)
    try:
        async with session.begin_nested():
            codes = await authentication.confirm_mfa(session, user_id=principal.user_id, code=form.model.code)
    except AppError as exc:
        return _account(request, errors={"code": exc.message}, status=exc.status)
    request.state.viewer = await load_viewer(session, principal)
    return _account(request, saved="Two-factor sign-in is on.", recovery_codes=codes)


async def _connected(
    request: Request,
    session: DbSession,
    principal: Principal,
    *,
    errors: Mapping[str, str] | None = None,
    saved: str | None = None,
    status: int = 200,
) -> Response:
    assert principal.user_id is not None
    linked = {found.auth_provider: found for found in await identity.identities(session, user_id=principal.user_id)}
    sso = await saml.connection_of(session, principal.org_id)
    context = {
        "providers": identity.configured(request.app.state.settings),
        "linked": linked,
        "sso": sso,
        "sso_identity": await saml.linked_identity(session, org_id=principal.org_id, user_id=principal.user_id)
        if sso
        else None,
        "errors": errors or {},
        "saved": saved,
    }
    return render(request, "accounts/connected.html", context, status=status)


@router.get("/account/connected", name="console.connected_accounts")
async def connected_accounts(
    request: Request,
    principal: ConsolePrincipal,
    session: DbSession,
    connected: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """``GET /account/connected``: the sign-in providers, each connected (since when) or not, to connect or
    disconnect."""
    saved = None
    if connected == "sso":
        saved = "Your organization's single sign-on is connected: you can sign in with it."
    elif connected:
        found = next((p for p in identity.configured(request.app.state.settings) if p.name == connected), None)
        saved = f"{found.label} is connected: you can sign in with it." if found else None
    return await _connected(request, session, principal, saved=saved)


@router.post("/account/connected/{provider}/connect", name="console.connect_account")
async def connect_account(
    provider: Annotated[str, Path(max_length=40)], request: Request, principal: ConsolePrincipal, session: DbSession
) -> Response:
    """Off to the provider, to come back connected to this user (the trip carries who, not the browser)."""
    try:
        url = await identity.start(
            session,
            http=request.app.state.sign_in_http,
            provider_name=provider,
            redirect_uri=_callback_url(request, provider),
            return_to=f"{CONSOLE_PREFIX}/account/connected",
            link_user_id=principal.user_id,
        )
    except AppError as exc:
        return await _connected(request, session, principal, errors={"form": exc.message}, status=exc.status)
    return leave_for(request, url, identity.provider_of(request.app.state.settings, provider).label)


@router.post("/account/sso/connect", name="console.connect_sso")
async def connect_sso(request: Request, principal: ConsolePrincipal, session: DbSession) -> Response:
    """Off to the org's IdP, to come back with this account connected to the identity it asserts (the request
    carries who, not the browser)."""
    try:
        url = await saml.start(
            session,
            org_id=principal.org_id,
            return_to=f"{CONSOLE_PREFIX}/account/connected",
            link_user_id=principal.user_id,
        )
    except AppError as exc:
        return await _connected(request, session, principal, errors={"form": exc.message}, status=exc.status)
    return leave_for(request, url, "your identity provider")


@router.post("/account/connected/{provider}/disconnect", name="console.disconnect_account")
async def disconnect_account(
    provider: Annotated[str, Path(max_length=40)], request: Request, principal: ConsolePrincipal, session: DbSession
) -> Response:
    """The last connected account goes only with the password, so nobody is left without a way in."""
    assert principal.user_id is not None
    form = await request.form()
    password = form.get("password")
    try:
        async with session.begin_nested():
            await identity.unlink(
                session,
                user_id=principal.user_id,
                provider_name=provider,
                password=password if isinstance(password, str) else None,
                client=ClientMeta.of(request),
            )
    except AppError as exc:
        return await _connected(request, session, principal, errors={"form": exc.message}, status=exc.status)
    return redirect(request, f"{CONSOLE_PREFIX}/account/connected")
