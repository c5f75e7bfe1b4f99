"""The console's GraphiQL page in Chromium: the vendored GraphiQL loads under the console's CSP, runs a query as the
signed-in user through ``POST /app/graphql`` and is accessible; that endpoint wants the page's CSRF token."""

from __future__ import annotations

import secrets

import httpx
from playwright.async_api import expect

from tests.console.conftest import Tab, accessible, console_client, csrf_of, log_in
from tests.factories import Account


async def test_graphiql_runs_a_query_as_the_signed_in_user(
    tab: Tab, client: httpx.AsyncClient, founder: Account
) -> None:
    name = f"Shop {secrets.token_hex(3)}"
    created = await client.post(
        "/api/v1/sites",
        headers=founder.headers,
        json={"name": name, "domain": f"shop-{secrets.token_hex(4)}.example.com"},
    )
    assert created.status_code == 201, created.text
    page = tab.page
    await log_in(page, founder, path="/app/graphql")
    await expect(page.locator("#graphiql-state")).to_have_text("GraphiQL is ready.")
    await expect(page.locator(".graphiql-container")).to_be_visible()
    await page.get_by_role("button", name="Execute query (Ctrl-Enter)").click()
    result = page.locator(".result-window")
    await expect(result).to_contain_text(name, timeout=15_000)
    await expect(result).to_contain_text('"total": 1')
    await accessible(tab, "GraphiQL with a result")


async def test_the_console_endpoint_wants_the_session_and_its_csrf_token(console_url: str, founder: Account) -> None:
    query = {"query": "{ me { email } }"}
    async with console_client(console_url, founder) as http:
        refused = await http.post("/app/graphql", json=query)
        assert refused.status_code == 403, refused.text
        token = csrf_of((await http.get("/app/graphql")).text)
        answered = await http.post("/app/graphql", json=query, headers={"x-csrf-token": token})
        assert answered.status_code == 200, answered.text
        assert answered.json() == {"data": {"me": {"email": founder.email}}}
