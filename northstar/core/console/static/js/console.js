// The console's page behaviour: CSRF on htmx requests, the org switcher, copy buttons, focus after swaps.
const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";

document.body.addEventListener("htmx:configRequest", (event) => {
  event.detail.headers["X-CSRF-Token"] = csrf;
});

// The org switcher submits on change; its button stays for keyboards and browsers without scripts.
for (const form of document.querySelectorAll("form[data-autosubmit]")) {
  form.querySelector("select")?.addEventListener("change", () => form.requestSubmit());
}

// <button data-copy="#id"> copies the text of #id (an embed snippet, a new API key) and says so.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  const label = button.textContent;
  try {
    await navigator.clipboard.writeText(source.value ?? source.textContent);
    button.textContent = "Copied";
  } catch {
    button.textContent = "Select and copy";
  }
  setTimeout(() => { button.textContent = label; }, 2000);
});

// An error swapped into the page alert gets focus, so keyboard and screen-reader users hear it.
document.body.addEventListener("htmx:afterSwap", (event) => {
  if (event.detail.target.id === "page-alert" && event.detail.target.textContent.trim()) {
    event.detail.target.setAttribute("tabindex", "-1");
    event.detail.target.focus();
  }
});

// Counts beside navigation links (<span data-badge="/app/…/count" data-badge-topics="a,b">): fetched on load, and
// again whenever an event of their topics reaches the page; one event stream serves every badge of the page.
const badges = [...document.querySelectorAll("[data-badge]")];
async function refresh(badge) {
  try {
    const answer = await fetch(badge.dataset.badge, { headers: { Accept: "application/json" } });
    if (!answer.ok) return;
    const { count } = await answer.json();
    const words = document.createElement("span");
    words.className = "visually-hidden";
    words.textContent = " unread";
    badge.replaceChildren(String(count), words);
    badge.hidden = count === 0;
  } catch {
    // offline for a moment: the next event or page load counts again
  }
}
if (badges.length) {
  badges.forEach(refresh);
  const topics = [...new Set(badges.flatMap((badge) => badge.dataset.badgeTopics.split(",").filter(Boolean)))];
  if (topics.length) {
    const source = new EventSource(`/app/events?topics=${encodeURIComponent(topics.join(","))}`);
    for (const topic of topics) {
      source.addEventListener(topic, () => {
        badges.filter((badge) => badge.dataset.badgeTopics.split(",").includes(topic)).forEach(refresh);
      });
    }
  }
}
