// GraphiQL on the console's own endpoint: the session cookie authenticates, the page's CSRF token goes in the header.
(function () {
  "use strict";
  const frame = document.getElementById("graphiql");
  const state = document.getElementById("graphiql-state");
  const csrf = document.querySelector('meta[name="csrf-token"]').content;

  async function fetcher(params) {
    const response = await fetch(frame.dataset.endpoint, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", accept: "application/json", "x-csrf-token": csrf },
      body: JSON.stringify(params),
    });
    const type = response.headers.get("content-type") || "";
    if (!type.startsWith("application/json")) {
      // the session ended: the console answered with its sign-in page
      return { errors: [{ message: "Your session has ended: reload the page to sign in again.", extensions: { code: "unauthorized" } }] };
    }
    return response.json();
  }

  // CodeMirror's hidden text areas get names, and its scrolling panes can be reached from the keyboard (axe).
  const names = [
    [".graphiql-query-editor textarea", "Query editor"],
    [".graphiql-editor-tool textarea", "Variables editor"],
    [".result-window textarea", "Result"],
  ];
  function label() {
    for (const [selector, name] of names) {
      for (const area of frame.querySelectorAll(selector)) {
        if (!area.hasAttribute("aria-label")) area.setAttribute("aria-label", name);
      }
    }
    for (const pane of frame.querySelectorAll(".CodeMirror-scroll")) {
      if (pane.getAttribute("tabindex") !== "0") pane.setAttribute("tabindex", "0"); // CodeMirror sets -1
    }
  }
  new MutationObserver(label).observe(frame, { childList: true, subtree: true });

  const root = ReactDOM.createRoot(frame);
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: frame.dataset.example,
      shouldPersistHeaders: false,
      isHeadersEditorEnabled: false,
    }),
  );
  state.textContent = "GraphiQL is ready.";
})();
