/* The console's charts: <figure data-chart="line|bars|sparkline|waterfall" data-source="ID" [data-height="240"]>
 * is drawn with uPlot (vendor/uPlot-*.iife.min.js and its .css, loaded before this module) from the JSON in
 * <script type="application/json" id="ID">, which the browser never executes, so a strict CSP is fine:
 *   {"title": "Revenue",                                  accessible name (else the figure's <figcaption>)
 *    "x": ["2024-01-31", ...] | [1706659200, ...] | ["New", "Churned", ...],  ISO dates, epoch seconds or labels
 *    "xLabel": "Month",                                   table heading of the x column (default Date / Item)
 *    "series": [{"label": "MRR", "values": [123450, null, ...], "color": "#1f5fbf"}],     color is optional
 *    "format": {"currency": "EUR", "exponent": 2} | {"unit": "percent"} | {"unit": "second"} | {},
 *    "anomalies": [{"x": "2024-03-01", "label": "3.1σ above the trend"}]}
 * Money is integer minor units, shown as value / 10**exponent; percent values are fractions (0.12 is 12 %); other
 * units are Intl unit identifiers. A waterfall takes one series of changes, each bar starting at the running total.
 * Each chart gets role="img" with an aria-label and a visually hidden <table> of its numbers, follows its figure's
 * width, and is drawn again after htmx swaps when its data changed. Styles are set through the CSSOM only.
 */
const uPlot = globalThis.uPlot;
const COLORS = ["#1f5fbf", "#b3541e", "#2e7d32", "#6a3d9a", "#00838f", "#ad1457", "#5d4037", "#455a64"];
const KINDS = { line: "line chart", bars: "bar chart", sparkline: "sparkline", waterfall: "waterfall chart" };
const ISO_DATE = /^\d{4}-\d{2}-\d{2}/;
const mounted = new Map(); // figure -> {plot, observer, text}

const locale = () => document.documentElement.lang || undefined;

function numberFormat(format = {}, compact = false) {
  const short = compact ? { notation: "compact", maximumFractionDigits: 1 } : {};
  let scale = 1;
  let options = short;
  if (format.currency) {
    const exponent = format.exponent ?? 2;
    scale = 10 ** exponent;
    const digits = compact ? {} : { minimumFractionDigits: exponent, maximumFractionDigits: exponent };
    options = { style: "currency", currency: format.currency, ...short, ...digits };
  } else if (format.unit === "percent") {
    options = { style: "percent", ...short };
  } else if (format.unit) {
    options = { style: "unit", unit: format.unit, ...short };
  }
  const intl = new Intl.NumberFormat(locale(), options);
  return (value) => (value == null ? "–" : intl.format(value / scale));
}

function xAxis(x) {
  const time = x.length > 0 && x.every((v) => typeof v === "number" || ISO_DATE.test(v));
  const position = (v) => (!time ? x.indexOf(v) : typeof v === "number" ? v : Date.parse(v) / 1000);
  const values = time ? x.map(position) : x.map((_, i) => i);
  const daily = values.every((seconds) => seconds % 86400 === 0);
  const dates = new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeZone: "UTC", ...(daily ? {} : { timeStyle: "short" }) });
  const label = time ? (s) => dates.format(new Date(s * 1000)) : (i) => String(x[Math.round(i)] ?? "");
  return { time, values, position, label };
}

function waterfallSteps(changes) {
  let total = 0;
  return changes.map((change) => {
    const start = total;
    total += change ?? 0;
    return [start, total];
  });
}

function element(tag, className, text) {
  return Object.assign(document.createElement(tag), className ? { className } : {}, text != null ? { textContent: text } : {});
}

function dataTable(caption, data, axis, format, steps) {
  const table = element("table", "chart-table");
  table.createCaption().textContent = caption;
  const notes = new Map((data.anomalies || []).map((a) => [axis.position(a.x), a.label || "Anomaly"]));
  const headings = [data.xLabel || (axis.time ? "Date" : "Item"), ...data.series.map((s) => s.label)];
  if (steps) headings.push("Running total");
  if (notes.size) headings.push("Note");
  const head = table.createTHead().insertRow();
  for (const text of headings) head.append(Object.assign(element("th", null, text), { scope: "col" }));
  const body = table.createTBody();
  axis.values.forEach((x, i) => {
    const row = body.insertRow();
    row.append(Object.assign(element("th", null, axis.label(x)), { scope: "row" }));
    for (const series of data.series) row.append(element("td", null, format(series.values[i])));
    if (steps) row.append(element("td", null, format(steps[i][1])));
    if (notes.size) row.append(element("td", null, notes.get(x) || ""));
  });
  return table;
}

function markers(plot, data, axis) {
  return (data.anomalies || []).map((anomaly) => {
    const x = axis.position(anomaly.x);
    const line = element("span", "chart-anomaly");
    line.title = anomaly.label || "Anomaly";
    line.append(element("i"));
    plot.over.append(line);
    return { x, line, index: axis.values.indexOf(x) };
  });
}

function placeMarkers(plot, marks, seriesData) {
  for (const { x, line, index } of marks) {
    line.style.left = `${plot.valToPos(x, "x")}px`;
    const y = seriesData[index];
    line.firstChild.style.top = y == null ? "-9999px" : `${plot.valToPos(y, "y")}px`;
  }
}

function drawWaterfall(plot, steps) {
  const { ctx } = plot;
  const half = (plot.valToPos(1, "x", true) - plot.valToPos(0, "x", true)) * 0.3;
  ctx.save();
  steps.forEach(([start, end], i) => {
    const x = plot.valToPos(i, "x", true);
    const top = plot.valToPos(Math.max(start, end), "y", true);
    ctx.fillStyle = end >= start ? COLORS[2] : COLORS[5];
    ctx.fillRect(x - half, top, half * 2, Math.max(1, plot.valToPos(Math.min(start, end), "y", true) - top));
  });
  ctx.restore();
}

function options(kind, data, axis, width, height, steps) {
  const spark = kind === "sparkline";
  const compact = numberFormat(data.format, true);
  const full = numberFormat(data.format);
  const barred = kind === "bars" || kind === "waterfall";
  const step = axis.values.length > 1 ? axis.values[1] - axis.values[0] : 1;
  const series = data.series.map((s, i) => {
    const color = s.color || COLORS[i % COLORS.length];
    const common = { label: s.label, stroke: color, width: spark ? 1.5 : 2, value: (u, v) => full(v) };
    if (kind === "bars") return { ...common, fill: color, paths: uPlot.paths.bars({ size: [0.6, 64] }) };
    if (kind === "waterfall") return { ...common, paths: () => null, points: { show: false } };
    return { ...common, points: { show: false } };
  });
  const range = steps ? [Math.min(0, ...steps.flat()), Math.max(0, ...steps.flat())] : undefined;
  return {
    width,
    height,
    legend: { show: !spark },
    cursor: { show: !spark },
    tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC"),
    scales: {
      x: { time: axis.time, ...(barred ? { range: (u, min, max) => [min - step / 2, max + step / 2] } : {}) },
      y: range ? { range } : {},
    },
    axes: [
      { show: !spark, ...(axis.time ? {} : { incrs: [1, 2, 5, 10, 20, 50], values: (u, ticks) => ticks.map(axis.label) }) },
      { show: !spark, size: 64, values: (u, ticks) => ticks.map(compact) },
    ],
    series: [{ value: (u, v) => (v == null ? "–" : axis.label(v)) }, ...series],
  };
}

function render(figure) {
  const block = document.getElementById(figure.dataset.source || "");
  const kind = figure.dataset.chart;
  if (!block || !KINDS[kind] || !uPlot) return;
  const text = block.textContent;
  if (mounted.get(figure)?.text === text) return;
  unmount(figure);
  const data = JSON.parse(text);
  const axis = xAxis(data.x);
  const steps = kind === "waterfall" ? waterfallSteps(data.series[0].values) : null;
  const title = data.title || figure.querySelector("figcaption")?.textContent.trim() || "Chart";
  const count = axis.values.length;
  const span = count ? `, ${count} points from ${axis.label(axis.values[0])} to ${axis.label(axis.values[count - 1])}` : ", no data";
  const anomalies = (data.anomalies || []).length ? `, ${data.anomalies.length} marked as anomalies` : "";
  const box = element("div", "chart-plot");
  box.setAttribute("role", "img");
  const names = data.series.map((s) => s.label).join(", ");
  box.setAttribute("aria-label", `${title}: ${KINDS[kind]} of ${names}${span}${anomalies}; the data table follows.`);
  figure.append(box, dataTable(title, data, axis, numberFormat(data.format), steps));
  const height = Number(figure.dataset.height) || (kind === "sparkline" ? 48 : 240);
  const columns = steps ? [axis.values, steps.map(([, end]) => end)] : [axis.values, ...data.series.map((s) => s.values)];
  const plot = new uPlot(options(kind, data, axis, box.clientWidth, height, steps), columns, box);
  const marks = markers(plot, data, axis);
  plot.hooks.draw = [(u) => { if (steps) drawWaterfall(u, steps); placeMarkers(u, marks, columns[1]); }];
  plot.redraw(false);
  const observer = new ResizeObserver(() => box.clientWidth !== plot.width && plot.setSize({ width: box.clientWidth, height }));
  observer.observe(box);
  mounted.set(figure, { plot, observer, text, nodes: [box, box.nextElementSibling] });
}

export function unmount(figure) {
  const chart = mounted.get(figure);
  if (!chart) return;
  chart.observer.disconnect();
  chart.plot.destroy();
  chart.nodes.forEach((node) => node.remove());
  mounted.delete(figure);
}

export function mount(root = document) {
  for (const figure of [...mounted.keys()]) if (!figure.isConnected) unmount(figure);
  const scope = root instanceof Element || root instanceof Document ? root : document;
  const figures = [...scope.querySelectorAll("figure[data-chart]")];
  if (scope instanceof Element && scope.matches("figure[data-chart]")) figures.push(scope);
  figures.forEach(render);
}

document.addEventListener("htmx:load", (event) => mount(event.detail.elt));
document.addEventListener("htmx:afterSwap", () => mount(document));
mount(document);
