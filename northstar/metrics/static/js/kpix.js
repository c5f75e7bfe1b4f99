// The explain drawer: a number's explanation arrives by htmx into #explain-body; the dialog then opens with focus on
// its heading, closes with Escape (native) or its Close button, and gives focus back to the number.
const drawer = document.getElementById("explain-drawer");
let opener = null;

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-explain]");
  if (button) opener = button;
  if (drawer && event.target.closest("[data-close-drawer]")) drawer.close();
});

document.body.addEventListener("htmx:afterSwap", (event) => {
  if (!drawer || event.detail.target.id !== "explain-body") return;
  if (!drawer.open) drawer.showModal();
  document.getElementById("explain-title")?.focus();
});

drawer?.addEventListener("close", () => {
  opener?.focus();
  opener = null;
});
