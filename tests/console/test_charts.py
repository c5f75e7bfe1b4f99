"""charts.js and the vendored htmx and uPlot in headless Chromium, on pages served from loopback with the console's
strict CSP: scripts from 'self' or with the page's nonce, styles from 'self' only, no eval.

Every page records ``securitypolicyviolation`` events from an init script (the DevTools protocol, outside the CSP)
and every test checks that there were none, except the one showing that htmx's indicator styles would be refused.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, Page
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from northstar.core.console.vendor import ASSETS, VENDOR_DIR
from northstar.demo.loopback import serving
from tests.console.accessibility import assert_accessible

STATIC = VENDOR_DIR.parent
HTMX_CONFIG = '{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":true}'
RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) =>
  window.cspViolations.push(`${event.violatedDirective} ${event.blockedURI} ${event.sample}`));
"""
START = date(2023, 1, 1)
DAYS = [(START + timedelta(days=day)).isoformat() for day in range(730)]


class Site:
    """Pages registered by the tests, each answered with a fresh nonce and the strict CSP."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}

    async def page(self, request: Request) -> Response:
        html = self.pages.get(request.path_params["name"])
        if html is None:
            return Response(status_code=404)
        nonce = secrets.token_urlsafe(16)
        policy = (
            f"default-src 'none'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; base-uri 'none'; form-action 'self'"
        )
        return HTMLResponse(html.replace("{nonce}", nonce), headers={"Content-Security-Policy": policy})


def data_block(block_id: str, data: dict[str, Any]) -> str:
    """A chart's data as the console writes it: JSON in a script element the browser does not run."""
    text = json.dumps(data).replace("</", "<\\/")
    return f'<script type="application/json" id="{block_id}">{text}</script>'


def document(body: str, *, htmx_config: str | None = HTMX_CONFIG) -> str:
    """A console-like page: vendored files with their SRI hashes, charts.js as a module, everything by nonce."""
    meta = f"<meta name=\"htmx-config\" content='{htmx_config}'>" if htmx_config else ""
    css, uplot, htmx = ASSETS["uplot.css"], ASSETS["uplot.js"], ASSETS["htmx.js"]
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Console</title>{meta}
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/{css.path}" integrity="{css.integrity}">
<link rel="stylesheet" href="/static/css/charts.css">
<script nonce="{{nonce}}" src="/static/{htmx.path}" integrity="{htmx.integrity}"></script>
<script nonce="{{nonce}}" src="/static/{uplot.path}" integrity="{uplot.integrity}"></script>
<script nonce="{{nonce}}" type="module" src="/static/js/charts.js"></script>
</head><body><main><h1>Dashboard</h1>{body}</main></body></html>"""


DASHBOARD = document(
    '<figure data-chart="line" data-source="revenue"><figcaption>Revenue</figcaption></figure>'
    + data_block(
        "revenue",
        {
            "title": "Revenue",
            "x": DAYS,
            "series": [
                {"label": "Subscriptions", "values": [100_000 + 50 * day for day in range(730)]},
                {"label": "One-off", "values": [20_000 + (day * 37) % 5_000 for day in range(730)]},
            ],
            "format": {"currency": "EUR", "exponent": 2},
            "anomalies": [{"x": "2023-06-01", "label": "Spike"}, {"x": "2024-02-29", "label": "Drop"}],
        },
    )
    + '<figure data-chart="bars" data-source="signups"><figcaption>Signups</figcaption></figure>'
    + data_block(
        "signups",
        {
            "x": [1672531200 + 86400 * 31 * month for month in range(12)],
            "series": [{"label": "Signups", "values": list(range(10, 130, 10))}],
        },
    )
    + '<figure data-chart="sparkline" data-source="churn"><figcaption>Churn</figcaption></figure>'
    + data_block(
        "churn", {"x": DAYS[:30], "series": [{"label": "Churn", "values": [0.02] * 30}], "format": {"unit": "percent"}}
    )
    + '<figure data-chart="waterfall" data-source="mrr"><figcaption>MRR movement</figcaption></figure>'
    + data_block(
        "mrr",
        {
            "x": ["Start", "New", "Expansion", "Churn"],
            "xLabel": "Movement",
            "series": [{"label": "Change", "values": [500_000, 120_000, 30_000, -80_000]}],
            "format": {"currency": "USD", "exponent": 2},
        },
    )
)


@pytest.fixture(scope="module")
async def site() -> AsyncIterator[tuple[Site, str]]:
    registry = Site()

    async def fragment(request: Request) -> Response:
        return HTMLResponse(registry.pages["fragment"])

    app = Starlette(
        routes=[
            Route("/page/{name}", registry.page),
            Route("/fragment", fragment),
            Mount("/static", StaticFiles(directory=STATIC)),
        ]
    )
    async with serving(app) as url:
        yield registry, url


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    opened = await context.new_page()
    await opened.add_init_script(RECORD_VIOLATIONS)
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    await context.close()
    assert not errors


async def open_page(page: Page, site: tuple[Site, str], name: str, html: str) -> None:
    registry, url = site
    registry.pages[name] = html
    await page.goto(f"{url}/page/{name}")
    await page.wait_for_function(
        "() => document.querySelectorAll('figure[data-chart] .uplot').length === "
        "document.querySelectorAll('figure[data-chart]').length"
    )


async def violations(page: Page) -> list[str]:
    return list(await page.evaluate("window.cspViolations"))


async def test_charts_render_with_tables_markers_and_names(page: Page, site: tuple[Site, str]) -> None:
    await open_page(page, site, "dashboard", DASHBOARD)
    revenue = page.locator('figure[data-source="revenue"]')
    plot = revenue.locator(".chart-plot")
    assert await plot.get_attribute("role") == "img"
    label = await plot.get_attribute("aria-label") or ""
    assert label.startswith(
        "Revenue: line chart of Subscriptions, One-off, 730 points from Jan 1, 2023 to Dec 30, 2024"
    )
    assert "2 marked as anomalies" in label
    assert await revenue.locator("canvas").count() == 1
    assert await revenue.locator(".u-legend .u-series").count() == 3  # x and two series
    painted = await revenue.locator("canvas").evaluate(
        "c => c.getContext('2d').getImageData(0, 0, c.width, c.height).data.filter((v, i) => i % 4 === 3 && v).length"
    )
    assert painted > 1000

    rows = revenue.locator("table.chart-table tbody tr")
    assert await rows.count() == 730
    assert await rows.first.locator("th, td").all_inner_texts() == ["Jan 1, 2023", "€1,000.00", "€200.00", ""]
    assert "Spike" in await rows.nth(151).inner_text()  # 2023-06-01
    hidden = "t => [getComputedStyle(t).position, getComputedStyle(t).clipPath]"
    assert await revenue.locator("table.chart-table").evaluate(hidden) == ["absolute", "inset(50%)"]

    markers = revenue.locator(".chart-anomaly")
    assert await markers.count() == 2
    width = await plot.evaluate("p => p.clientWidth")
    lefts = [float(await marker.evaluate("m => parseFloat(m.style.left)")) for marker in await markers.all()]
    assert 0 < lefts[0] < lefts[1] < width
    assert await markers.first.get_attribute("title") == "Spike"

    signups = page.locator('figure[data-source="signups"]')
    assert await signups.locator(".chart-table tbody tr").count() == 12
    assert await signups.locator(".chart-table tbody tr").last.locator("td").inner_text() == "120"
    churn = page.locator('figure[data-source="churn"]')
    assert await churn.locator(".u-legend").count() == 0
    assert await churn.locator(".chart-table tbody tr").first.locator("td").inner_text() == "2%"
    mrr = page.locator('figure[data-source="mrr"]')
    assert await mrr.locator(".chart-table tbody tr").last.locator("th, td").all_inner_texts() == [
        "Churn",
        "-$800.00",
        "$5,700.00",
    ]

    assert await violations(page) == []
    await assert_accessible(page, context="dashboard at 1440 px")


async def test_charts_follow_their_container(page: Page, site: tuple[Site, str]) -> None:
    await open_page(page, site, "resize", DASHBOARD)
    widths = (
        "[...document.querySelectorAll('.chart-plot')].map(p => [p.clientWidth, p.querySelector('canvas').clientWidth])"
    )
    for plot, canvas in await page.evaluate(widths):
        assert abs(plot - canvas) <= 1 and plot > 1000
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.wait_for_function(f"() => ({widths}).every(([p, c]) => Math.abs(p - c) <= 1 && p < 390)")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    assert await violations(page) == []
    await assert_accessible(page, context="dashboard at 390 px")


async def test_htmx_swaps_under_strict_csp_and_charts_mount_after(page: Page, site: tuple[Site, str]) -> None:
    registry, _ = site
    registry.pages["fragment"] = (
        '<p id="swapped">Fresh numbers</p><script>window.injected = true</script>'
        '<figure data-chart="sparkline" data-source="live"><figcaption>Live</figcaption></figure>'
        + data_block("live", {"x": DAYS[:3], "series": [{"label": "Jobs", "values": [1, 2, 3]}]})
    )
    await open_page(
        page, site, "htmx", document('<button hx-get="/fragment" hx-target="#out">Refresh</button><div id="out"></div>')
    )
    await page.get_by_role("button", name="Refresh").click()
    await page.locator("#out figure .chart-plot canvas").wait_for()
    assert await page.locator("#swapped").inner_text() == "Fresh numbers"
    assert await page.locator("#out .chart-table tbody tr").count() == 3
    assert await page.evaluate("window.injected") is None  # an injected inline script never runs
    assert await page.locator("head style").count() == 0
    assert all("script-src" in violation for violation in await violations(page))  # only the injected script


async def test_htmx_without_script_tags_drops_the_data_blocks(page: Page, site: tuple[Site, str]) -> None:
    """``allowScriptTags: false`` removes every <script> of a swapped fragment, JSON data blocks included: the
    reason the console keeps it true and lets the CSP refuse inline scripts."""
    registry, _ = site
    registry.pages["fragment"] = '<figure data-chart="sparkline" data-source="gone"></figure>' + data_block(
        "gone", {"x": DAYS[:3], "series": [{"label": "Jobs", "values": [1, 2, 3]}]}
    )
    config = HTMX_CONFIG.replace('"allowScriptTags":true', '"allowScriptTags":false')
    body = '<button hx-get="/fragment" hx-target="#out">Refresh</button><div id="out"></div>'
    await open_page(page, site, "no-scripts", document(body, htmx_config=config))
    await page.get_by_role("button", name="Refresh").click()
    await page.locator("#out figure").wait_for(state="attached")
    assert await page.locator("#gone").count() == 0
    assert await page.locator("#out .chart-plot").count() == 0


async def test_htmx_indicator_styles_would_be_refused(page: Page, site: tuple[Site, str]) -> None:
    """Without ``includeIndicatorStyles: false`` htmx adds a <style> the CSP refuses: the reason for the config."""
    await open_page(page, site, "no-config", document("<p>Plain</p>", htmx_config=None))
    await page.wait_for_function("() => window.cspViolations.length > 0")
    assert any(violation.startswith("style-src-elem") for violation in await violations(page))


async def test_assert_accessible_reports_violations_under_the_csp(page: Page, site: tuple[Site, str]) -> None:
    await open_page(page, site, "broken", document('<button></button><img src="/static/none.png">'))
    with pytest.raises(AssertionError) as failure:
        await assert_accessible(page, context="broken page")
    assert "button-name (critical)" in str(failure.value)
    assert "image-alt (critical)" in str(failure.value)
    assert "broken page" in str(failure.value)
    assert await violations(page) == []


def test_vendor_readme_states_the_served_hashes() -> None:
    readme = (VENDOR_DIR / "README.md").read_text()
    for asset in ASSETS.values():
        assert f"`{asset.file}`" in readme and f"`{asset.integrity}`" in readme
        assert asset.path == f"vendor/{asset.file}"
