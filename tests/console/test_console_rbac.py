"""Console pages follow the role x route matrix as the API does: every gated page and action, asked for by every
role through a console session, is refused (403) exactly where ``rbac_matrix.csv`` says deny; and every page, whatever
it answers, carries the console's content security policy."""

from __future__ import annotations

import csv
import re
import uuid

import httpx

from northstar.core.console.pages import CONSOLE_PREFIX
from tests.console.conftest import console_client, csrf_of
from tests.core.test_rbac import MATRIX, ROLES
from tests.factories import Account, add_member


async def test_console_pages_follow_the_matrix(console_url: str, client: httpx.AsyncClient, founder: Account) -> None:
    accounts = {"founder": founder, **{role: await add_member(client, founder, role) for role in ROLES[1:]}}
    rows = [row for row in csv.DictReader(MATRIX.open()) if row["path"].startswith(CONSOLE_PREFIX + "/")]
    for role in ROLES:
        async with console_client(console_url, accounts[role]) as http:
            token = csrf_of((await http.get("/app/account")).text)
            for row in rows:
                if ":" not in row["permission"] and (row["method"] != "GET" or role != "founder"):
                    continue
                path = re.sub(r"\{(\w+)\}", lambda _: str(uuid.uuid4()), row["path"])
                # streamed: the answer's status and headers are what is checked (an event stream never ends)
                async with http.stream(row["method"], path, headers={"X-CSRF-Token": token}) as response:
                    context = (role, row["method"], row["path"], response.status_code)
                    if ":" in row["permission"]:
                        assert (response.status_code == 403) == (row[role] == "deny"), context
                    if response.headers.get("content-type", "").startswith("text/html"):
                        policy = response.headers["content-security-policy"]
                        assert "'nonce-" in policy and "frame-ancestors 'none'" in policy, context
