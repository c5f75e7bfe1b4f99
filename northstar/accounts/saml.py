"""An organization's SAML 2.0 endpoints (``/saml/{org_id}``): its service provider metadata, the start of a sign-on
at Northstar (SP-initiated), and the assertion consumer service the IdP posts to.

They sit outside the console's CSRF check: the IdP's page posts the ACS from another site, and what proves the post
is the response's signature, audience, recipient and ``InResponseTo`` (see ``service/saml.py``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from northstar.accounts.api.authentication import limit_auth
from northstar.accounts.console import first_factor_passed, login_form
from northstar.accounts.service import saml
from northstar.core.console.pages import CONSOLE_PREFIX, safe_next
from northstar.core.context import ClientMeta, DbSession
from northstar.core.http import AppError

router = APIRouter(prefix="/saml/{org_id}", include_in_schema=False)
METADATA_TYPE = "application/samlmetadata+xml"


@router.get("/metadata", name="saml.metadata")
async def metadata(org_id: uuid.UUID, request: Request) -> Response:
    """What the org's IdP is told about us: our entity id and ACS. It says nothing of the org, so anyone may read it,
    before the IdP is configured too."""
    return Response(saml.sp_metadata(request.app.state.settings.public_url, org_id), media_type=METADATA_TYPE)


@router.get("/login", name="saml.login")
async def login(
    org_id: uuid.UUID,
    request: Request,
    session: DbSession,
    next: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    """Off to the org's IdP with an AuthnRequest; it comes back to the ACS."""
    await limit_auth(request)
    target = safe_next(next)
    try:
        url = await saml.start(session, org_id=org_id, return_to=target)
    except AppError as exc:
        return login_form(request, target, errors={"form": exc.message}, status=exc.status)
    return RedirectResponse(url, status_code=303)


@router.post("/acs", name="saml.acs")
async def assertion_consumer_service(org_id: uuid.UUID, request: Request, session: DbSession) -> Response:
    """The IdP's response: signed in (or on to the MFA step), an account connected, or why not."""
    await limit_auth(request)
    form = await request.form()
    saml_response, relay_state = form.get("SAMLResponse"), form.get("RelayState")
    if not isinstance(saml_response, str) or not saml_response:
        return login_form(
            request, safe_next(None), errors={"form": "The identity provider sent no response."}, status=400
        )
    try:
        finished = await saml.finish(
            session,
            org_id=org_id,
            saml_response=saml_response,
            relay_state=relay_state if isinstance(relay_state, str) else None,
            client=ClientMeta.of(request),
        )
    except AppError as exc:
        await session.rollback()
        return login_form(request, safe_next(None), errors={"form": exc.message}, status=exc.status)
    if finished.outcome == "linked":
        return first_factor_passed(request, finished.signed_in, f"{CONSOLE_PREFIX}/account/connected?connected=sso")
    return first_factor_passed(request, finished.signed_in, safe_next(finished.return_to))
