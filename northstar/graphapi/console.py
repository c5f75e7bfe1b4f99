"""The console's GraphiQL page (``/app/graphql``): the vendored GraphiQL, run against ``POST /app/graphql``, which
executes the same schema with the console session's principal (CSRF-checked like every console change)."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.responses import Response

from northstar.core.console.pages import ConsolePrincipal, console_router, render
from northstar.core.context import DbSession
from northstar.graphapi.execution import answer

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

router = console_router()

EXAMPLE = """# Sites with their notifications: one query for the sites, one for all their notifications.
query SitesWithNotifications {
  sites(limit: 10) {
    total
    items {
      name
      domain
      notifications(first: 5) { name type status }
    }
  }
}
"""


@router.get("/graphql", name="console.graphql")
async def graphiql_page(request: Request, principal: ConsolePrincipal) -> Response:
    response = render(request, "graphapi/graphiql.html", {"title": "GraphQL", "example": EXAMPLE})
    # GraphiQL's stylesheet embeds its fonts as data: URLs; this page alone lets fonts come from there too
    policy = response.headers["content-security-policy"]
    response.headers["content-security-policy"] = policy.replace("font-src 'self'", "font-src 'self' data:")
    return response


@router.post("/graphql", name="console.graphql_execute", response_class=Response)
async def graphiql_execute(request: Request, principal: ConsolePrincipal, session: DbSession) -> Response:
    return await answer(request, session, principal)
