// The notification editor's preview: the platform's own widget (loaded with data-preview) draws the draft's feed,
// which the server renders into <script type="application/json" id="preview-feed"> on load and on every change.
const stage = document.getElementById("notification-preview");

function draw() {
  const data = document.getElementById("preview-feed");
  if (!stage || typeof window.northstarPreview !== "function") return;
  if (!data) {
    stage.textContent = "";
    return;
  }
  window.northstarPreview(stage, JSON.parse(data.textContent));
}

document.body.addEventListener("htmx:afterSwap", (event) => {
  if (event.detail.target.id === "preview-data") draw();
});
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
else draw();
