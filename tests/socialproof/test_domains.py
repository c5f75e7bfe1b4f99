"""Which domains a site may have, and proof of control when it overlaps another organization's site.

A site receives the Origins of its domain and of every subdomain, so public suffixes (``co.uk``, ``github.io``),
``localhost`` and addresses are refused, and a site whose domain is the same as, a parent of or a child of another
organization's site that came first (or proved control) serves nothing until it proves control: the platform
fetches ``verification.fileUrl`` through the outbound guard and looks for the site's token. Here the guard lets
loopback and plain HTTP through, and the URL template points at a small file server on loopback that answers for
any domain (``/{domain}/.well-known/…``), as the integration tests point vendors at local fakes.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from northstar.app import create_app
from northstar.demo.loopback import serving
from northstar.settings import Settings
from tests.conftest import running
from tests.factories import Account, add_member
from tests.socialproof.conftest import CHROME_UA

WIDGET_PATHS = ("loader", "feed", "collect", "stream")


class Files:
    """The merchants' web servers: ``/{domain}/.well-known/northstar-verification.txt`` holds what a test put there."""

    def __init__(self) -> None:
        self.content: dict[str, str] = {}
        self.url = ""

    async def respond(self, request: Request) -> Response:
        found = self.content.get(request.path_params["domain"])
        return PlainTextResponse(found) if found is not None else Response(status_code=404)


@pytest.fixture(scope="module")
async def files() -> AsyncIterator[Files]:
    served = Files()
    app = Starlette(routes=[Route("/{domain}/.well-known/northstar-verification.txt", served.respond)])
    async with serving(app) as url:
        served.url = url
        yield served


@pytest.fixture(scope="module")
async def http(settings: Settings, files: Files) -> AsyncIterator[httpx.AsyncClient]:
    """The platform with the outbound guard open to loopback over HTTP, fetching verification files from ``files``."""
    configured = settings.model_copy(
        update={
            "outbound": settings.outbound.model_copy(update={"allow_private_networks": True, "allow_http": True}),
            "socialproof": settings.socialproof.model_copy(
                update={"verification_url": files.url + "/{domain}/.well-known/northstar-verification.txt"}
            ),
        }
    )
    async with running(create_app(configured)) as client:
        yield client


def _base() -> str:
    """A domain of its own for each test (``.example`` is reserved, and not a public suffix's name)."""
    return f"t{secrets.token_hex(5)}.example"


async def _site(http: httpx.AsyncClient, account: Account, domain: str) -> dict[str, Any]:
    response = await http.post("/api/v1/sites", headers=account.headers, json={"name": "Shop", "domain": domain})
    assert response.status_code == 201, response.text
    site: dict[str, Any] = response.json()["data"]
    await http.post(
        f"/api/v1/sites/{site['id']}/notifications",
        headers=account.headers,
        json={"name": "Free shipping", "type": "announcement", "status": "active"},
    )
    return site


async def _verification(http: httpx.AsyncClient, account: Account, site: dict[str, Any]) -> str:
    response = await http.get(f"/api/v1/sites/{site['id']}", headers=account.headers)
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["verification"]["status"])


async def _widget(http: httpx.AsyncClient, site: dict[str, Any], *, host: str | None = None) -> dict[str, str]:
    """What each widget path answers for the site, from a page on ``host`` (default: the site's domain): the
    status, and the error code when refused."""
    origin = f"https://{host or site['domain']}"
    headers = {"Origin": origin, "User-Agent": CHROME_UA}
    page = {"url": f"{origin}/"}
    key = site["siteKey"]
    answers = {
        "loader": await http.get(f"/w/{key}.js", headers=headers),
        "feed": await http.get(f"/api/v1/widget/{key}/feed", params=page, headers=headers),
        "collect": await http.post(
            "/api/v1/collect",
            headers=headers,
            json={"siteKey": key, "events": [{"id": str(uuid.uuid4()), "type": "page_view", "url": f"{origin}/"}]},
        ),
    }
    stream = (
        await http.get("/events/stream", params={"siteKey": key, **page}, headers=headers)
        if any(answer.status_code >= 400 for answer in answers.values())
        else None
    )
    if stream is not None:
        answers["stream"] = stream
    return {
        path: str(answer.status_code)
        if answer.status_code < 400
        else f"{answer.status_code} {answer.json()['error']['code']}"
        for path, answer in answers.items()
    }


SERVES = {"loader": "200", "feed": "200", "collect": "202"}
REFUSED = dict.fromkeys(WIDGET_PATHS, "403 site_unverified")


async def _eventually(check: Callable[[], Awaitable[Any]], expected: Any, *, within: float = 5.0) -> Any:
    """Polls ``check`` until it returns ``expected`` (caches hear of a change asynchronously, over LISTEN)."""
    deadline = time.monotonic() + within
    while True:
        found = await check()
        if found == expected or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


async def _verify(http: httpx.AsyncClient, account: Account, site: dict[str, Any]) -> httpx.Response:
    return await http.post(f"/api/v1/sites/{site['id']}/verify", headers=account.headers)


@pytest.mark.parametrize(
    "domain",
    [
        "co.uk",
        "https://CO.UK/",
        "github.io",
        "s3.amazonaws.com",
        "com.au",
        "localhost",
        "http://localhost/",
        "LOCALHOST.",
    ],
)
async def test_public_suffixes_and_localhost_are_refused(
    http: httpx.AsyncClient, founder: Account, domain: str
) -> None:
    created = await http.post("/api/v1/sites", headers=founder.headers, json={"name": "Shop", "domain": domain})
    assert created.status_code == 422, created.text
    assert [detail["field"] for detail in created.json()["error"]["details"]] == ["body.domain"]
    site = await _site(http, founder, _base())
    moved = await http.patch(f"/api/v1/sites/{site['id']}", headers=founder.headers, json={"domain": domain})
    assert moved.status_code == 422, moved.text


async def test_names_under_public_suffixes_and_under_localhost_are_fine(
    http: httpx.AsyncClient, founder: Account
) -> None:
    token = secrets.token_hex(4)
    for domain in (f"shop-{token}.co.uk", f"shop-{token}.github.io", f"shop-{token}.localhost"):
        site = await _site(http, founder, domain)
        assert site["domain"] == domain and site["verification"]["status"] == "not_required"


async def test_a_parent_of_another_orgs_domain_serves_nothing_until_it_proves_control(
    http: httpx.AsyncClient, files: Files, founder: Account, other_founder: Account
) -> None:
    base = _base()
    shop = await _site(http, founder, f"shop.{base}")
    parent = await _site(http, other_founder, base)  # would receive every Origin of shop.<base>
    verification = parent["verification"]
    assert verification["status"] == "pending" and verification["token"].startswith("nsv_")
    assert verification["fileUrl"] == f"{files.url}/{base}/.well-known/northstar-verification.txt"
    assert verification["fileUrl"] in verification["instructions"] and "/verify" in verification["instructions"]
    assert verification["verifiedAt"] is None
    assert await _widget(http, parent, host=f"shop.{base}") == REFUSED
    assert await _widget(http, parent) == REFUSED
    assert await _widget(http, shop) == SERVES  # the site that was there first goes on as it was
    assert shop["verification"]["status"] == "not_required"

    missing = await _verify(http, other_founder, parent)
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "verification_failed"
    assert "404" in missing.json()["error"]["message"]
    files.content[base] = "nsv_someone-elses-token\n"
    wrong = await _verify(http, other_founder, parent)
    assert wrong.status_code == 422 and "token" in wrong.json()["error"]["message"]
    assert await _verification(http, other_founder, parent) == "pending"
    assert await _widget(http, parent) == REFUSED

    files.content[base] = f"nsv_someone-elses-token\n{verification['token']}\n"  # one line per site is fine
    proved = await _verify(http, other_founder, parent)
    assert proved.status_code == 200, proved.text
    assert proved.json()["data"]["verification"]["status"] == "verified"
    assert proved.json()["data"]["verification"]["verifiedAt"] is not None
    assert await _eventually(lambda: _widget(http, parent), SERVES) == SERVES
    # a proof of control outranks every unproven claim it overlaps: shop.<base> proves control too, and both serve
    assert await _verification(http, founder, shop) == "pending"
    assert await _eventually(lambda: _widget(http, shop), REFUSED) == REFUSED
    files.content[f"shop.{base}"] = shop["verification"]["token"]
    assert (await _verify(http, founder, shop)).status_code == 200
    assert await _eventually(lambda: _widget(http, shop), SERVES) == SERVES
    assert await _widget(http, parent) == SERVES


async def test_a_child_or_the_same_domain_of_another_orgs_site_waits_too(
    http: httpx.AsyncClient, founder: Account, other_founder: Account
) -> None:
    base = _base()
    first = await _site(http, founder, base)
    child = await _site(http, other_founder, f"www.{base}")
    same = await _site(http, other_founder, f"https://{base.upper()}/")  # one domain may be claimed by two orgs
    assert child["verification"]["status"] == same["verification"]["status"] == "pending"
    assert await _widget(http, child) == await _widget(http, same) == REFUSED
    assert await _widget(http, first) == SERVES
    own = await _site(http, founder, f"blog.{base}")  # the same organization's sites never contest each other
    assert own["verification"]["status"] == "not_required"


async def test_an_older_site_moved_onto_an_overlapping_domain_is_the_newcomer(
    http: httpx.AsyncClient, founder: Account, other_founder: Account
) -> None:
    base = _base()
    older = await _site(http, other_founder, _base())  # created before the site it will overlap
    shop = await _site(http, founder, f"shop.{base}")
    assert await _widget(http, older) == SERVES
    moved = await http.patch(f"/api/v1/sites/{older['id']}", headers=other_founder.headers, json={"domain": base})
    assert moved.status_code == 200, moved.text
    assert moved.json()["data"]["verification"]["status"] == "pending"
    assert await _eventually(lambda: _widget(http, older, host=f"shop.{base}"), REFUSED) == REFUSED
    assert await _widget(http, shop) == SERVES
    assert await _verification(http, founder, shop) == "not_required"


async def test_a_squatter_loses_the_domain_to_the_org_that_proves_control(
    http: httpx.AsyncClient, files: Files, founder: Account, other_founder: Account
) -> None:
    base = _base()
    squatter = await _site(http, other_founder, base)  # first, and unchallenged: it serves
    assert await _widget(http, squatter) == SERVES
    owner = await _site(http, founder, f"shop.{base}")
    assert owner["verification"]["status"] == "pending"
    files.content[f"shop.{base}"] = owner["verification"]["token"]
    assert (await _verify(http, founder, owner)).status_code == 200
    # the squatter now overlaps a site that proved control: it serves nothing until it proves control too
    assert await _verification(http, other_founder, squatter) == "pending"
    assert await _eventually(lambda: _widget(http, squatter, host=f"shop.{base}"), REFUSED) == REFUSED
    assert await _eventually(lambda: _widget(http, owner), SERVES) == SERVES


async def test_proving_control_of_a_domain_withdraws_an_earlier_proof_of_it(
    http: httpx.AsyncClient, files: Files, founder: Account, other_founder: Account
) -> None:
    base = _base()
    former = await _site(http, other_founder, base)
    files.content[base] = former["verification"]["token"]
    assert (await _verify(http, other_founder, former)).status_code == 200
    current = await _site(http, founder, base)  # the domain changed hands
    assert current["verification"]["status"] == "pending"
    files.content[base] = current["verification"]["token"]
    assert (await _verify(http, founder, current)).status_code == 200
    assert await _verification(http, other_founder, former) == "pending"
    assert await _eventually(lambda: _widget(http, former), REFUSED) == REFUSED
    assert await _eventually(lambda: _widget(http, current), SERVES) == SERVES


async def test_changing_the_domain_asks_for_a_new_proof(
    http: httpx.AsyncClient, files: Files, founder: Account, other_founder: Account
) -> None:
    base = _base()
    await _site(http, other_founder, f"shop.{base}")
    site = await _site(http, founder, _base())
    files.content[site["domain"]] = site["verification"]["token"]
    assert (await _verify(http, founder, site)).status_code == 200
    moved = await http.patch(f"/api/v1/sites/{site['id']}", headers=founder.headers, json={"domain": base})
    verification = moved.json()["data"]["verification"]
    assert verification["status"] == "pending" and verification["verifiedAt"] is None


async def test_only_who_may_change_the_site_may_verify_it(
    http: httpx.AsyncClient, files: Files, founder: Account
) -> None:
    site = await _site(http, founder, _base())
    files.content[site["domain"]] = site["verification"]["token"]
    analyst = await add_member(http, founder, "analyst")
    assert (await _verify(http, analyst, site)).status_code == 403
    assert await _verification(http, founder, site) == "not_required"


async def test_the_verification_file_is_fetched_through_the_outbound_guard(
    client: httpx.AsyncClient, founder: Account
) -> None:
    """With the guard's defaults (https only, public addresses only), a domain that does not resolve publicly
    cannot be verified, and the answer says why."""
    created = await client.post("/api/v1/sites", headers=founder.headers, json={"name": "Shop", "domain": _base()})
    site = created.json()["data"]
    assert site["verification"]["fileUrl"] == f"https://{site['domain']}/.well-known/northstar-verification.txt"
    refused = await client.post(f"/api/v1/sites/{site['id']}/verify", headers=founder.headers)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "verification_failed"
    assert site["verification"]["fileUrl"] in refused.json()["error"]["message"]
