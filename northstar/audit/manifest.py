"""Audit: the tamper-evident trail of every state-changing request, readable and exportable by admins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import MappingProxyType

from fastapi import FastAPI

from northstar.audit import api, console, models, service
from northstar.core.manifest import ExportTable, Manifest, NavLink
from northstar.core.permissions import Resource


@asynccontextmanager
async def _recorder(app: FastAPI) -> AsyncIterator[None]:
    """Every state-changing request is recorded by this module."""
    app.state.audit_recorder = service.record_request
    yield


MANIFEST = Manifest(
    name="audit",
    api_routers=(api.router,),
    console_pages=(console.router,),
    console_templates=console.TEMPLATES,
    console_nav=(NavLink("Audit log", "/app/audit", "audit", "read"),),
    model_modules=(models,),
    tables=("core.audit_chain_heads", "core.audit_checkpoints", "core.audit_events"),
    schemas=("core",),
    resources=(Resource("audit"),),
    export_sources=MappingProxyType(
        {
            "audit": ExportTable(
                table=("core", "audit_events"),
                columns={
                    "id": "uuid",
                    "seq": "int",
                    "occurred_at": "datetime",
                    "actor_type": "string",
                    "actor_id": "uuid",
                    "action": "string",
                    "target_type": "string",
                    "target_id": "string",
                    "ip": "string",
                    "user_agent": "string",
                    "request_id": "string",
                    "details": "json",
                    "hash": "string",
                },
                order_by="seq",
                resource="audit",
            )
        }
    ),
    lifespan=_recorder,
)
