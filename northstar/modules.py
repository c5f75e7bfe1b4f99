"""The installed modules: the platform is core plus the manifests listed here.

``app.py`` mounts their routers, the worker imports their task modules, the migrations read their tables and
``install`` gives their permission resources, export sources and event topics to core. Adding a module is writing
its ``manifest.py`` and adding one line here.
"""

from __future__ import annotations

from northstar.accounts.manifest import MANIFEST as ACCOUNTS
from northstar.alerts.manifest import MANIFEST as ALERTS
from northstar.audit.manifest import MANIFEST as AUDIT
from northstar.core.manifest import Manifest, install
from northstar.core.own_manifest import CORE_MANIFEST
from northstar.datasets.manifest import MANIFEST as DATASETS
from northstar.devbizops.manifest import MANIFEST as DEVBIZOPS
from northstar.graphapi.manifest import MANIFEST as GRAPHAPI
from northstar.integrations.manifest import MANIFEST as INTEGRATIONS
from northstar.metrics.manifest import MANIFEST as METRICS
from northstar.platform.manifest import MANIFEST as PLATFORM
from northstar.privacy.manifest import MANIFEST as PRIVACY
from northstar.reports.manifest import MANIFEST as REPORTS
from northstar.socialproof.manifest import MANIFEST as SOCIALPROOF
from northstar.webhooks.manifest import MANIFEST as WEBHOOKS

MANIFESTS: tuple[Manifest, ...] = (
    CORE_MANIFEST,
    PLATFORM,
    ACCOUNTS,
    AUDIT,
    DATASETS,
    SOCIALPROOF,
    INTEGRATIONS,
    METRICS,
    REPORTS,
    DEVBIZOPS,
    ALERTS,
    PRIVACY,
    WEBHOOKS,
    GRAPHAPI,
)
install(MANIFESTS)  # roles, export sources and event topics are known wherever the platform is loaded
