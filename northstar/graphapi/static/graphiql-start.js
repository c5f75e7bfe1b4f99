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
