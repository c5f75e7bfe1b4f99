"""Core's own manifest: the platform's resources, its tables, and search (the API, the console's pages and the
reindex job), declared like any module's so the platform is the list of installed manifests."""

from __future__ import annotations

from northstar.core import idempotency, llm
from northstar.core.console import search as search_console
from northstar.core.manifest import Manifest
from northstar.core.permissions import PLATFORM_RESOURCES
from northstar.core.search import api as search_api

CORE_MANIFEST = Manifest(
    name="core",
    api_routers=(search_api.router,),
    console_pages=(search_console.router,),  # its templates and script are the console's own
    task_modules=("northstar.core.idempotency", "northstar.core.queue", "northstar.core.search.tasks"),
    model_modules=(idempotency, llm),
    tables=("core.idempotency_keys", "core.llm_usage"),
    sql_managed_tables=("search_documents", "search_words", "search_settings"),
    schemas=("core",),
    resources=PLATFORM_RESOURCES,
)
