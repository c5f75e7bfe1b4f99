"""The organization's single sign-on settings page (``/app/settings/sso``): what to give the identity provider, its
metadata (uploaded or by URL), attribute and group-to-role mapping, just-in-time provisioning and enforcement. It
calls the same service and ``require("organization", "update")`` as ``PUT /api/v1/organization/sso``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from northstar.accounts.auth import OrgUpdatePage
from northstar.accounts.schemas import SsoSettingsRequest
from northstar.accounts.service import organizations, saml
from northstar.core.console.pages import console_router, field_errors, redirect, render
from northstar.core.context import ClientMeta, DbSession, audit_target
from northstar.core.http import AppError
from northstar.core.permissions import Principal

router = console_router()
FLAGS = ("just_in_time", "allow_idp_initiated", "enforced")
TEXTS = ("email_attribute", "name_attribute", "groups_attribute", "default_role")
ERROR_FIELDS = {
    "blocked_destination": "metadata_url",
    "metadata_unreachable": "metadata_url",
    "invalid_metadata": "metadata_xml",
    "metadata_required": "metadata_xml",
    "founder_not_mappable": "group_roles",
}


def group_lines(mapping: dict[str, str]) -> str:
    return "\n".join(f"{group} = {role}" for group, role in mapping.items())


def _group_roles(text: str) -> dict[str, str]:
    """``Group = role`` per line (the group may hold spaces; the role is the last word)."""
    mapping: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip():
            group, _, role = line.rpartition("=")
            if not group.strip():
                raise ValueError(f"“{line.strip()}” is not “Group = role”")
            mapping[group.strip()] = role.strip().lower()
    return mapping


def _submitted(form: dict[str, str]) -> tuple[SsoSettingsRequest | None, dict[str, str]]:
    """The form as the API's request: empty metadata fields left out, unticked boxes false."""
    body: dict[str, Any] = {name: form.get(name, "") for name in TEXTS}
    body |= {flag: flag in form for flag in FLAGS}
    for name in ("metadata_xml", "metadata_url"):
        if form.get(name, "").strip():
            body[name] = form[name].strip()
    try:
        body["group_roles"] = _group_roles(form.get("group_roles", ""))
        return SsoSettingsRequest.model_validate(body), {}
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            return None, field_errors(exc)
        return None, {"group_roles": str(exc)}


async def _page(
    request: Request,
    session: DbSession,
    principal: Principal,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    saved: bool = False,
    status: int = 200,
) -> Response:
    connection = await saml.connection_of(session, principal.org_id)
    described = saml.described(request.app.state.settings.public_url, principal.org_id, connection)
    org = await organizations.get_organization(session, org_id=principal.org_id)
    context = {
        "sso": described,
        "org": org,
        "values": values or {},
        "group_lines": values.get("group_roles", "") if values else group_lines(described.group_roles),
        "errors": errors or {},
        "saved": saved,
        "roles": [("admin", "Admin"), ("member", "Member"), ("analyst", "Analyst"), ("investor", "Investor")],
    }
    return render(request, "accounts/sso.html", context, status=status)


@router.get("/settings/sso", name="console.accounts_sso")
async def sso_page(
    request: Request,
    principal: OrgUpdatePage,
    session: DbSession,
    saved: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    return await _page(request, session, principal, saved=saved is not None)


@router.post("/settings/sso", name="console.accounts_sso_update")
async def update_sso(request: Request, principal: OrgUpdatePage, session: DbSession) -> Response:
    form = {key: value for key, value in (await request.form()).items() if isinstance(value, str)}
    body, errors = _submitted(form)
    if body is None:
        return await _page(request, session, principal, values=form, errors=errors, status=422)
    try:
        async with session.begin_nested():
            connection = await saml.configure(session, principal=principal, body=body, client=ClientMeta.of(request))
    except AppError as exc:
        field = ERROR_FIELDS.get(exc.code, "form")
        return await _page(request, session, principal, values=form, errors={field: exc.message}, status=exc.status)
    audit_target(request, "saml_connection", connection.id)
    return redirect(request, "/app/settings/sso?saved=1")


@router.post("/settings/sso/remove", name="console.accounts_sso_remove")
async def remove_sso(request: Request, principal: OrgUpdatePage, session: DbSession) -> Response:
    await saml.remove(session, org_id=principal.org_id)
    audit_target(request, "saml_connection", principal.org_id)
    return redirect(request, "/app/settings/sso")
