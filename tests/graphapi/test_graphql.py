"""The graph through the stock ``gql`` client over real HTTP: introspection, the caller, social proof's sites,
templates and notifications read and changed, KPIx read, audit entries, and the errors bad input gets."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
from gql import GraphQLRequest

from tests.factories import Account
from tests.graphapi.conftest import Graph, codes

SITE_FIELDS = "id name domain siteKey settings dataRegion"


def domain() -> str:
    return f"shop-{secrets.token_hex(4)}.example.com"


async def create_site(graph: Graph, who: Account, **fields: Any) -> dict[str, Any]:
    data = await graph.run(
        who,
        f"mutation($input: SiteCreateInput!) {{ createSite(input: $input) {{ {SITE_FIELDS} }} }}",
        input={"name": "Shop", "domain": domain(), **fields},
    )
    return dict(data["createSite"])


async def test_the_stock_client_reads_the_schema_by_introspection_and_validates_against_it(
    graph: Graph, founder: Account
) -> None:
    async with graph.client(founder.headers, schema=True) as session:
        data = await session.execute(GraphQLRequest("{ me { email role orgId } organization { id name } }"))
        schema = session.client.schema
    assert schema is not None and {"Site", "Notification", "Template", "Dashboard", "Report"} <= set(schema.type_map)
    assert data["me"] == {"email": founder.email, "role": "founder", "orgId": str(founder.org_id)}
    assert data["organization"]["id"] == str(founder.org_id)


async def test_the_caller_and_their_organizations_read_and_change_as_on_rest(
    graph: Graph, client: httpx.AsyncClient, founder: Account
) -> None:
    data = await graph.run(founder, "{ organizations { id name role } }")
    assert data["organizations"] == [
        {"id": str(founder.org_id), "name": data["organizations"][0]["name"], "role": "founder"}
    ]
    changed = await graph.run(
        founder,
        'mutation { updateMe(input: {name: "Ada L."}) { name } '
        'updateOrganization(input: {name: "Ada Shops"}) { name } }',
    )
    assert changed == {"updateMe": {"name": "Ada L."}, "updateOrganization": {"name": "Ada Shops"}}
    me = (await client.get("/api/v1/users/me", headers=founder.headers)).json()["data"]
    org = (await client.get("/api/v1/organization", headers=founder.headers)).json()["data"]
    assert (me["name"], org["name"]) == ("Ada L.", "Ada Shops")


async def test_sites_templates_and_notifications_are_created_read_changed_and_deleted(
    graph: Graph, client: httpx.AsyncClient, founder: Account
) -> None:
    site = await create_site(graph, founder, settings={"theme": "dark"})
    assert site["settings"]["theme"] == "dark" and site["dataRegion"] == "us"
    template = (
        await graph.run(
            founder,
            "mutation($site: UUID!) { createTemplate(siteId: $site, input: "
            '{name: "Bought", message: "{{firstName}} bought {{product}}"}) { id name message } }',
            site=site["id"],
        )
    )["createTemplate"]
    notification = (
        await graph.run(
            founder,
            "mutation($site: UUID!, $input: NotificationCreateInput!) { createNotification(siteId: $site, "
            "input: $input) { id name type status templateId source } }",
            site=site["id"],
            input={
                "name": "Recent buyers",
                "type": "recent_activity",
                "status": "ACTIVE",
                "templateId": template["id"],
                "source": {"eventTypes": ["purchase"]},
            },
        )
    )["createNotification"]
    assert notification["status"] == "active" and notification["templateId"] == template["id"]
    assert notification["source"]["eventTypes"] == ["purchase"]

    paused = await graph.run(
        founder,
        "mutation($site: UUID!, $id: UUID!) { updateNotification(siteId: $site, id: $id, "
        "input: {status: PAUSED, templateId: null}) { status templateId } "
        'updateSite(id: $site, input: {name: "Renamed", settings: {position: "top-right"}}) '
        "{ name settings } }",
        site=site["id"],
        id=notification["id"],
    )
    assert paused["updateNotification"] == {"status": "paused", "templateId": None}
    assert paused["updateSite"]["name"] == "Renamed"
    assert paused["updateSite"]["settings"]["position"] == "top-right"
    assert paused["updateSite"]["settings"]["theme"] == "dark"

    rest = (
        await client.get(f"/api/v1/sites/{site['id']}/notifications/{notification['id']}", headers=founder.headers)
    ).json()["data"]
    assert (rest["status"], rest["templateId"]) == ("paused", None)

    read = await graph.run(
        founder,
        "query($id: UUID!) { site(id: $id) { name notifications { id status site { id } } templates { id } } "
        "sites { total items { id } } }",
        id=site["id"],
    )
    assert read["site"]["notifications"] == [{"id": notification["id"], "status": "paused", "site": {"id": site["id"]}}]
    assert read["site"]["templates"] == [{"id": template["id"]}]
    assert read["sites"] == {"total": 1, "items": [{"id": site["id"]}]}

    deleted = await graph.run(
        founder,
        "mutation($site: UUID!, $n: UUID!, $t: UUID!) { deleteNotification(siteId: $site, id: $n) "
        "deleteTemplate(siteId: $site, id: $t) deleteSite(id: $site) }",
        site=site["id"],
        n=notification["id"],
        t=template["id"],
    )
    assert deleted == {
        "deleteNotification": notification["id"],
        "deleteTemplate": template["id"],
        "deleteSite": site["id"],
    }
    assert (await client.get(f"/api/v1/sites/{site['id']}", headers=founder.headers)).status_code == 404

    audit = (await client.get("/api/v1/audit", headers=founder.headers, params={"limit": 100})).json()["data"]
    actions = [entry["action"] for entry in audit if entry["action"].startswith("graphql.")]
    assert sorted(actions) == sorted(
        [
            "graphql.createSite",
            "graphql.createTemplate",
            "graphql.createNotification",
            "graphql.updateNotification",
            "graphql.updateSite",
            "graphql.deleteNotification",
            "graphql.deleteTemplate",
            "graphql.deleteSite",
        ]
    )
    assert not [entry for entry in audit if entry["action"] == "graphql.execute"]  # reads are not audited


async def test_a_failed_mutation_leaves_nothing_and_the_ones_before_it_stay(
    graph: Graph, client: httpx.AsyncClient, founder: Account
) -> None:
    site = await create_site(graph, founder)
    # the stock client raises on the first error; the partial answer is read from the HTTP response itself
    response = await graph.post(
        {
            "query": 'mutation($site: UUID!) { first: createTemplate(siteId: $site, input: {name: "Kept", '
            'message: "Hello"}) { id } second: createTemplate(siteId: $site, input: {name: "Refused", '
            'message: "<b>bold</b>"}) { id } }',
            "variables": {"site": site["id"]},
        },
        founder.headers,
    )
    assert response.status_code == 200, response.text
    data, errors = response.json()["data"], response.json()["errors"]
    assert data["first"]["id"] and data["second"] is None
    assert errors is not None and codes(errors) == ["validation_error"]
    assert errors[0]["path"] == ["second"]
    assert errors[0]["extensions"]["details"][0]["field"] == "input.message"
    listed = (await client.get(f"/api/v1/sites/{site['id']}/templates", headers=founder.headers)).json()
    assert [template["name"] for template in listed["data"]] == ["Kept"]


async def test_kpix_dashboard_and_reports_read(graph: Graph, founder: Account) -> None:
    data = await graph.run(
        founder,
        "{ dashboard { currency asOf problem cards { metric value sparkline } } "
        "reports(limit: 5) { total items { id kind status } } }",
    )
    assert data["dashboard"]["currency"] == "USD"
    assert [card["metric"] for card in data["dashboard"]["cards"]][:1] == ["mrr"]
    assert all(len(card["sparkline"]) == 12 for card in data["dashboard"]["cards"])
    assert data["reports"] == {"total": 0, "items": []}
