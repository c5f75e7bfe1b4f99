"""The console's chart library: uPlot against Apache ECharts on the same dashboard, in the same run.

What a page must load is counted as gzipped bytes (level 9) of the prebuilt files in each npm package: a custom
ECharts build would need a Node build step, which the project does not have. The dashboard is 8 line charts of 730
daily points and 1 bar chart of 24 months, drawn in headless Chromium at 1440 px. Render time is
``performance.now()`` from before the first chart is created until two animation frames later (so deferred paints
count), median of ``RUNS`` fresh pages; JS heap is ``Runtime.getHeapUsage`` after a forced garbage collection, with
the charts on screen, and on the same page before any chart for the library alone. Animations are off in both.

uPlot is read from the vendored files; ECharts is downloaded from the npm registry and checked against its
published sha512 (``ECHARTS_INTEGRITY``).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import io
import os
import shutil
import statistics
import tarfile
from typing import Any

import httpx
import uvicorn
from playwright.async_api import Browser, async_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from northstar.core.console.vendor import ASSETS, VENDOR_DIR

ECHARTS_TARBALL = "https://registry.npmjs.org/echarts/-/echarts-6.1.0.tgz"
ECHARTS_INTEGRITY = "sha512-q0yaFPggC9FUdsWH4blavRWFmxdrIodbkoKNAjJudAI6CA9gNPxHtV2RcZNEepZVlk4yvBYkOkbk6HIVpIyHZA=="
ECHARTS_FILES = ("echarts.min.js", "echarts.common.min.js", "echarts.simple.min.js")
RUNS = int(os.environ.get("NORTHSTAR_BENCH_CHART_RUNS", "7"))
BUDGET = 150 * 1024

DASHBOARD = """<!doctype html><html><head><meta charset="utf-8"><title>bench</title>%(head)s
<style>#root{display:grid;grid-template-columns:1fr 1fr;gap:8px;width:1400px}#root>div{height:220px}</style></head>
<body><div id="root"></div><script>
const N = 730, start = Date.UTC(2023, 0, 1) / 1000;
const xs = Array.from({length: N}, (_, i) => start + i * 86400);
const line = (k) => {
  let v = 100 + 10 * k;
  return xs.map((_, i) => v += Math.sin(i / 30 + k) * 2 + ((i * 7919 + k) %% 13 - 6) / 3);
};
const months = Array.from({length: 24}, (_, i) => `2023-${i + 1}`), bars = months.map((_, i) => 50 + (i * 37) %% 40);
function box() { const el = document.createElement("div"); document.getElementById("root").append(el); return el; }
const draw = {
  uplot() {
    for (let k = 0; k < 8; k++) { const el = box();
      new uPlot({width: el.clientWidth, height: 220, series: [{}, {stroke: "#36c"}]}, [xs, line(k)], el); }
    const el = box();
    new uPlot({width: el.clientWidth, height: 220, scales: {x: {time: false}},
      series: [{}, {fill: "#36c", paths: uPlot.paths.bars({size: [0.6]})}]}, [bars.map((_, i) => i), bars], el);
  },
  echarts() {
    for (let k = 0; k < 8; k++) { const ys = line(k);
      echarts.init(box()).setOption({animation: false, xAxis: {type: "time"}, yAxis: {type: "value", scale: true},
        series: [{type: "line", showSymbol: false, data: xs.map((x, i) => [x * 1000, ys[i]])}]}); }
    echarts.init(box()).setOption({animation: false, xAxis: {type: "category", data: months}, yAxis: {type: "value"},
      series: [{type: "bar", data: bars}]});
  },
};
window.render = async (lib) => {
  const t0 = performance.now(); draw[lib]();
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  return performance.now() - t0;
};
</script></body></html>"""


def gzipped(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def echarts_files() -> dict[str, bytes]:
    """The prebuilt bundles from the pinned npm tarball, refused unless it matches the registry's sha512."""
    tarball = httpx.get(ECHARTS_TARBALL, follow_redirects=True, timeout=120).content
    digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    if digest != ECHARTS_INTEGRITY:
        raise RuntimeError(f"{ECHARTS_TARBALL} is not the published tarball ({digest})")
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        files = {name: archive.extractfile(f"package/dist/{name}") for name in ECHARTS_FILES}
        missing = [name for name, member in files.items() if member is None]
        if missing:
            raise RuntimeError(f"{ECHARTS_TARBALL} holds no regular file {', '.join(missing)} in package/dist")
        return {name: member.read() for name, member in files.items() if member is not None}


def app(files: dict[str, bytes]) -> Starlette:
    heads = {
        "uplot": '<link rel="stylesheet" href="/uplot.css"><script src="/uplot.js"></script>',
        "echarts": '<script src="/echarts.js"></script>',
    }

    async def page(request: Request) -> Response:
        return HTMLResponse(DASHBOARD % {"head": heads[request.path_params["lib"]]})

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in files:
            return Response(status_code=404)
        return Response(files[name], media_type="text/css" if name.endswith(".css") else "text/javascript")

    return Starlette(routes=[Route("/{lib}.html", page), Route("/{name:path}", asset)])


async def measure(browser: Browser, base: str, lib: str) -> tuple[float, int, int]:
    """One fresh page: render milliseconds, heap bytes with the library loaded, heap bytes with the charts drawn."""
    page = await browser.new_page(viewport={"width": 1440, "height": 1200})
    try:
        await page.goto(f"{base}/{lib}.html")
        cdp = await page.context.new_cdp_session(page)
        await cdp.send("HeapProfiler.collectGarbage")
        loaded = (await cdp.send("Runtime.getHeapUsage"))["usedSize"]
        elapsed = float(await page.evaluate("(lib) => render(lib)", lib))
        await cdp.send("HeapProfiler.collectGarbage")
        drawn = (await cdp.send("Runtime.getHeapUsage"))["usedSize"]
        return elapsed, int(loaded), int(drawn)
    finally:
        await page.close()


async def in_chromium(files: dict[str, bytes]) -> dict[str, Any]:
    executable = os.environ.get("NORTHSTAR_TEST_CHROMIUM") or shutil.which("chromium") or "chromium"
    server = uvicorn.Server(uvicorn.Config(app(files), host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # uvicorn offers no event to wait on
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    results: dict[str, Any] = {}
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            runs: dict[str, list[tuple[float, int, int]]] = {"uplot": [], "echarts": []}
            for _ in range(RUNS):  # alternating, so a slow moment of the machine hits both
                for lib, samples in runs.items():
                    samples.append(await measure(browser, f"http://127.0.0.1:{port}", lib))
            await browser.close()
    finally:
        server.should_exit = True
        await task
    for lib, samples in runs.items():
        results[f"{lib}: dashboard render, median ms"] = statistics.median(sample[0] for sample in samples)
        results[f"{lib}: JS heap, library loaded, MB"] = statistics.median(sample[1] for sample in samples) / 1e6
        results[f"{lib}: JS heap, charts drawn, MB"] = statistics.median(sample[2] for sample in samples) / 1e6
    return results


def run() -> dict[str, Any]:
    vendored = {name: (VENDOR_DIR / ASSETS[name].file).read_bytes() for name in ("uplot.js", "uplot.css", "htmx.js")}
    echarts = echarts_files()
    results: dict[str, Any] = {
        "htmx min.js, gzipped bytes": gzipped(vendored["htmx.js"]),
        "uPlot min.js + min.css, gzipped bytes": gzipped(vendored["uplot.js"]) + gzipped(vendored["uplot.css"]),
    }
    for name, data in echarts.items():
        results[f"ECharts {name}, gzipped bytes"] = gzipped(data)
    results["first-load budget (HTML, CSS, JS), gzipped bytes"] = BUDGET
    files = {
        "uplot.js": vendored["uplot.js"],
        "uplot.css": vendored["uplot.css"],
        "echarts.js": echarts[ECHARTS_FILES[0]],
    }
    return results | asyncio.run(in_chromium(files))


if __name__ == "__main__":
    for measure_name, value in run().items():
        print(f"{measure_name}: {value:,.2f}" if isinstance(value, float) else f"{measure_name}: {value:,}")
