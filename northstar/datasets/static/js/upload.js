// Upload with drag and drop and a progress bar: the file goes to /app/upload with XMLHttpRequest (fetch reports no
// upload progress), carrying the page's CSRF token; the answer redirects to the job's page, which we then open.
const form = document.getElementById("upload-form");
const input = document.getElementById("field-file");
const zone = document.getElementById("drop-zone");
const chosen = document.getElementById("chosen");
const box = document.getElementById("upload-progress");
const bar = document.getElementById("upload-bar");
const problem = document.getElementById("upload-error");
const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";
let dropped = null;

function choose(file) {
  dropped = file;
  chosen.textContent = file ? `Chosen: ${file.name}` : "";
}

input.addEventListener("change", () => choose(input.files[0] ?? null));
for (const name of ["dragenter", "dragover"]) {
  zone.addEventListener(name, (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
}
zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
zone.addEventListener("drop", (event) => {
  event.preventDefault();
  zone.classList.remove("dragging");
  choose(event.dataTransfer?.files?.[0] ?? null);
});

function failed(xhr) {
  const page = new DOMParser().parseFromString(xhr.responseText, "text/html");
  const message = page.querySelector(".form-error, .error-page p, #page-alert")?.textContent?.trim();
  problem.textContent = message || `The upload failed (${xhr.status}).`;
  box.hidden = true;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  problem.textContent = "";
  if (!dropped) {
    problem.textContent = "Choose a file or drop one on the box first.";
    return;
  }
  const body = new FormData();
  body.append("file", dropped, dropped.name);
  const name = form.elements.name.value.trim();
  const xhr = new XMLHttpRequest();
  xhr.open("POST", name ? `/app/upload?name=${encodeURIComponent(name)}` : "/app/upload");
  xhr.setRequestHeader("X-CSRF-Token", csrf);
  xhr.upload.addEventListener("progress", (progress) => {
    if (progress.lengthComputable) {
      bar.value = progress.loaded / progress.total;
      bar.textContent = `${Math.round(bar.value * 100)}%`;
    }
  });
  xhr.addEventListener("load", () => {
    if (xhr.status < 400 && xhr.responseURL.includes("/app/jobs/")) {
      window.location.assign(xhr.responseURL);
    } else {
      failed(xhr);
    }
  });
  xhr.addEventListener("error", () => {
    problem.textContent = "The upload was interrupted; try again.";
    box.hidden = true;
  });
  box.hidden = false;
  xhr.send(body);
});
