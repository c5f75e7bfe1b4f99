"""Merchant routes of the social proof module (seed 001): sites, templates, notifications, events, analytics."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, status

from northstar.core.context import DbSession, audit_target
from northstar.core.http import ERROR_RESPONSES, Envelope, Page, PageEnvelope
from northstar.core.idempotency import Idempotent
from northstar.settings import Settings
from northstar.socialproof.api.public import embed_codes
from northstar.socialproof.auth import EventsCreate, SitesCreate, SitesDelete, SitesRead, SitesUpdate
from northstar.socialproof.models import Site
from northstar.socialproof.runtime import SocialProofRuntime
from northstar.socialproof.schemas.analytics import Analytics, Granularity
from northstar.socialproof.schemas.events import EventBatch, EventsAccepted
from northstar.socialproof.schemas.sites import (
    NotificationCreate,
    NotificationOut,
    NotificationUpdate,
    SiteCreate,
    SiteOut,
    SiteUpdate,
    SiteVerification,
    TemplateCreate,
    TemplateOut,
    TemplateUpdate,
)
from northstar.socialproof.service import analytics as analytics_service
from northstar.socialproof.service import billing
from northstar.socialproof.service import events as event_service
from northstar.socialproof.service import sites as service

router = APIRouter(tags=["social proof"], responses=ERROR_RESPONSES)


def _site_out(request: Request, site: Site, verification: service.Verification) -> SiteOut:
    """The site with the embed codes, which name the platform's public address, and its verification."""
    settings: Settings = request.app.state.settings
    file_url = settings.socialproof.verification_url.format(domain=site.domain)
    if verification == "pending":
        instructions = (
            f"Another organization has a site for {site.domain}, a parent or a subdomain of it, so this "
            "site serves nothing until you prove you control the domain: publish a file at "
            f"{file_url} whose content is the token, then POST /api/v1/sites/{site.id}/verify."
        )
    elif verification == "verified":
        instructions = "This site proved control of its domain; changing the domain asks for a new proof."
    else:
        instructions = (
            f"No proof is needed now. Publishing the token at {file_url} and calling POST "
            f"/api/v1/sites/{site.id}/verify keeps this site serving whatever is registered later."
        )
    state = SiteVerification(
        status=verification,
        token=site.verification_token,
        file_url=file_url,
        verified_at=site.verified_at,
        instructions=instructions,
    )
    return SiteOut.model_validate(site).model_copy(
        update={**embed_codes(site.site_key, public_url=settings.public_url), "verification": state}
    )


async def one_site_out(request: Request, session: DbSession, site: Site) -> SiteOut:
    """The site as the API answers it (embed codes, verification): the console shows the same."""
    return _site_out(request, site, (await service.verification_states(session, [site]))[site.id])


@router.get("/sites", response_model=PageEnvelope[SiteOut], name="sites.list")
async def list_sites(
    request: Request,
    principal: SitesRead,
    session: DbSession,
    page: Page,
    q: Annotated[str | None, Query(max_length=200, description="name or domain contains")] = None,
) -> PageEnvelope[SiteOut]:
    sites, total = await service.list_sites(
        session, org_id=principal.org_id, search=q, offset=page.offset, limit=page.limit
    )
    states = await service.verification_states(session, sites)
    return PageEnvelope(data=[_site_out(request, site, states[site.id]) for site in sites], meta=page.meta(total))


@router.post(
    "/sites",
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[SiteOut],
    name="sites.create",
    dependencies=[Idempotent],
)
async def create_site(
    body: SiteCreate, request: Request, principal: SitesCreate, session: DbSession
) -> Envelope[SiteOut]:
    site = await service.create_site(
        session,
        principal=principal,
        name=body.name,
        domain=body.domain,
        settings=body.settings.model_dump(by_alias=True),
        data_region=body.data_region,
    )
    audit_target(request, "site", site.id, domain=site.domain)
    return Envelope(data=await one_site_out(request, session, site))


@router.get("/sites/{site_id}", response_model=Envelope[SiteOut], name="sites.get")
async def get_site(site_id: uuid.UUID, request: Request, principal: SitesRead, session: DbSession) -> Envelope[SiteOut]:
    site = await service.get_site(session, org_id=principal.org_id, site_id=site_id)
    return Envelope(data=await one_site_out(request, session, site))


@router.patch("/sites/{site_id}", response_model=Envelope[SiteOut], name="sites.update")
async def update_site(
    site_id: uuid.UUID, body: SiteUpdate, request: Request, principal: SitesUpdate, session: DbSession
) -> Envelope[SiteOut]:
    settings = body.settings.model_dump(exclude_none=True, by_alias=True) if body.settings else None
    site = await service.update_site(
        session, principal=principal, site_id=site_id, name=body.name, domain=body.domain, settings=settings
    )
    audit_target(request, "site", site.id, **body.model_dump(exclude_none=True, by_alias=True, mode="json"))
    return Envelope(data=await one_site_out(request, session, site))


@router.post("/sites/{site_id}/verify", response_model=Envelope[SiteOut], name="sites.verify")
async def verify_site(
    site_id: uuid.UUID, request: Request, principal: SitesUpdate, session: DbSession
) -> Envelope[SiteOut]:
    """Prove control of the site's domain: the platform fetches ``verification.fileUrl`` (https, through the
    outbound guard) and checks that it holds ``verification.token``; 422 ``verification_failed`` says what it found.
    """
    settings: Settings = request.app.state.settings
    config = settings.socialproof
    site = await service.verify_site(
        session,
        principal=principal,
        site_id=site_id,
        url_template=config.verification_url,
        policy=service.verification_policy(settings.outbound, timeout_seconds=config.verification_timeout_seconds),
    )
    audit_target(request, "site", site.id, verified=site.domain)
    return Envelope(data=await one_site_out(request, session, site))


@router.delete("/sites/{site_id}", status_code=status.HTTP_204_NO_CONTENT, name="sites.delete")
async def delete_site(site_id: uuid.UUID, request: Request, principal: SitesDelete, session: DbSession) -> None:
    await service.delete_site(session, principal=principal, site_id=site_id)
    audit_target(request, "site", site_id)


@router.get("/sites/{site_id}/templates", response_model=PageEnvelope[TemplateOut], name="templates.list")
async def list_templates(
    site_id: uuid.UUID, principal: SitesRead, session: DbSession, page: Page
) -> PageEnvelope[TemplateOut]:
    templates, total = await service.list_templates(
        session, org_id=principal.org_id, site_id=site_id, offset=page.offset, limit=page.limit
    )
    return PageEnvelope(data=[TemplateOut.model_validate(t) for t in templates], meta=page.meta(total))


@router.post(
    "/sites/{site_id}/templates",
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[TemplateOut],
    name="templates.create",
    dependencies=[Idempotent],
)
async def create_template(
    site_id: uuid.UUID, body: TemplateCreate, request: Request, principal: SitesUpdate, session: DbSession
) -> Envelope[TemplateOut]:
    template = await service.create_template(
        session,
        principal=principal,
        site_id=site_id,
        name=body.name,
        message=body.message,
        css_content=body.css_content,
    )
    audit_target(request, "template", template.id, site=str(site_id))
    return Envelope(data=TemplateOut.model_validate(template))


@router.get("/sites/{site_id}/templates/{template_id}", response_model=Envelope[TemplateOut], name="templates.get")
async def get_template(
    site_id: uuid.UUID, template_id: uuid.UUID, principal: SitesRead, session: DbSession
) -> Envelope[TemplateOut]:
    template = await service.get_template(session, org_id=principal.org_id, site_id=site_id, template_id=template_id)
    return Envelope(data=TemplateOut.model_validate(template))


@router.patch("/sites/{site_id}/templates/{template_id}", response_model=Envelope[TemplateOut], name="templates.update")
async def update_template(
    site_id: uuid.UUID,
    template_id: uuid.UUID,
    body: TemplateUpdate,
    request: Request,
    principal: SitesUpdate,
    session: DbSession,
) -> Envelope[TemplateOut]:
    template = await service.update_template(
        session,
        principal=principal,
        site_id=site_id,
        template_id=template_id,
        changes=body.model_dump(exclude_none=True),
    )
    audit_target(request, "template", template.id, site=str(site_id))
    return Envelope(data=TemplateOut.model_validate(template))


@router.delete(
    "/sites/{site_id}/templates/{template_id}", status_code=status.HTTP_204_NO_CONTENT, name="templates.delete"
)
async def delete_template(
    site_id: uuid.UUID, template_id: uuid.UUID, request: Request, principal: SitesUpdate, session: DbSession
) -> None:
    await service.delete_template(session, principal=principal, site_id=site_id, template_id=template_id)
    audit_target(request, "template", template_id, site=str(site_id))


NOTIFICATION = "/sites/{site_id}/notifications/{notification_id}"


@router.get("/sites/{site_id}/notifications", response_model=PageEnvelope[NotificationOut], name="notifications.list")
async def list_notifications(
    site_id: uuid.UUID,
    principal: SitesRead,
    session: DbSession,
    page: Page,
    status_: Annotated[Literal["draft", "active", "paused"] | None, Query(alias="status")] = None,
) -> PageEnvelope[NotificationOut]:
    notifications, total = await service.list_notifications(
        session, org_id=principal.org_id, site_id=site_id, status=status_, offset=page.offset, limit=page.limit
    )
    return PageEnvelope(data=[NotificationOut.model_validate(n) for n in notifications], meta=page.meta(total))


@router.post(
    "/sites/{site_id}/notifications",
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[NotificationOut],
    name="notifications.create",
    dependencies=[Idempotent],
)
async def create_notification(
    site_id: uuid.UUID, body: NotificationCreate, request: Request, principal: SitesUpdate, session: DbSession
) -> Envelope[NotificationOut]:
    notification = await service.create_notification(session, principal=principal, site_id=site_id, fields=body)
    audit_target(request, "notification", notification.id, site=str(site_id), status=notification.status)
    return Envelope(data=NotificationOut.model_validate(notification))


@router.get(NOTIFICATION, response_model=Envelope[NotificationOut], name="notifications.get")
async def get_notification(
    site_id: uuid.UUID, notification_id: uuid.UUID, principal: SitesRead, session: DbSession
) -> Envelope[NotificationOut]:
    notification = await service.get_notification(
        session, org_id=principal.org_id, site_id=site_id, notification_id=notification_id
    )
    return Envelope(data=NotificationOut.model_validate(notification))


@router.patch(NOTIFICATION, response_model=Envelope[NotificationOut], name="notifications.update")
async def update_notification(
    site_id: uuid.UUID,
    notification_id: uuid.UUID,
    body: NotificationUpdate,
    request: Request,
    principal: SitesUpdate,
    session: DbSession,
) -> Envelope[NotificationOut]:
    changes = body.model_dump(mode="json", by_alias=True, exclude_unset=True)
    notification = await service.update_notification(
        session, principal=principal, site_id=site_id, notification_id=notification_id, changes=changes
    )
    audit_target(request, "notification", notification.id, site=str(site_id), status=notification.status)
    return Envelope(data=NotificationOut.model_validate(notification))


@router.delete(NOTIFICATION, status_code=status.HTTP_204_NO_CONTENT, name="notifications.delete")
async def delete_notification(
    site_id: uuid.UUID, notification_id: uuid.UUID, request: Request, principal: SitesUpdate, session: DbSession
) -> None:
    await service.delete_notification(session, principal=principal, site_id=site_id, notification_id=notification_id)
    audit_target(request, "notification", notification_id, site=str(site_id))


@router.post(
    "/sites/{site_id}/events",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Envelope[EventsAccepted],
    name="events.create",
)
async def record_events(
    site_id: uuid.UUID, body: EventBatch, request: Request, principal: EventsCreate, session: DbSession
) -> Envelope[EventsAccepted]:
    """Events from the merchant's backend (an API key with ``events:create``): ``{"events": [...]}``, 1 to 500.

    Answered once stored; an event id seen in the last 7 days is counted as a duplicate and ignored, so
    retries are safe.
    """
    runtime: SocialProofRuntime = request.app.state.socialproof
    await billing.ensure_collecting(session, org_id=principal.org_id)
    result = await event_service.record_events(
        session,
        writer=runtime.writer,
        visitors=runtime.collector.visitors,
        org_id=principal.org_id,
        site_id=site_id,
        events=body.events,
    )
    audit_target(request, "site", site_id, events=result.accepted)
    return Envelope(data=EventsAccepted(accepted=result.accepted, duplicates=result.duplicates))


@router.get("/sites/{site_id}/analytics", response_model=Envelope[Analytics], name="analytics.get")
async def site_analytics(
    site_id: uuid.UUID,
    principal: SitesRead,
    session: DbSession,
    start: Annotated[
        str | None,
        Query(
            max_length=40, description="a date (in `timezone`) or an ISO date and time; default 30 days before `end`"
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(max_length=40, description="a date (included) or an ISO date and time (excluded); default today"),
    ] = None,
    granularity: Granularity = "day",
    notification_id: Annotated[uuid.UUID | None, Query(alias="notificationId")] = None,
    timezone: Annotated[str | None, Query(max_length=64, description="IANA zone; default the site's")] = None,
) -> Envelope[Analytics]:
    """Impressions, hovers, clicks, CTR, conversions and unique visitors: totals, per notification, over time."""
    return Envelope(
        data=await analytics_service.site_analytics(
            session,
            org_id=principal.org_id,
            site_id=site_id,
            start=start,
            end=end,
            granularity=granularity,
            timezone=timezone,
            notification_id=notification_id,
        )
    )
