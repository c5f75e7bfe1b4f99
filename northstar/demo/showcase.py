"""`northstar seed --demo`: an org worth opening in the console, filled through the platform's own paths.

On top of ``organizations.create_demo_org`` (a user for every role, projects, teams, an API key):

* Stripe: 24 months of a generated account (``stripe_account.generate``), served by the fake Stripe API
  (``stripe_api.FakeStripe``) on a loopback port while the seed runs, connected as an integration pointing there,
  and synced by ``integrations.sync.run_sync``, the code the worker's task runs, so MRR, the waterfall and the
  cohorts are the metrics engine's. Loopback over plain HTTP is what the outbound guard refuses by default; the seed
  allows it for its own process only, as the tests do for their workers. The sync is not queued: a worker of the
  same database could not reach the seed's loopback server (nor should it) and would fail the run. Once synced the
  integration is paused, since its API is gone when the seed ends.
* Social proof: a site with an active notification and three weeks of traffic (page views, impressions, clicks,
  purchases) through the widget's and the merchant's ingestion paths. Each day's events are replayed as received
  that day (``received_at``), so the 7-day clamp on event times applies to them as it did on arrival.
* A generated dataset, made by the generation job's own task in this process (not queued, for the same reason as
  the sync), so it ends ``completed``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import secrets
import uuid
from dataclasses import dataclass
from decimal import Decimal

from northstar import modules  # noqa: F401 - installing the modules gives core the grants services check
from northstar.core.db import Database, to_libpq_url
from northstar.core.queue import tasks_using
from northstar.datasets import service as datasets
from northstar.datasets.schemas import GenerateRequest
from northstar.demo.loopback import serving
from northstar.demo.organizations import SeedResult, create_demo_org
from northstar.demo.stripe_account import Account, add_months, generate
from northstar.demo.stripe_api import FakeStripe
from northstar.integrations import service as integrations
from northstar.integrations.sync import run_sync
from northstar.metrics import service as metrics
from northstar.settings import Settings
from northstar.socialproof.ingest import EventWriter
from northstar.socialproof.schemas.events import CollectBatch, EventIn
from northstar.socialproof.schemas.sites import NotificationFields
from northstar.socialproof.service import events as socialproof_events
from northstar.socialproof.service import sites
from northstar.socialproof.service.custom_fields import FieldDefinitions
from northstar.socialproof.visitors import GeoLocator, SpamReferrers, VisitorIds

STRIPE_CUSTOMERS = 300
STRIPE_MONTHS = 24
STRIPE_SEED = 2026
TRAFFIC_DAYS = 21
VISITORS_PER_DAY = (40, 90)
DATASET_ROWS = 10_000
INVESTOR_METRICS = ["mrr", "arr", "nrr", "customer_churn_rate"]  # what the founder shares on the investor's dashboard
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
PAGES = ("/", "/pricing", "/features", "/blog/launch", "/checkout")
BUYERS = (
    ("Ada", "London", "GB"),
    ("Ben", "Austin", "US"),
    ("Chloé", "Lyon", "FR"),
    ("Dev", "Bangalore", "IN"),
    ("Elif", "Berlin", "DE"),
    ("Femi", "Lagos", "NG"),
    ("Grace", "Toronto", "CA"),
    ("Hiro", "Osaka", "JP"),
)
PLANS = (("Starter plan", 29.0), ("Pro plan", 99.0), ("Business plan", 299.0))


@dataclass(frozen=True)
class Showcase:
    org: SeedResult
    stripe: Account
    integration_id: uuid.UUID
    site_id: uuid.UUID
    dataset_job_id: uuid.UUID


def loopback_settings(settings: Settings) -> Settings:
    """The process's settings, letting integrations reach the loopback Stripe API over plain HTTP."""
    outbound = settings.outbound.model_copy(update={"allow_private_networks": True, "allow_http": True})
    return settings.model_copy(update={"outbound": outbound})


async def seed_showcase(url: str, settings: Settings) -> Showcase:
    """A new demo org with Stripe metrics, a site with weeks of traffic and a dataset (a new one every run)."""
    database = Database(url, settings=loopback_settings(settings), pool_size=4)
    try:
        async with database.tenant_transaction() as session:
            org = await create_demo_org(session, suffix=secrets.token_hex(3))
        account, integration_id = await _stripe(database, org)
        site_id = await _social_proof(database, org, settings)
        with tasks_using(database):  # the dataset's job runs its task here
            job_id = await _dataset(database, org)
        return Showcase(org=org, stripe=account, integration_id=integration_id, site_id=site_id, dataset_job_id=job_id)
    finally:
        await database.dispose()


async def _stripe(database: Database, org: SeedResult) -> tuple[Account, uuid.UUID]:
    """The generated account's 24 months up to now, synced through the Stripe connector."""
    start = dt.datetime.fromtimestamp(add_months(int(dt.datetime.now(dt.UTC).timestamp()), -STRIPE_MONTHS), dt.UTC)
    account = generate(customers=STRIPE_CUSTOMERS, months=STRIPE_MONTHS, seed=STRIPE_SEED, start=start)
    fake = FakeStripe(account, requests_per_second=None)
    async with serving(fake.app) as base_url:
        async with database.tenant_transaction(org_id=org.org_id) as session:
            await metrics.set_rates(
                session,
                org_id=org.org_id,
                rates=[(currency, day, Decimal(rate)) for currency, day, rate in account.fx_rates],
            )
            await metrics.update_policy(session, org_id=org.org_id, changes={"investor_metrics": INVESTOR_METRICS})
            integration = await integrations.connect(
                session,
                principal=org.founder,
                provider="stripe",
                name="Stripe (demo account)",
                credentials={"api_key": fake.api_key},
                config={"base_url": base_url, "requests_per_second": 1000},
                test=True,
                queue_sync=False,
            )
            runs, _ = await integrations.list_runs(
                session, org_id=org.org_id, integration_id=integration.id, offset=0, limit=1
            )
        await run_sync(database, org_id=org.org_id, run_id=runs[0].id)
    async with database.tenant_transaction(org_id=org.org_id) as session:
        runs, _ = await integrations.list_runs(
            session, org_id=org.org_id, integration_id=integration.id, offset=0, limit=1
        )
        if runs[0].status != "succeeded":
            raise RuntimeError(f"the demo's Stripe sync {runs[0].status}: {runs[0].error}")
        await integrations.set_paused(session, principal=org.founder, integration_id=integration.id, paused=True)
    return account, integration.id


async def _social_proof(database: Database, org: SeedResult, settings: Settings) -> uuid.UUID:
    """A storefront site, a recent-purchases notification, and three weeks of its traffic."""
    async with database.engine.begin() as connection:  # as the owner: last month's partitions too
        await socialproof_events.ensure_event_partitions(connection)
    async with database.tenant_transaction(org_id=org.org_id) as session:
        site = await sites.create_site(
            session,
            principal=org.founder,
            name="Acme storefront",
            domain=f"shop-{secrets.token_hex(4)}.demo.northstar.dev",
            settings={"position": "bottom-left", "theme": "auto", "locale": "en", "timezone": "UTC"},
            data_region="us",
        )
        notification = await sites.create_notification(
            session,
            principal=org.founder,
            site_id=site.id,
            fields=NotificationFields.model_validate(
                {
                    "name": "Recent purchases",
                    "type": "recent_activity",
                    "status": "active",
                    "source": {"eventTypes": ["purchase"]},
                }
            ),
        )
        site_id, site_key, notification_id = site.id, site.site_key, notification.id
    async with database.sessionmaker() as session, session.begin():
        public = await sites.load_public_site(session, site_key=site_key)
    assert public is not None  # created just above
    config = settings.socialproof
    writer = EventWriter(to_libpq_url(database.url), config)
    collector = socialproof_events.Collector(
        writer=writer,
        visitors=VisitorIds(database, settings.resolved_secret_key()),
        geo=GeoLocator(config.geoip_database),
        spam=SpamReferrers.load(config.spam_referrers_file),
        fields=FieldDefinitions(database, ttl_seconds=config.site_cache_seconds),
    )
    now = dt.datetime.now(dt.UTC)
    chance = random.Random(STRIPE_SEED)  # noqa: S311 - demo traffic, not secrets
    try:
        for days_ago in range(TRAFFIC_DAYS - 1, -1, -1):
            visits = [
                _visit(
                    database,
                    collector,
                    public,
                    org=org,
                    notification_id=notification_id,
                    at=now - dt.timedelta(days=days_ago, seconds=chance.uniform(0, 86_400 if days_ago else 3_600)),
                    chance=random.Random(chance.random()),  # noqa: S311
                )
                for _ in range(chance.randint(*VISITORS_PER_DAY))
            ]
            await asyncio.gather(*visits)  # concurrent visits share group commits, as live traffic does
    finally:
        await writer.close()
    return site_id


async def _visit(
    database: Database,
    collector: socialproof_events.Collector,
    site: sites.PublicSite,
    *,
    org: SeedResult,
    notification_id: uuid.UUID,
    at: dt.datetime,
    chance: random.Random,
) -> None:
    """One visitor's session as the widget reports it, and the purchase the shop's backend records, if any."""
    visitor = f"demo-visitor-{chance.getrandbits(48):012x}"
    pages = chance.sample(PAGES, chance.randint(1, 3))
    widget: list[dict[str, object]] = []
    for step, page in enumerate(pages):
        moment = at + dt.timedelta(seconds=20 * step)
        widget.append(
            {"id": uuid.uuid4(), "type": "page_view", "url": f"https://{site.domain}{page}", "occurredAt": moment}
        )
        if chance.random() < 0.7:
            widget.append(
                {
                    "id": uuid.uuid4(),
                    "type": "impression",
                    "url": f"https://{site.domain}{page}",
                    "notificationId": notification_id,
                    "occurredAt": moment + dt.timedelta(seconds=5),
                }
            )
    clicked = chance.random() < 0.12
    if clicked:
        widget.append(
            {
                "id": uuid.uuid4(),
                "type": "click",
                "url": f"https://{site.domain}{pages[-1]}",
                "notificationId": notification_id,
                "occurredAt": at + dt.timedelta(seconds=20 * len(pages)),
            }
        )
    sent_at = at + dt.timedelta(seconds=20 * len(pages) + 1)
    batch = CollectBatch.model_validate(
        {"siteKey": site.site_key, "sentAt": sent_at, "visitor": {"userId": visitor}, "events": widget}
    )
    await socialproof_events.collect(collector, site, batch, ip="203.0.113.10", user_agent=BROWSER, received_at=sent_at)
    if chance.random() < (0.35 if clicked else 0.04):
        first_name, city, country = chance.choice(BUYERS)
        product, amount = chance.choice(PLANS)
        bought = sent_at + dt.timedelta(minutes=chance.randint(1, 30))
        purchase = EventIn.model_validate(
            {
                "type": "purchase",
                "visitorId": visitor,
                "firstName": first_name,
                "city": city,
                "country": country,
                "product": product,
                "amount": amount,
                "currency": "USD",
                "url": f"https://{site.domain}/checkout",
                "occurredAt": bought,
            }
        )
        async with database.tenant_transaction(org_id=org.org_id) as session:
            await socialproof_events.record_events(
                session,
                writer=collector.writer,
                visitors=collector.visitors,
                org_id=org.org_id,
                site_id=site.id,
                events=[purchase],
                received_at=min(bought, dt.datetime.now(dt.UTC)),
            )


async def _dataset(database: Database, org: SeedResult) -> uuid.UUID:
    """A generated SaaS subscriptions dataset, made by the generation task in this process."""
    request = GenerateRequest.model_validate(
        {"preset": "saas_subscriptions", "rows": DATASET_ROWS, "seed": 42, "name": "SaaS subscriptions (demo)"}
    )
    async with database.tenant_transaction(org_id=org.org_id) as session:
        job = await datasets.create_generation_job(session, principal=org.founder, request=request, queue=False)
        job_id = job.id
    await datasets.run_unqueued(job_type="generation", org_id=org.org_id, job_id=job_id)
    async with database.tenant_transaction(org_id=org.org_id) as session:
        finished = await datasets.get_job(session, org_id=org.org_id, job_id=job_id)
        if finished.status != "completed":
            raise RuntimeError(f"the demo's dataset job {finished.status}: {finished.error_message}")
    return job_id
