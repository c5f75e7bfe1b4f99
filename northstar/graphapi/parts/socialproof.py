"""Social proof in the graph: sites with their notifications, templates and analytics, and the mutations the REST
routes offer on them, through ``socialproof.service`` and behind the same gates."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from northstar.core.context import require
from northstar.graphapi.context import context_of
from northstar.graphapi.wire import first_of, from_row, too_long, validated, window
from northstar.settings import Settings
from northstar.socialproof.service import analytics as analytics_service
from northstar.socialproof.service import inputs
from northstar.socialproof.service import sites as service

SITES_READ = require("sites", "read")
SITES_CREATE = require("sites", "create")
SITES_UPDATE = require("sites", "update")
SITES_DELETE = require("sites", "delete")
NESTED_DEFAULT = 20


@strawberry.enum
class NotificationStatus(enum.Enum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"


@strawberry.enum
class Granularity(enum.Enum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@strawberry.type
class Template:
    id: uuid.UUID
    site_id: uuid.UUID
    name: str
    message: str
    css_content: str
    created_at: datetime
    updated_at: datetime


@strawberry.type
class Notification:
    id: uuid.UUID
    site_id: uuid.UUID
    name: str
    type: str
    status: str
    channels: list[str]
    template_id: uuid.UUID | None
    source: JSON
    targeting: JSON
    display: JSON
    anonymization: JSON
    goal: JSON
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="The site the notification belongs to (all asked-for sites in one query).")
    async def site(self, info: Info) -> Site:
        ctx = context_of(info)

        async def batch(site_ids: list[uuid.UUID]) -> list[Site]:
            async with ctx.db() as session:
                found = await service.sites_by_ids(session, org_id=ctx.principal.org_id, site_ids=site_ids)
            return [from_row(Site, found[site_id]) for site_id in site_ids]

        return await ctx.loader("notification.site", batch).load(self.site_id)


@strawberry.type
class Metrics:
    impressions: int
    hovers: int
    clicks: int
    closes: int
    conversions: int
    unique_visitors: int
    page_views: int
    ctr: float | None
    conversion_rate: float | None


METRICS = tuple(Metrics.__annotations__)


def _metrics(values: dict[str, Any]) -> dict[str, Any]:
    return {name: values[name] for name in METRICS}


@strawberry.type
class NotificationMetrics(Metrics):
    notification_id: uuid.UUID
    name: str


@strawberry.type
class SeriesPoint(Metrics):
    bucket: datetime


@strawberry.type
class SiteAnalytics:
    site_id: uuid.UUID
    start: datetime
    end: datetime
    timezone: str
    granularity: str
    totals: Metrics
    notifications: list[NotificationMetrics]
    series: list[SeriesPoint]


@strawberry.type
class Site:
    id: uuid.UUID
    name: str
    domain: str
    site_key: str
    settings: JSON
    data_region: str
    verified_at: datetime | None
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="The site's first notifications, oldest first (all sites' in one query).")
    async def notifications(
        self, info: Info, status: NotificationStatus | None = None, first: int = NESTED_DEFAULT
    ) -> list[Notification]:
        ctx = context_of(info)
        size, wanted = first_of(first), status.value if status else None

        async def batch(site_ids: list[uuid.UUID]) -> list[list[Notification]]:
            async with ctx.db() as session:
                found = await service.notifications_of_sites(
                    session, org_id=ctx.principal.org_id, site_ids=site_ids, status=wanted, first=size
                )
            return [[from_row(Notification, row) for row in found[site_id]] for site_id in site_ids]

        return await ctx.loader(("site.notifications", wanted, size), batch).load(self.id)

    @strawberry.field(description="The site's first templates, oldest first (all sites' in one query).")
    async def templates(self, info: Info, first: int = NESTED_DEFAULT) -> list[Template]:
        ctx = context_of(info)
        size = first_of(first)

        async def batch(site_ids: list[uuid.UUID]) -> list[list[Template]]:
            async with ctx.db() as session:
                found = await service.templates_of_sites(
                    session, org_id=ctx.principal.org_id, site_ids=site_ids, first=size
                )
            return [[from_row(Template, row) for row in found[site_id]] for site_id in site_ids]

        return await ctx.loader(("site.templates", size), batch).load(self.id)

    @strawberry.field(description="As GET /sites/{siteId}/analytics: totals, per notification, over time.")
    async def analytics(
        self,
        info: Info,
        start: str | None = None,
        end: str | None = None,
        granularity: Granularity = Granularity.DAY,
        timezone: str | None = None,
        notification_id: uuid.UUID | None = None,
    ) -> SiteAnalytics:
        ctx = context_of(info)
        for name, value, most in (("start", start, 40), ("end", end, 40), ("timezone", timezone, 64)):
            if value is not None and len(value) > most:
                too_long(name, most)
        async with ctx.db() as session:
            found = await analytics_service.site_analytics(
                session,
                org_id=ctx.principal.org_id,
                site_id=self.id,
                start=start,
                end=end,
                granularity=granularity.value,
                timezone=timezone,
                notification_id=notification_id,
            )
        data = found.model_dump()
        return SiteAnalytics(
            site_id=data["site_id"],
            start=data["start"],
            end=data["end"],
            timezone=data["timezone"],
            granularity=data["granularity"],
            totals=Metrics(**_metrics(data["totals"])),
            notifications=[
                NotificationMetrics(notification_id=row["notification_id"], name=row["name"], **_metrics(row))
                for row in data["notifications"]
            ],
            series=[SeriesPoint(bucket=row["bucket"], **_metrics(row)) for row in data["series"]],
        )


@strawberry.type
class SitePage:
    items: list[Site]
    page: int
    limit: int
    total: int


@strawberry.type
class Query:
    @strawberry.field(description="As GET /sites: newest first; q searches name and domain.")
    async def sites(self, info: Info, page: int = 1, limit: int = 20, q: str | None = None) -> SitePage | None:
        ctx = context_of(info)
        ctx.allow(SITES_READ)
        bounds = window(page, limit)
        if q is not None and len(q) > 200:
            too_long("q", 200)
        async with ctx.db() as session:
            rows, total = await service.list_sites(
                session, org_id=ctx.principal.org_id, search=q, offset=bounds.offset, limit=bounds.limit
            )
        return SitePage(items=[from_row(Site, row) for row in rows], page=bounds.page, limit=bounds.limit, total=total)

    @strawberry.field(description="As GET /sites/{siteId}; another organization's site is not_found.")
    async def site(self, info: Info, id: uuid.UUID) -> Site | None:
        ctx = context_of(info)
        ctx.allow(SITES_READ)
        async with ctx.db() as session:
            return from_row(Site, await service.get_site(session, org_id=ctx.principal.org_id, site_id=id))

    @strawberry.field(description="As GET /sites/{siteId}/notifications/{notificationId}.")
    async def notification(self, info: Info, site_id: uuid.UUID, id: uuid.UUID) -> Notification | None:
        ctx = context_of(info)
        ctx.allow(SITES_READ)
        async with ctx.db() as session:
            row = await service.get_notification(
                session, org_id=ctx.principal.org_id, site_id=site_id, notification_id=id
            )
        return from_row(Notification, row)

    @strawberry.field(description="As GET /sites/{siteId}/templates/{templateId}.")
    async def template(self, info: Info, site_id: uuid.UUID, id: uuid.UUID) -> Template | None:
        ctx = context_of(info)
        ctx.allow(SITES_READ)
        async with ctx.db() as session:
            row = await service.get_template(session, org_id=ctx.principal.org_id, site_id=site_id, template_id=id)
        return from_row(Template, row)


@strawberry.input(description="As the body of POST /sites.")
class SiteCreateInput:
    name: str
    domain: str
    settings: JSON | None = strawberry.UNSET
    data_region: str | None = strawberry.UNSET


@strawberry.input(description="As the body of PATCH /sites/{siteId}: only the fields given change.")
class SiteUpdateInput:
    name: str | None = strawberry.UNSET
    domain: str | None = strawberry.UNSET
    settings: JSON | None = strawberry.UNSET


@strawberry.input(description="As the body of POST /sites/{siteId}/templates.")
class TemplateCreateInput:
    name: str
    message: str
    css_content: str | None = strawberry.UNSET


@strawberry.input(description="As the body of PATCH /sites/{siteId}/templates/{templateId}.")
class TemplateUpdateInput:
    name: str | None = strawberry.UNSET
    message: str | None = strawberry.UNSET
    css_content: str | None = strawberry.UNSET


@strawberry.input(
    description="As the body of POST /sites/{siteId}/notifications; source, targeting, display, anonymization "
    "and goal are the REST documents (camelCase JSON objects)."
)
class NotificationCreateInput:
    name: str
    type: str
    status: NotificationStatus | None = strawberry.UNSET
    channels: list[str] | None = strawberry.UNSET
    template_id: uuid.UUID | None = strawberry.UNSET
    source: JSON | None = strawberry.UNSET
    targeting: JSON | None = strawberry.UNSET
    display: JSON | None = strawberry.UNSET
    anonymization: JSON | None = strawberry.UNSET
    goal: JSON | None = strawberry.UNSET


@strawberry.input(description="As the body of PATCH /sites/{siteId}/notifications/{notificationId}.")
class NotificationUpdateInput:
    name: str | None = strawberry.UNSET
    status: NotificationStatus | None = strawberry.UNSET
    template_id: uuid.UUID | None = strawberry.UNSET
    source: JSON | None = strawberry.UNSET
    targeting: JSON | None = strawberry.UNSET
    display: JSON | None = strawberry.UNSET
    anonymization: JSON | None = strawberry.UNSET
    goal: JSON | None = strawberry.UNSET


@strawberry.type
class Mutation:
    @strawberry.mutation(description="As POST /sites.")
    async def create_site(self, info: Info, input: SiteCreateInput) -> Site | None:
        ctx = context_of(info)
        principal = ctx.allow(SITES_CREATE)
        body = validated(inputs.SiteCreate, input)
        async with ctx.mutation("createSite") as session:
            site = await service.create_site(
                session,
                principal=principal,
                name=body.name,
                domain=body.domain,
                settings=body.settings.model_dump(by_alias=True),
                data_region=body.data_region,
            )
            ctx.changed("createSite", "site", site.id, domain=site.domain)
        return from_row(Site, site)

    @strawberry.mutation(description="As PATCH /sites/{siteId}.")
    async def update_site(self, info: Info, id: uuid.UUID, input: SiteUpdateInput) -> Site | None:
        ctx = context_of(info)
        principal = ctx.allow(SITES_UPDATE)
        body = validated(inputs.SiteUpdate, input)
        settings = body.settings.model_dump(exclude_none=True, by_alias=True) if body.settings else None
        async with ctx.mutation("updateSite") as session:
            site = await service.update_site(
                session, principal=principal, site_id=id, name=body.name, domain=body.domain, settings=settings
            )
            ctx.changed("updateSite", "site", site.id, **body.model_dump(exclude_none=True, by_alias=True, mode="json"))
        return from_row(Site, site)

    @strawberry.mutation(description="As POST /sites/{siteId}/verify: proves control of the site's domain.")
    async def verify_site(self, info: Info, id: uuid.UUID) -> Site | None:
        ctx = context_of(info)
        principal = ctx.allow(SITES_UPDATE)
        settings: Settings = ctx.request.app.state.settings
        config = settings.socialproof
        async with ctx.mutation("verifySite") as session:
            site = await service.verify_site(
                session,
                principal=principal,
                site_id=id,
                url_template=config.verification_url,
                policy=service.verification_policy(
                    settings.outbound, timeout_seconds=config.verification_timeout_seconds
                ),
            )
            ctx.changed("verifySite", "site", site.id, verified=site.domain)
        return from_row(Site, site)

    @strawberry.mutation(description="As DELETE /sites/{siteId}; answers the deleted site's id.")
    async def delete_site(self, info: Info, id: uuid.UUID) -> uuid.UUID | None:
        ctx = context_of(info)
        principal = ctx.allow(SITES_DELETE)
        async with ctx.mutation("deleteSite") as session:
            await service.delete_site(session, principal=principal, site_id=id)
            ctx.changed("deleteSite", "site", id)
        return id

    @strawberry.mutation(description="As POST /sites/{siteId}/templates.")
    async def create_template(self, info: Info, site_id: uuid.UUID, input: TemplateCreateInput) -> Template | None:
        ctx = context_of(info)
        principal = ctx.allow(SITES_UPDATE)
        body = validated(inputs.TemplateCreate, input)
        async with ctx.mutation("createTemplate") as session:
            template = await service.create_template(
                session,
                principal=principal,
                site_id=site_id,
                name=body.name,
                message=body.message,
                css_content=body.css_content,
            )
            ctx.changed("createTemplate", "template", template.id, site=str(site_id))
        return from_row(Template, template)

    @strawberry.mutation(description="As PATCH /sites/{siteId}/templates/{templateId}.")
    async def update_template(
        self, info: Info, site_id: uuid.UUID, id: uuid.UUID, input: TemplateUpdateInput
    ) -> Template | None:
        ctx = context_of(info)
        principal = ctx.allow(SITES_UPDATE)
        body = validated(inputs.TemplateUpdate, input)
        async with ctx.mutation("updateTemplate") as session:
            template = await service.update_template(
                session,
                principal=principal,
                site_id=site_id,
                template_id=id,
                changes=body.model_dump(exclude_none=True),
            )
            ctx.changed("updateTemplate", "template", template.id, site=str(site_id))
        return from_row(Template, template)

    @strawberry.mutation(description="As DELETE /sites/{siteId}/templates/{templateId}; answers its id.")
    async def delete_template(self, info: Info, site_id: uuid.UUID, id: uuid.UUID) -> uuid.UUID | None:
        ctx = context_of(info)
        principal = ctx.allow(SITES_UPDATE)
        async with ctx.mutation("deleteTemplate") as session:
            await service.delete_template(session, principal=principal, site_id=site_id, template_id=id)
            ctx.changed("deleteTemplate", "template", id, site=str(site_id))
        return id

    @strawberry.mutation(description="As POST /sites/{siteId}/notifications.")
    async def create_notification(
        self, info: Info, site_id: uuid.UUID, input: NotificationCreateInput
    ) -> Notification | None:
        ctx = context_of(info)
        principal = ctx.allow(SITES_UPDATE)
        body = validated(inputs.NotificationCreate, input)
        async with ctx.mutation("createNotification") as session:
            notification = await service.create_notification(session, principal=principal, site_id=site_id, fields=body)
            ctx.changed("createNotification", "notification", notification.id, site=str(site_id))
        return from_row(Notification, notification)

    @strawberry.mutation(description="As PATCH /sites/{siteId}/notifications/{notificationId}.")
    async def update_notification(
        self, info: Info, site_id: uuid.UUID, id: uuid.UUID, input: NotificationUpdateInput
    ) -> Notification | None:
        ctx = context_of(info)
        principal = ctx.allow(SITES_UPDATE)
        body = validated(inputs.NotificationUpdate, input)
        changes = body.model_dump(mode="json", by_alias=True, exclude_unset=True)
        async with ctx.mutation("updateNotification") as session:
            notification = await service.update_notification(
                session, principal=principal, site_id=site_id, notification_id=id, changes=changes
            )
            ctx.changed("updateNotification", "notification", notification.id, site=str(site_id))
        return from_row(Notification, notification)

    @strawberry.mutation(description="As DELETE /sites/{siteId}/notifications/{notificationId}; answers its id.")
    async def delete_notification(self, info: Info, site_id: uuid.UUID, id: uuid.UUID) -> uuid.UUID | None:
        ctx = context_of(info)
        principal = ctx.allow(SITES_UPDATE)
        async with ctx.mutation("deleteNotification") as session:
            await service.delete_notification(session, principal=principal, site_id=site_id, notification_id=id)
            ctx.changed("deleteNotification", "notification", id, site=str(site_id))
        return id
