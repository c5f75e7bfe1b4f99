"""The pages a share link opens, for whoever holds it (no account): a report with its PDF, or the live investor
dashboard. Pages, not JSON: a passcode is asked in a form, and a dead link is a plain "not found" page."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, Response

from northstar.accounts.service import organizations
from northstar.core.context import ClientMeta
from northstar.core.http import AppError, TooManyRequests
from northstar.reports import rendering
from northstar.reports.service import generation, sharing

router = APIRouter(include_in_schema=False)
Token = Annotated[str, Path(min_length=20, max_length=120, pattern=r"^[0-9a-f]{32}\.[A-Za-z0-9_-]+$")]
# The page of a shared report frames the report's own file (from this origin, or the object store's when the link
# is presigned); nothing of it runs script.
POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-src {frames}; frame-ancestors 'none'"
DASHBOARD_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; sandbox"


def _page(template: str, status: int = 200, *, framed: str | None = None, **context: object) -> HTMLResponse:
    """A page of the share link's; ``framed`` is the URL of the file it frames, whose origin the policy allows."""
    frames = "'self'"
    if framed is not None:
        url = httpx.URL(framed)
        if url.host:
            frames += f" {url.scheme}://{url.netloc.decode()}"
    body = rendering.page(template, **context)
    policy = POLICY.format(frames=frames)
    return HTMLResponse(
        body, status_code=status, headers={"content-security-policy": policy, "cache-control": "no-store"}
    )


async def _open(request: Request, token: str, passcode: str | None) -> Response:
    async with request.app.state.database.tenant_transaction() as session:
        try:
            link, report = await sharing.open_share(
                session,
                token=token,
                passcode=passcode,
                limiter=request.app.state.rate_limiter,
                client=ClientMeta.of(request),
            )
        except sharing.PasscodeNeeded as exc:
            wrong = exc.code == "passcode_wrong"
            return _page("share_passcode.html", 401, token=token, wrong=wrong, busy=None)
        except TooManyRequests as exc:
            return _page(
                "share_passcode.html", 429, token=token, wrong=False, busy=(exc.headers or {}).get("Retry-After")
            )
        except AppError:
            return _page("share_gone.html", 404)
        org = await organizations.get_organization(session, org_id=link.org_id)
        if report is None:
            document = await generation.investor_dashboard(session, org_id=link.org_id, org_name=org.name)
            return HTMLResponse(
                rendering.html(document),
                headers={"content-security-policy": DASHBOARD_POLICY, "cache-control": "no-store"},
            )
        settings, store = request.app.state.settings, request.app.state.storage
        links = {kind: await generation.file_link(store, settings, report, kind) for kind in report.files}
    return _page("shared.html", framed=links.get("html"), report=report, org=org.name, links=links, label=link.label)


@router.get("/shared/{token}", name="reports.shared_view")
async def shared_view(request: Request, token: Token) -> Response:
    return await _open(request, token, None)


@router.post("/shared/{token}", name="reports.shared_unlock")
async def shared_unlock(
    request: Request, token: Token, passcode: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    """The passcode form: right, the page; wrong, the form again (and after five tries in 15 minutes, 429)."""
    return await _open(request, token, passcode)
