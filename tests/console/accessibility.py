"""``assert_accessible``: axe-core run in a Playwright page, failing on every serious or critical violation.

axe-core comes from the pinned ``axe-playwright-python`` (its bundled ``axe.min.js``), which injects it with
``page.evaluate``: the source runs through the DevTools protocol, which the page's Content-Security-Policy does not
govern, so it works on console pages whose CSP allows only ``'self'`` and a nonce (a ``page.add_script_tag`` would be
refused there). No ``bypass_csp`` is needed, which would also hide the CSP violations the same tests look for;
tests/console/test_charts.py checks both on such a page. Moderate and minor findings are left to review.
"""

from __future__ import annotations

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page

AXE = Axe()
BLOCKING = ("serious", "critical")


async def assert_accessible(page: Page, *, context: str = "") -> None:
    """Fails listing each serious or critical violation on ``page``: rule id, impact, help and the nodes' targets."""
    results = await AXE.run(page)
    violations = [violation for violation in results.response["violations"] if violation["impact"] in BLOCKING]
    if violations:
        lines = [
            f"- {violation['id']} ({violation['impact']}): {violation['help']} at "
            + "; ".join(" > ".join(map(str, node["target"])) for node in violation["nodes"])
            for violation in violations
        ]
        where = f" ({context})" if context else ""
        raise AssertionError(f"{len(violations)} accessibility violation(s) on {page.url}{where}:\n" + "\n".join(lines))
