// The live event feed: the site's socialproof.events from the console's stream, newest first, as text only.
const list = document.getElementById("live-events");
const state = document.getElementById("live-state");
const KEEP = 200;

function describe(event) {
  const what = event.type === "custom" && event.name ? event.name : event.type.replace("_", " ");
  const where = [event.city, event.country].filter(Boolean).join(", ");
  const time = new Date(event.occurredAt).toLocaleTimeString();
  return [time, what, event.product, where, event.page].filter(Boolean).join(" · ");
}

if (list) {
  const source = new EventSource(list.dataset.stream);
  source.addEventListener("ready", () => { state.textContent = "Listening for new events."; });
  source.addEventListener("reset", () => { state.textContent = "Some events were missed while disconnected."; });
  source.addEventListener("socialproof.events", (message) => {
    const summary = JSON.parse(message.data);
    for (const event of [...summary.events].reverse()) {
      const item = document.createElement("li");
      item.textContent = describe(event);
      item.dataset.type = event.type;
      list.prepend(item);
    }
    while (list.children.length > KEEP) list.lastElementChild.remove();
  });
  source.addEventListener("error", () => { state.textContent = "Reconnecting…"; });
}
