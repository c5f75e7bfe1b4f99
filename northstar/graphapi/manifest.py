"""The GraphQL API: ``/graphql`` for clients, GraphiQL in the console. It owns no table and no permission resource:
every field passes the gate of the REST route doing the same thing."""

from __future__ import annotations

from northstar.core.manifest import Manifest, NavLink
from northstar.graphapi import console, endpoint

MANIFEST = Manifest(
    name="graphapi",
    routers=(endpoint.router,),
    console_pages=(console.router,),
    console_templates=console.TEMPLATES,
    console_static=console.STATIC,
    console_nav=(NavLink("GraphQL", "/app/graphql"),),
)
