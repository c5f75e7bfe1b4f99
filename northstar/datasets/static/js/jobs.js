// Live job progress: rows and panels marked data-job-id follow their job's status and progress events from
// /app/events (the API's event stream for the signed-in user). A job page reloads when its job finishes, to show
// its results and links.
const FINISHED = new Set(["completed", "failed", "cancelled"]);
const BADGE = { completed: "good", failed: "bad", cancelled: "warn" };

function update(data) {
  for (const element of document.querySelectorAll(`[data-job-id="${CSS.escape(data.jobId)}"]`)) {
    const bar = element.querySelector("[data-job-progress]");
    if (bar && typeof data.progress === "number") {
      bar.value = data.progress;
      bar.textContent = `${Math.round(data.progress * 100)}%`;
    }
    const rows = element.querySelector("[data-job-rows]");
    if (rows && typeof data.rowsDone === "number") {
      rows.textContent = data.rowsTotal ? `${data.rowsDone} / ${data.rowsTotal}` : String(data.rowsDone);
    }
    const badge = element.querySelector("[data-job-status]");
    if (badge && data.status && badge.textContent !== data.status) {
      badge.textContent = data.status;
      badge.className = `badge ${BADGE[data.status] ?? ""}`.trim();
    }
    if (FINISHED.has(data.status) && element.hasAttribute("data-reload-when-done")) {
      window.location.reload();
    }
  }
}

if (document.querySelector("[data-job-id]")) {
  const source = new EventSource("/app/events?topics=job.status,job.progress");
  for (const topic of ["job.status", "job.progress"]) {
    source.addEventListener(topic, (event) => update(JSON.parse(event.data)));
  }
  // After a gap the stream cannot replay, the page's state is stale: load it again.
  source.addEventListener("reset", () => window.location.reload());
  window.addEventListener("pagehide", () => source.close());
}
