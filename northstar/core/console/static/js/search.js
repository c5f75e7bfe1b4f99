// The header's search box: suggestions as you type in a listbox popup, following the ARIA combobox pattern (the
// focus stays in the box; aria-activedescendant names the option the arrow keys have reached), and "/" to reach it
// from anywhere on a page. The popup is HTML the server renders from the search service (/app/search/suggest):
// the API wants a bearer token, the console has a session cookie. Without this script the box is a plain form that
// opens the results page.
const DEBOUNCE_MS = 150;

const box = document.querySelector("form[data-search-box]");
const input = box?.querySelector('input[role="combobox"]');

if (box && input) {
  const popup = box.querySelector(".search-popup");
  const status = box.querySelector("[data-search-status]");
  let options = [];
  let active = -1;
  let pending = null; // the AbortController of the request in flight: a newer keystroke cancels it
  let timer = 0;

  const activate = (index) => {
    options[active]?.setAttribute("aria-selected", "false");
    active = index;
    const option = options[active];
    if (option) {
      option.setAttribute("aria-selected", "true");
      input.setAttribute("aria-activedescendant", option.id);
      option.scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  };

  const open = () => {
    popup.hidden = false;
    input.setAttribute("aria-expanded", String(options.length > 0));
  };

  const close = () => {
    activate(-1);
    popup.hidden = true;
    input.setAttribute("aria-expanded", "false");
  };

  const clear = () => {
    pending?.abort();
    close();
    popup.replaceChildren();
    options = [];
    status.textContent = "";
  };

  // Only pages of this console are followed, whatever a document's URL says.
  const go = (option) => {
    const target = new URL(option.dataset.url, window.location.origin);
    if (target.origin === window.location.origin) window.location.assign(target);
  };

  const suggest = async (query) => {
    const controller = new AbortController();
    pending = controller;
    try {
      const answer = await fetch(`${input.dataset.suggest}?q=${encodeURIComponent(query)}`, {
        headers: { Accept: "text/html" },
        signal: controller.signal,
      });
      // A session that could not be renewed ends on the login page, not on the suggestions.
      if (!answer.ok || new URL(answer.url).pathname !== input.dataset.suggest) {
        clear();
        status.textContent = answer.ok ? "Your session has ended: reload the page to sign in." : "Search failed.";
        return;
      }
      const html = await answer.text();
      activate(-1);
      popup.innerHTML = html; // rendered by the console's autoescaping templates, from this origin
      options = [...popup.querySelectorAll('[role="option"]')];
      status.textContent = popup.querySelector('[role="listbox"]')?.dataset.status ?? "";
      if (document.activeElement === input) open();
    } catch (error) {
      if (error.name !== "AbortError") status.textContent = "Search is unavailable for a moment.";
    } finally {
      if (pending === controller) pending = null;
    }
  };

  input.addEventListener("input", () => {
    clearTimeout(timer);
    pending?.abort();
    if (!input.value.trim()) {
      clear();
      return;
    }
    const query = input.value;
    timer = setTimeout(() => suggest(query), DEBOUNCE_MS);
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (!options.length) return;
      event.preventDefault();
      open();
      const step = event.key === "ArrowDown" ? 1 : -1;
      activate(active < 0 ? (step > 0 ? 0 : options.length - 1) : (active + step + options.length) % options.length);
    } else if (event.key === "Enter" && !popup.hidden && options[active]) {
      event.preventDefault(); // without an active option, Enter submits: the results page
      go(options[active]);
    } else if (event.key === "Escape" && !popup.hidden) {
      event.preventDefault(); // the first Escape closes the popup; the next one is the browser's (it clears)
      close();
    }
  });

  // Back in the box: the last answer again (it has its "See all results" link once one has come).
  input.addEventListener("focus", () => {
    if (input.value.trim() && popup.querySelector(".search-all")) open();
  });

  // A page kept for the Back button comes back with its popup closed.
  window.addEventListener("pagehide", close);

  // The popup stays open while the focus is in the box (the "See all results" link), and closes when it leaves.
  box.addEventListener("focusout", (event) => {
    if (!box.contains(event.relatedTarget)) close();
  });

  // A pressed option must not take the focus from the box before its click is read.
  popup.addEventListener("mousedown", (event) => {
    if (event.target.closest('[role="option"]')) event.preventDefault();
  });
  popup.addEventListener("click", (event) => {
    const option = event.target.closest('[role="option"]');
    if (option) go(option);
  });

  document.addEventListener("keydown", (event) => {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    const target = event.target;
    if (target instanceof HTMLElement && (target.closest("input, textarea, select") || target.isContentEditable)) {
      return; // typing a slash
    }
    event.preventDefault();
    input.focus();
    input.select();
  });
}
