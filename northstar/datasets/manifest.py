"""The data service (seed 003): generation, upload, export and status of data jobs, and the queue page."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from northstar.core.console.pages import CONSOLE_PREFIX
from northstar.core.manifest import API_PREFIX, ExportTable, Manifest, NavLink, SettingsSection
from northstar.core.permissions import Resource, allow, own
from northstar.datasets import api, console, models, queue_page, search
from northstar.settings import DatasetsSettings, Settings


def _upload_limit(settings: Settings) -> Mapping[str, int]:
    return {path: settings.datasets.max_upload_bytes for path in (f"{API_PREFIX}/upload", f"{CONSOLE_PREFIX}/upload")}


MANIFEST = Manifest(
    name="datasets",
    api_routers=(api.router,),
    routers=(queue_page.router,),
    console_pages=(console.router,),
    console_templates=console.TEMPLATES,
    console_static=console.STATIC,
    console_nav=(
        NavLink("Jobs", "/app/jobs", "data", "read"),
        NavLink("Generate", "/app/generate", "data", "create"),
        NavLink("Upload", "/app/upload", "data", "create"),
        NavLink("Datasets", "/app/datasets", "data", "read"),
        NavLink("Export", "/app/export", "exports", "create"),
    ),
    task_modules=("northstar.datasets.tasks",),
    model_modules=(models,),
    tables=("jobs.datasets", "jobs.files", "jobs.jobs"),
    schemas=("jobs",),
    resources=(
        Resource("data", member=(allow("create", "read"), own("update", "delete")), analyst=(allow("read"),)),
        Resource("exports", member=(allow("read", "create"),), analyst=(allow("create", "read"),)),
        Resource("queue"),
    ),
    export_sources=MappingProxyType(
        {
            "jobs": ExportTable(
                table=("jobs", "jobs"),
                columns={
                    "id": "uuid",
                    "type": "string",
                    "status": "string",
                    "progress": "float",
                    "rows_done": "int",
                    "rows_total": "int",
                    "error_code": "string",
                    "error_message": "string",
                    "attempts": "int",
                    "created_at": "datetime",
                    "updated_at": "datetime",
                    "started_at": "datetime",
                    "finished_at": "datetime",
                },
                order_by="created_at",
                resource="data",
            )
        }
    ),
    event_topics=MappingProxyType({"job.": "data"}),
    audit_targets=("dataset", "file", "job"),
    search_sources=search.SOURCES,
    settings=SettingsSection("datasets", DatasetsSettings),
    body_limits=_upload_limit,
)
