"""Work items tied to the business: changes and deals' notes that name them, links by hand, the ARR and open pipeline
waiting on a work item, the linked customers' MRR movements after it shipped, and who may do what across orgs."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
from sqlalchemy import text

from northstar.core.db import Database
from northstar.devbizops import service
from northstar.devbizops.inputs import Change, Deployment, EngineeringBatch, Repository, WorkItem
from northstar.metrics import service as metrics_service
from northstar.metrics.inputs import PipelineDeal, SourceBatch
from tests.devbizops.conftest import paused_integration
from tests.factories import Account, add_member
from tests.rows import rows_of

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
SHIPPED = NOW - dt.timedelta(days=100)


async def _business(database: Database, account: Account) -> dict[str, Any]:
    """A GitHub repository with two issues and three pull requests, a HubSpot deal whose notes name one issue, and
    two billing customers with MRR movements before and after it shipped."""
    org = account.org_id
    async with database.tenant_transaction(org_id=org) as session:
        github = await paused_integration(session, org, "github")
        hubspot = await paused_integration(session, org, "hubspot")
        stripe = await paused_integration(session, org, "stripe")
        batch = EngineeringBatch(
            repositories=[Repository(external_id="1", name="acme/api")],
            work_items=[
                WorkItem(external_id="w1", key="acme/api#1", title="SSO for enterprise", status="done",
                         created_at=SHIPPED - dt.timedelta(days=20), completed_at=SHIPPED - dt.timedelta(days=2),
                         url="https://github.com/acme/api/issues/1"),
                WorkItem(external_id="w2", key="ENG-7", title="Audit log export", status="todo", created_at=SHIPPED),
            ],
            changes=[
                Change(external_id="c1", repository="1", number=3, title="SSO login", state="merged",
                       created_at=SHIPPED - dt.timedelta(days=5), merged_at=SHIPPED - dt.timedelta(hours=2),
                       body="Closes #1"),
                Change(external_id="c2", repository="1", number=4, title="Refactor", state="merged",
                       created_at=SHIPPED, merged_at=SHIPPED + dt.timedelta(minutes=30),
                       body="Part of https://github.com/acme/api/issues/1"),
                Change(external_id="c3", repository="1", number=5, title="Unrelated", state="open", created_at=SHIPPED,
                       body="See #99 and ENG-404"),
            ],
            deployments=[
                Deployment(external_id="d1", repository="1", environment="production", production=True,
                           status="success", created_at=SHIPPED, finished_at=SHIPPED),
                Deployment(external_id="d2", repository="1", environment="production", production=True,
                           status="success", created_at=SHIPPED + dt.timedelta(hours=1),
                           finished_at=SHIPPED + dt.timedelta(hours=1)),
            ],
        )  # fmt: skip
        await service.store_batch(session, org_id=org, integration_id=github, batch=batch)
        deal = PipelineDeal(
            external_id="900", name="Globex renewal", pipeline="default", stage="contractsent", amount=1_200_050,
            currency="EUR", created_at=SHIPPED, close_date=None, closed=False, won=False,
        )  # fmt: skip
        await metrics_service.store_batch(session, org_id=org, integration_id=hubspot, batch=SourceBatch(deals=[deal]))
        await session.execute(
            text(
                "INSERT INTO integrations.records (org_id, integration_id, stream, external_id, data) VALUES"
                " (:org, :integration, 'deals', '900', :data)"
            ),
            {"org": org, "integration": hubspot, "data": '{"properties": {"description": "Blocked on ENG-7 (audit)"}}'},
        )
        customers = {}
        for name in ("Initech", "Umbrella"):
            customers[name] = await session.scalar(
                text(
                    "INSERT INTO metrics.customers (org_id, integration_id, external_id, name) VALUES"
                    " (:org, :integration, :name, :name) RETURNING id"
                ),
                {"org": org, "integration": stripe, "name": name},
            )
        today = dt.date.today()
        for customer, day, kind, amount in (
            ("Initech", today - dt.timedelta(days=300), "new", 10_000),
            ("Initech", SHIPPED.date() + dt.timedelta(days=10), "expansion", 5_000),
            ("Umbrella", today - dt.timedelta(days=300), "new", 20_000),
            ("Umbrella", SHIPPED.date() + dt.timedelta(days=60), "contraction", -3_000),
            ("Umbrella", SHIPPED.date() + dt.timedelta(days=95), "churn", -17_000),  # after the 90 days
        ):
            await session.execute(
                text(
                    "INSERT INTO metrics.movements (org_id, customer_id, day, kind, amount, lines) VALUES"
                    " (:org, :customer, :day, :kind, :amount, '{}')"
                ),
                {"org": org, "customer": customers[customer], "day": day, "kind": kind, "amount": amount},
            )
        await service.recompute(session, org_id=org)
    items = {
        row.key: row.id for row in await rows_of(database, account.org_id, "SELECT key, id FROM devbizops.work_items")
    }
    return {"items": items, "customers": customers, "hubspot": hubspot}


async def test_changes_and_deal_notes_that_name_a_work_item_are_linked(
    client: httpx.AsyncClient, founder: Account, database: Database
) -> None:
    made = await _business(database, founder)
    pairs = await rows_of(
        database,
        founder.org_id,
        "SELECT c.number, w.key FROM devbizops.change_work_items l JOIN devbizops.changes c ON c.id = l.change_id"
        " JOIN devbizops.work_items w ON w.id = l.work_item_id ORDER BY c.number",
    )
    assert [tuple(pair) for pair in pairs] == [(3, "acme/api#1"), (4, "acme/api#1")]
    response = await client.get(f"/api/v1/devbizops/work-items/{made['items']['ENG-7']}", headers=founder.headers)
    assert response.status_code == 200, response.text
    detail = response.json()["data"]
    [deal] = detail["deals"]
    assert deal["source"] == "mention" and "ENG-7" in deal["evidence"]
    assert deal["dealName"] == "Globex renewal" and deal["dealOpen"] is True
    assert deal["dealAmount"] == {"amount": 1_200_050, "currency": "EUR"}
    assert detail["openPipeline"] == [{"amount": 1_200_050, "currency": "EUR"}]
    linked = await client.get("/api/v1/devbizops/work-items", headers=founder.headers, params={"linked": "true"})
    assert [item["key"] for item in linked.json()["data"]] == ["ENG-7"]
    searched = await client.get("/api/v1/devbizops/work-items", headers=founder.headers, params={"q": "sso"})
    assert [item["key"] for item in searched.json()["data"]] == ["acme/api#1"]


async def test_linked_customers_give_the_arr_waiting_and_the_movements_after_shipping(
    client: httpx.AsyncClient, founder: Account, database: Database
) -> None:
    made = await _business(database, founder)
    path = f"/api/v1/devbizops/work-items/{made['items']['acme/api#1']}"
    for name in ("Initech", "Umbrella"):
        response = await client.post(
            f"{path}/links", headers=founder.headers, json={"customerId": str(made["customers"][name])}
        )
        assert response.status_code == 201, response.text
    again = await client.post(
        f"{path}/links", headers=founder.headers, json={"customerId": str(made["customers"]["Initech"])}
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_linked"
    detail = (await client.get(path, headers=founder.headers)).json()["data"]
    mrr = {customer["customerName"]: customer["mrr"]["amount"] for customer in detail["customers"]}
    assert mrr == {"Initech": 15_000, "Umbrella": 0}  # Umbrella churned since
    assert detail["arr"] == {"amount": 12 * 15_000, "currency": "USD"}
    assert [change["number"] for change in detail["changes"]] == [3, 4]
    impact = detail["impact"]
    assert impact["shippedAt"].startswith((SHIPPED + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H"))  # the later ship
    moved = {kind: money["amount"] for kind, money in impact["movements"].items() if money["amount"]}
    assert moved == {"expansion": 5_000, "contraction": -3_000}  # the churn came after the 90 days
    assert impact["net"]["amount"] == 2_000 and impact["label"].startswith("correlation")


async def test_bad_links_and_who_may_change_them(
    client: httpx.AsyncClient, founder: Account, other_founder: Account, database: Database
) -> None:
    made = await _business(database, founder)
    item = made["items"]["ENG-7"]
    path = f"/api/v1/devbizops/work-items/{item}/links"
    customer = str(made["customers"]["Initech"])
    deal = {"integrationId": str(made["hubspot"]), "externalId": "900"}
    both = await client.post(path, headers=founder.headers, json={"customerId": customer, "deal": deal})
    assert both.status_code == 422
    assert (await client.post(path, headers=founder.headers, json={})).status_code == 422
    unknown = await client.post(path, headers=founder.headers, json={"customerId": str(uuid.uuid4())})
    assert unknown.status_code == 404
    missing_deal = await client.post(path, headers=founder.headers, json={"deal": {**deal, "externalId": "1"}})
    assert missing_deal.status_code == 404
    member = await add_member(client, founder, "member")
    made_by_member = await client.post(path, headers=member.headers, json={"customerId": customer})
    assert made_by_member.status_code == 201, made_by_member.text
    mention = (await client.get(f"/api/v1/devbizops/work-items/{item}", headers=founder.headers)).json()["data"]
    mention_link = mention["deals"][0]["id"]
    refused = await client.delete(f"{path}/{mention_link}", headers=member.headers)
    assert refused.status_code == 403  # members remove only the links they made
    own = await client.delete(f"{path}/{made_by_member.json()['data']['id']}", headers=member.headers)
    assert own.status_code == 204
    investor = await add_member(client, founder, "investor")
    assert (await client.get(f"/api/v1/devbizops/work-items/{item}", headers=investor.headers)).status_code == 403
    # another org: its own work items only, and none of this org's customers
    assert (await client.get(f"/api/v1/devbizops/work-items/{item}", headers=other_founder.headers)).status_code == 404
    theirs = await client.post(path, headers=other_founder.headers, json={"customerId": customer})
    assert theirs.status_code == 404
    assert (await client.get("/api/v1/devbizops/work-items", headers=other_founder.headers)).json()["data"] == []
