// Live job progress: rows and panels marked data-job-id follow their job's status and progress events from
// /app/events (the API's event stream for the signed-in user). The page was read before its stream opened, so once
// the stream is live the page is read again to catch up with what changed in between. A job page reloads when its
// job finishes, to show its results and links.
const FINISHED = new Set(["completed", "failed", "cancelled"]);
const BADGE = { completed: "good", failed: "bad", cancelled: "warn" };
const heard = new Set(); // jobs with an event since the catch-up started: newer than what it reads

function show(jobId, { status, progress, rows }) {
  for (const element of document.querySelectorAll(`[data-job-id="${CSS.escape(jobId)}"]`)) {
    const bar = element.querySelector("[data-job-progress]");
    if (bar && typeof progress === "number") {
      bar.value = progress;
      bar.textContent = `${Math.round(progress * 100)}%`;
    }
    const rowsCell = element.querySelector("[data-job-rows]");
    if (rowsCell && rows !== undefined) {
      rowsCell.textContent = rows;
    }
    const badge = element.querySelector("[data-job-status]");
    if (badge && status && badge.textContent !== status) {
      badge.textContent = status;
      badge.className = `badge ${BADGE[status] ?? ""}`.trim();
      if (FINISHED.has(status) && element.hasAttribute("data-reload-when-done")) {
        window.location.reload();
      }
    }
  }
}

function update(data) {
  heard.add(data.jobId);
  let rows;
  if (typeof data.rowsDone === "number") {
    rows = data.rowsTotal ? `${data.rowsDone} / ${data.rowsTotal}` : String(data.rowsDone);
  }
  show(data.jobId, { status: data.status, progress: data.progress, rows });
}

async function catchUp() {
  heard.clear();
  const response = await fetch(window.location.href, { headers: { Accept: "text/html" } });
  if (!response.ok) {
    return;
  }
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const element of fresh.querySelectorAll("[data-job-id]")) {
    const jobId = element.dataset.jobId;
    if (heard.has(jobId)) {
      continue;
    }
    const bar = element.querySelector("[data-job-progress]");
    show(jobId, {
      status: element.querySelector("[data-job-status]")?.textContent,
      progress: bar ? Number(bar.getAttribute("value")) : undefined,
      rows: element.querySelector("[data-job-rows]")?.textContent,
    });
  }
}

if (document.querySelector("[data-job-id]")) {
  const source = new EventSource("/app/events?topics=job.status,job.progress");
  source.addEventListener("ready", () => catchUp());
  for (const topic of ["job.status", "job.progress"]) {
    source.addEventListener(topic, (event) => update(JSON.parse(event.data)));
  }
  // After a gap the stream cannot replay, the page's state is stale: load it again.
  source.addEventListener("reset", () => window.location.reload());
  window.addEventListener("pagehide", () => source.close());
}
