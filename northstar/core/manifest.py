"""What a module declares about itself, once: the platform is the list of installed manifests.

A manifest (Netflix Dispatch's plugin registry, as one typed value) holds everything the platform needs to know
about a module: its routers, console pages, queue tasks and their schedules, tables and database schemas,
permission resources, export sources, event topics, reactions to other modules' signals, audit targets and
settings section. The composition root (``northstar/modules.py``) lists the installed manifests; ``app.py``, the
worker and the migrations read that list, and ``install`` hands each mechanism of core its share. Core itself names
no module.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.fastpath import FastRoute
from northstar.core.permissions import Resource, register_resources
from northstar.core.pubsub import register_topics
from northstar.core.queue import register_reactions
from northstar.core.search.documents import SearchSource, register_sources
from northstar.settings import Settings

API_PREFIX = "/api/v1"  # where every manifest's ``api_routers`` are mounted


@dataclass(frozen=True)
class ExportTable:
    """A platform table the data service can export: its columns (name -> type in the dataset column vocabulary:
    ``uuid``, ``string``, ``int``, ``float``, ``date``, ``datetime``, ``json``...), the column rows are ordered by,
    and the resource a caller must be allowed to read to export it."""

    table: tuple[str, str]
    columns: Mapping[str, str]
    order_by: str
    resource: str


@dataclass(frozen=True)
class NavLink:
    """An entry of the console's navigation, shown to roles that may ``action`` the ``resource``."""

    label: str
    path: str  # under /app
    resource: str | None = None
    action: str = "read"
    # A count beside the link (unread messages, say): the console URL answering ``{"count": n}``, fetched again
    # whenever an event of one of ``badge_topics`` (comma-separated) reaches the page on ``/app/events``.
    badge: str | None = None
    badge_topics: str = ""


@dataclass(frozen=True)
class SettingsSection:
    """The module's part of the configuration: ``Settings.<field>``, read from ``NORTHSTAR_<FIELD>__*``."""

    field: str
    model: type[BaseModel]


@dataclass(frozen=True)
class Manifest:
    """One module, as the platform sees it."""

    name: str
    api_routers: tuple[APIRouter, ...] = ()  # mounted under /api/v1
    routers: tuple[APIRouter, ...] = ()  # mounted at the root: pages, public widget routes, health, events
    console_pages: tuple[APIRouter, ...] = ()  # mounted under /app
    console_templates: Path | None = None  # its pages' templates, named "<module name>/<file>"
    console_static: Path | None = None  # its pages' scripts and styles, served at /app/static/<module name>/
    console_nav: tuple[NavLink, ...] = ()  # its entries in the console's navigation
    # The organization's time zone, in which the console shows times (one module at most declares it).
    org_time_zone: Callable[[AsyncSession, uuid.UUID], Awaitable[str]] | None = None
    task_modules: tuple[str, ...] = ()  # importing each registers the module's queue tasks and their schedules
    # Signals other modules announce (``core.queue.announce``) -> the tasks of this module queued when they do.
    reactions: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    model_modules: tuple[ModuleType, ...] = ()  # the modules that define its SQLAlchemy tables
    tables: tuple[str, ...] = ()  # the tables it owns ("schema.table"): its migrations create them
    schemas: tuple[str, ...] = ()  # the database schemas its tables live in
    sql_managed_tables: tuple[str, ...] = ()  # name parts of tables it keeps with SQL, outside the metadata
    resources: tuple[Resource, ...] = ()  # permission resources and each role's grants
    export_sources: Mapping[str, ExportTable] = field(default_factory=lambda: MappingProxyType({}))
    event_topics: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # prefix -> resource
    audit_targets: tuple[str, ...] = ()  # the target types its audit entries name
    settings: SettingsSection | None = None
    # Requests answered ahead of FastAPI (hot public paths), and how the OpenAPI document describes them.
    fast_routes: tuple[FastRoute, ...] = ()
    document: Callable[[dict[str, Any]], None] | None = None
    # What of its rows one search finds (core/search): each source's rows become documents in the same transaction.
    search_sources: tuple[SearchSource, ...] = ()
    # Paths that take more than the default request body (uploads), with their limit.
    body_limits: Callable[[Settings], Mapping[str, int]] | None = None
    # What the module keeps on ``app.state`` while the app runs (opened after core's database, Redis and events).
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None


# Exportable platform tables by source name, from the installed manifests (the data service reads it).
EXPORT_SOURCES: dict[str, ExportTable] = {}


def install(manifests: Iterable[Manifest]) -> None:
    """Hand core's mechanisms what the manifests declare: role grants, export sources, event topics, reactions to
    signals, and queue tasks (registered as their modules are imported). Installing a manifest again changes
    nothing."""
    for manifest in manifests:
        register_resources(manifest.resources)
        register_topics(manifest.event_topics)
        register_reactions(manifest.reactions)
        register_sources(manifest.search_sources)
        for name, source in manifest.export_sources.items():
            if EXPORT_SOURCES.setdefault(name, source) != source:
                raise ValueError(f"the export source {name!r} is declared twice, differently")
        for module in manifest.task_modules:
            importlib.import_module(module)
