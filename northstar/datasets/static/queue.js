"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const headers = () => ({ Authorization: "Bearer " + sessionStorage.getItem("northstar.token") });

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    row.appendChild(td);
    return td;
  }

  function render(data) {
    const cards = $("cards");
    cards.replaceChildren();
    const counts = Object.assign({ pending: 0, "in-progress": 0, failed: 0 }, data.byStatus);
    for (const [name, value] of Object.entries(counts)) {
      const card = document.createElement("div");
      card.className = "card";
      const number = document.createElement("b");
      number.textContent = value;
      card.append(number, name);
      cards.appendChild(card);
    }
    $("running").replaceChildren(...data.running.map((job) => {
      const row = document.createElement("tr");
      [job.id, job.type, Math.round(job.progress * 100) + "%", job.rowsDone, job.startedAt].forEach((v) => cell(row, v));
      return row;
    }));
    $("failed").replaceChildren(...data.failed.map((job) => {
      const row = document.createElement("tr");
      [job.id, job.type, job.errorMessage, job.attempts, job.finishedAt].forEach((v) => cell(row, v));
      const button = document.createElement("button");
      button.textContent = "Retry";
      button.addEventListener("click", () => retry(job.id));
      cell(row, "").appendChild(button);
      return row;
    }));
    $("overview").hidden = false;
  }

  async function load() {
    const response = await fetch("/api/v1/queue", { headers: headers() });
    const body = await response.json();
    if (!response.ok) {
      $("message").textContent = body.error ? body.error.message : "Could not load the queue";
      $("overview").hidden = true;
      return;
    }
    $("message").textContent = "";
    render(body.data);
  }

  async function retry(jobId) {
    const response = await fetch("/api/v1/jobs/" + jobId + "/retry", { method: "POST", headers: headers() });
    if (!response.ok) $("message").textContent = (await response.json()).error.message;
    await load();
  }

  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("northstar.token", $("token").value.trim());
    load();
  });
  if (sessionStorage.getItem("northstar.token")) load();
  setInterval(() => { if (sessionStorage.getItem("northstar.token")) load(); }, 3000);
})();
