"""Sites (the merchant websites social proof runs on), their templates and notifications."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, LiteralString, TypeVar

import httpx
from pydantic import ValidationError
from sqlalchemy import Row, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.db import fetch_page, flush_unique, get_in_org, set_tenant_context, settings_of
from northstar.core.http import AppError, Forbidden, NotFound, Unprocessable, invalid
from northstar.core.outbound import BlockedDestination, OutboundPolicy, outbound_client
from northstar.core.permissions import Principal
from northstar.settings import OutboundSettings
from northstar.socialproof.models import Notification, Site, Template
from northstar.socialproof.schemas.sites import NotificationFields, NotificationOut
from northstar.socialproof.service import billing
from northstar.webhooks import service as webhooks

DOMAIN_TAKEN = "This organization already has a site for this domain"
MAX_VERIFICATION_BYTES = 64 * 1024


class VerificationFailed(AppError):
    status, code = 422, "verification_failed"


def new_site_key() -> str:
    """Public and unguessable: 144 random bits, so site keys cannot be enumerated."""
    return f"pk_{secrets.token_urlsafe(18)}"


def new_verification_token() -> str:
    return f"nsv_{secrets.token_urlsafe(24)}"


async def list_sites(
    session: AsyncSession, *, org_id: uuid.UUID, search: str | None, offset: int, limit: int
) -> tuple[list[Site], int]:
    query = select(Site).where(Site.org_id == org_id)
    if search:
        query = query.where(
            or_(Site.name.icontains(search, autoescape=True), Site.domain.icontains(search, autoescape=True))
        )
    return await fetch_page(session, query.order_by(Site.created_at.desc(), Site.id), offset=offset, limit=limit)


async def get_site(session: AsyncSession, *, org_id: uuid.UUID, site_id: uuid.UUID) -> Site:
    return await get_in_org(session, Site, site_id, org_id=org_id, missing="No such site")


async def sites_by_ids(
    session: AsyncSession, *, org_id: uuid.UUID, site_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Site]:
    """These sites of the org, in one query (another org's ids are simply absent)."""
    found = await session.scalars(select(Site).where(Site.org_id == org_id, Site.id.in_(list(site_ids))))
    return {site.id: site for site in found}


async def create_site(
    session: AsyncSession, *, principal: Principal, name: str, domain: str, settings: dict[str, Any], data_region: str
) -> Site:
    await billing.check_site_limit(session, org_id=principal.org_id)
    site = Site(
        id=uuid.uuid4(),
        org_id=principal.org_id,
        name=name,
        domain=domain,
        site_key=new_site_key(),
        settings=settings,
        data_region=data_region,
        created_by=principal.user_id,
        verification_token=new_verification_token(),
    )
    session.add(site)
    await flush_unique(session, DOMAIN_TAKEN, code="domain_taken")
    await session.refresh(site)
    return site


def _ensure_may_change(principal: Principal, site: Site, action: str) -> None:
    if not principal.can(action, "sites", owner_id=site.created_by):
        raise Forbidden(f"Your role cannot {action} this site")


async def update_site(
    session: AsyncSession,
    *,
    principal: Principal,
    site_id: uuid.UUID,
    name: str | None,
    domain: str | None,
    settings: dict[str, Any] | None,
) -> Site:
    site = await get_site(session, org_id=principal.org_id, site_id=site_id)
    _ensure_may_change(principal, site, "update")
    if name is not None:
        site.name = name
    if domain is not None and domain != site.domain:  # a new domain is a new claim: proven again, and the newcomer
        site.domain = domain
        site.verified_at = None
        site.domain_set_at = func.now()
    if settings:
        site.settings = {**site.settings, **settings}
    await flush_unique(session, DOMAIN_TAKEN, code="domain_taken")
    await session.refresh(site)
    return site


async def delete_site(session: AsyncSession, *, principal: Principal, site_id: uuid.UUID) -> None:
    site = await get_site(session, org_id=principal.org_id, site_id=site_id)
    _ensure_may_change(principal, site, "delete")
    await session.delete(site)
    await session.flush()


Verification = Literal["verified", "pending", "not_required"]
_CONTESTED = text(
    "SELECT id FROM socialproof.sites WHERE id = ANY (:ids)"
    " AND socialproof.domain_contested(org_id, id, domain, domain_set_at)"
)


async def verification_states(session: AsyncSession, sites: list[Site]) -> dict[uuid.UUID, Verification]:
    """Per site: ``verified`` (it proved control of its domain), ``pending`` (another organization's site on an
    overlapping domain was there first or proved control: this one serves nothing until it proves control too),
    or ``not_required``."""
    unproven = [site.id for site in sites if site.verified_at is None]
    contested = set((await session.scalars(_CONTESTED, {"ids": unproven})).all()) if unproven else set()
    return {
        site.id: "verified" if site.verified_at is not None else "pending" if site.id in contested else "not_required"
        for site in sites
    }


def verification_policy(outbound: OutboundSettings, *, timeout_seconds: float) -> OutboundPolicy:
    """The outbound guard's rules for the verification fetch, with a short time and a small size limit."""
    return OutboundPolicy(
        allow_private_networks=outbound.allow_private_networks,
        allow_http=outbound.allow_http,
        timeout_seconds=min(timeout_seconds, outbound.timeout_seconds),
        max_response_bytes=MAX_VERIFICATION_BYTES,
    )


async def verify_site(
    session: AsyncSession, *, principal: Principal, site_id: uuid.UUID, url_template: str, policy: OutboundPolicy
) -> Site:
    """Fetch the site's verification file; if it holds the site's token, the site has proved control of its domain
    (and another organization's earlier proof of the same domain is withdrawn: control of a host is exclusive)."""
    site = await site_for_change(session, principal=principal, site_id=site_id)
    url = url_template.format(domain=site.domain)
    try:
        async with outbound_client(policy) as client:
            response = await client.get(url, headers={"accept": "text/plain"})
    except BlockedDestination as exc:
        raise VerificationFailed(f"{url} cannot be checked: {exc.message}") from None
    except httpx.HTTPError as exc:
        raise VerificationFailed(f"{url} could not be fetched ({type(exc).__name__}); is the site up?") from None
    if response.status_code != 200:
        raise VerificationFailed(f"{url} answered {response.status_code}, not 200 with this site's token")
    if site.verification_token not in response.text.split():
        raise VerificationFailed(f"{url} does not hold this site's verification token")
    site.verified_at = datetime.now(UTC)
    await session.execute(
        text("SELECT socialproof.release_domain(:org, :domain)"), {"org": site.org_id, "domain": site.domain}
    )
    await session.flush()
    await session.refresh(site)
    return site


async def site_for_change(session: AsyncSession, *, principal: Principal, site_id: uuid.UUID) -> Site:
    """The site, if the caller may change it (and so its templates and notifications)."""
    site = await get_site(session, org_id=principal.org_id, site_id=site_id)
    _ensure_may_change(principal, site, "update")
    return site


async def list_templates(
    session: AsyncSession, *, org_id: uuid.UUID, site_id: uuid.UUID, offset: int, limit: int
) -> tuple[list[Template], int]:
    site = await get_site(session, org_id=org_id, site_id=site_id)
    query = select(Template).where(Template.org_id == org_id, Template.site_id == site.id)
    return await fetch_page(session, query.order_by(Template.created_at, Template.id), offset=offset, limit=limit)


SiteOwned = TypeVar("SiteOwned", Template, Notification)


async def _of_site(
    session: AsyncSession,
    model: type[SiteOwned],
    object_id: uuid.UUID,
    *,
    org_id: uuid.UUID,
    site_id: uuid.UUID,
    missing: str,
) -> SiteOwned:
    """The object if it belongs to this site of this org; any other answers like a missing one."""
    found = await get_in_org(session, model, object_id, org_id=org_id, missing=missing)
    if found.site_id != site_id:
        raise NotFound(missing)
    return found


async def get_template(
    session: AsyncSession, *, org_id: uuid.UUID, site_id: uuid.UUID, template_id: uuid.UUID
) -> Template:
    return await _of_site(session, Template, template_id, org_id=org_id, site_id=site_id, missing="No such template")


async def create_template(
    session: AsyncSession, *, principal: Principal, site_id: uuid.UUID, name: str, message: str, css_content: str
) -> Template:
    site = await site_for_change(session, principal=principal, site_id=site_id)
    template = Template(
        id=uuid.uuid4(), org_id=principal.org_id, site_id=site.id, name=name, message=message, css_content=css_content
    )
    session.add(template)
    await session.flush()
    await session.refresh(template)
    return template


async def update_template(
    session: AsyncSession, *, principal: Principal, site_id: uuid.UUID, template_id: uuid.UUID, changes: dict[str, Any]
) -> Template:
    await site_for_change(session, principal=principal, site_id=site_id)
    template = await get_template(session, org_id=principal.org_id, site_id=site_id, template_id=template_id)
    for field, value in changes.items():
        setattr(template, field, value)
    await session.flush()
    await session.refresh(template)
    return template


async def delete_template(
    session: AsyncSession, *, principal: Principal, site_id: uuid.UUID, template_id: uuid.UUID
) -> None:
    await site_for_change(session, principal=principal, site_id=site_id)
    await session.delete(await get_template(session, org_id=principal.org_id, site_id=site_id, template_id=template_id))
    await flush_unique(
        session,
        "Notifications or A/B test variants use this template; give them another one first",
        code="template_in_use",
    )


DOCUMENTS = ("source", "targeting", "display", "anonymization", "goal")


def _documents(fields: NotificationFields) -> dict[str, Any]:
    """Column values from validated fields; JSON documents camelCase, as the widget reads them."""
    dumped = fields.model_dump(mode="json", by_alias=True)
    return {
        "name": fields.name,
        "type": fields.type,
        "status": fields.status,
        "channels": list(fields.channels),
        "template_id": fields.template_id,
        **{key: dumped[key] for key in DOCUMENTS},
    }


async def _check_template(
    session: AsyncSession, *, org_id: uuid.UUID, site_id: uuid.UUID, template_id: uuid.UUID | None
) -> None:
    if template_id is None:
        return
    try:
        await get_template(session, org_id=org_id, site_id=site_id, template_id=template_id)
    except NotFound:
        raise Unprocessable(
            "The template is not one of this site's",
            details=[{"field": "body.templateId", "message": "no such template on this site", "type": "reference"}],
        ) from None


async def list_notifications(
    session: AsyncSession, *, org_id: uuid.UUID, site_id: uuid.UUID, status: str | None, offset: int, limit: int
) -> tuple[list[Notification], int]:
    site = await get_site(session, org_id=org_id, site_id=site_id)
    query = select(Notification).where(Notification.org_id == org_id, Notification.site_id == site.id)
    if status:
        query = query.where(Notification.status == status)
    return await fetch_page(
        session, query.order_by(Notification.created_at, Notification.id), offset=offset, limit=limit
    )


async def notifications_of_sites(
    session: AsyncSession, *, org_id: uuid.UUID, site_ids: Sequence[uuid.UUID], status: str | None, first: int
) -> dict[uuid.UUID, list[Row[Any]]]:
    """The first ``first`` notifications of each of these sites (oldest first, as the list route orders them), in
    one query: a page of sites with their notifications costs one round trip, not one per site."""
    return await _first_of_sites(session, Notification, org_id=org_id, site_ids=site_ids, first=first, status=status)


async def templates_of_sites(
    session: AsyncSession, *, org_id: uuid.UUID, site_ids: Sequence[uuid.UUID], first: int
) -> dict[uuid.UUID, list[Row[Any]]]:
    """The first ``first`` templates of each of these sites, in one query (as ``notifications_of_sites``)."""
    return await _first_of_sites(session, Template, org_id=org_id, site_ids=site_ids, first=first)


async def _first_of_sites(
    session: AsyncSession,
    model: type[SiteOwned],
    *,
    org_id: uuid.UUID,
    site_ids: Sequence[uuid.UUID],
    first: int,
    status: str | None = None,
) -> dict[uuid.UUID, list[Row[Any]]]:
    """Plain rows with the model's columns as attributes: a page of sites' children is read, never changed, so it
    skips the identity map."""
    # one pass: rows and their rank in the same scan, filtered outside. Joining the ranks back to the table ran the
    # window once per row where the planner guessed one row (fresh tables under RLS): 20 ms for 150 notifications.
    rank = func.row_number().over(partition_by=model.site_id, order_by=(model.created_at, model.id)).label("rank")
    inner = select(model, rank).where(model.org_id == org_id, model.site_id.in_(list(site_ids)))
    if status is not None and model is Notification:
        inner = inner.where(Notification.status == status)
    ranked = inner.subquery()
    columns = [ranked.c[column.name] for column in model.__table__.columns]
    query = select(*columns).where(ranked.c.rank <= first).order_by(ranked.c.site_id, ranked.c.created_at, ranked.c.id)
    found: dict[uuid.UUID, list[Row[Any]]] = {site_id: [] for site_id in site_ids}
    for row in (await session.execute(query)).all():
        found[row.site_id].append(row)
    return found


async def get_notification(
    session: AsyncSession, *, org_id: uuid.UUID, site_id: uuid.UUID, notification_id: uuid.UUID
) -> Notification:
    return await _of_site(
        session, Notification, notification_id, org_id=org_id, site_id=site_id, missing="No such notification"
    )


async def create_notification(
    session: AsyncSession, *, principal: Principal, site_id: uuid.UUID, fields: NotificationFields
) -> Notification:
    site = await site_for_change(session, principal=principal, site_id=site_id)
    await _check_template(session, org_id=principal.org_id, site_id=site.id, template_id=fields.template_id)
    await billing.check_notification_limit(session, org_id=principal.org_id, site_id=site.id)
    notification = Notification(
        id=uuid.uuid4(), org_id=principal.org_id, site_id=site.id, created_by=principal.user_id, **_documents(fields)
    )
    session.add(notification)
    await session.flush()
    await session.refresh(notification)
    return notification


async def update_notification(
    session: AsyncSession,
    *,
    principal: Principal,
    site_id: uuid.UUID,
    notification_id: uuid.UUID,
    changes: dict[str, Any],
) -> Notification:
    """Apply ``changes`` (camelCase, as sent) and validate the whole notification again."""
    await site_for_change(session, principal=principal, site_id=site_id)
    notification = await get_notification(
        session, org_id=principal.org_id, site_id=site_id, notification_id=notification_id
    )
    current = {
        "name": notification.name,
        "type": notification.type,
        "status": notification.status,
        "channels": notification.channels,
        "templateId": notification.template_id,
        **{key: getattr(notification, key) for key in DOCUMENTS},
    }
    try:
        fields = NotificationFields.model_validate({**current, **changes})
    except ValidationError as exc:
        raise invalid("The notification would not be valid", exc) from None
    await _check_template(session, org_id=principal.org_id, site_id=site_id, template_id=fields.template_id)
    for column, value in _documents(fields).items():
        setattr(notification, column, value)
    await session.flush()
    await session.refresh(notification)
    await webhooks.emit(
        session,
        org_id=principal.org_id,
        event_type="notification.updated",
        data=NotificationOut.model_validate(notification).model_dump(mode="json", by_alias=True),
    )
    return notification


async def delete_notification(
    session: AsyncSession, *, principal: Principal, site_id: uuid.UUID, notification_id: uuid.UUID
) -> None:
    await site_for_change(session, principal=principal, site_id=site_id)
    await session.delete(
        await get_notification(session, org_id=principal.org_id, site_id=site_id, notification_id=notification_id)
    )
    await session.flush()


@dataclass(frozen=True)
class PublicSite:
    """What the public widget paths know of a site, found by its key (cached per process)."""

    id: uuid.UUID
    org_id: uuid.UUID
    site_key: str
    domain: str
    settings: dict[str, Any]
    notification_ids: frozenset[uuid.UUID]
    serving: bool  # false while its domain's verification is pending: the widget paths serve nothing for it
    showing: bool = True  # false while the org is over its visitor quota: the feed shows nothing
    collecting: bool = True  # false once the quota's grace has passed: widget events are dropped

    @property
    def persistent_visitor_id(self) -> bool:
        return bool(self.settings.get("persistentVisitorId"))

    @property
    def timezone(self) -> str:
        return str(self.settings.get("timezone") or "UTC")

    @property
    def locale(self) -> str:
        return str(self.settings.get("locale") or "en")


_SITE_BY_KEY: LiteralString = (
    "SELECT id, org_id, domain, settings, verified_at IS NOT NULL"
    " OR NOT socialproof.domain_contested(org_id, id, domain, domain_set_at) AS serving"
    " FROM socialproof.sites WHERE site_key = {site_key}"
)


async def load_public_site(session: AsyncSession, *, site_key: str) -> PublicSite | None:
    """The site with this public key and its notification ids, or None; no tenant is bound before it is found."""
    rows = await set_tenant_context(session, site_key=site_key, then=_SITE_BY_KEY, params={"site_key": site_key})
    if not rows:
        return None
    site = rows[0]
    await set_tenant_context(session, org_id=site.org_id)
    notification_ids = (
        await session.scalars(
            select(Notification.id).where(Notification.org_id == site.org_id, Notification.site_id == site.id)
        )
    ).all()
    quota = await billing.widget_quota(
        session, org_id=site.org_id, grace_days=settings_of(session).socialproof.billing.grace_days
    )
    return PublicSite(
        id=site.id,
        org_id=site.org_id,
        site_key=site_key,
        domain=site.domain,
        settings=site.settings,
        notification_ids=frozenset(notification_ids),
        serving=bool(site.serving),
        showing=quota.showing,
        collecting=quota.collecting,
    )
