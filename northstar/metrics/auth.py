"""The metrics module's route guards, declared once: routes take these as parameters."""

from typing import Annotated

from fastapi import Depends

from northstar.core.console.pages import console_require
from northstar.core.context import require
from northstar.core.permissions import Principal

DashboardRead = Annotated[Principal, Depends(require("dashboards", "read"))]
GoalsCreate = Annotated[Principal, Depends(require("dashboards", "create"))]
GoalsUpdate = Annotated[Principal, Depends(require("dashboards", "update"))]
GoalsDelete = Annotated[Principal, Depends(require("dashboards", "delete"))]
MetricDetailsRead = Annotated[Principal, Depends(require("data", "read"))]
SettingsRead = Annotated[Principal, Depends(require("settings", "read"))]
SettingsUpdate = Annotated[Principal, Depends(require("settings", "update"))]
KpiExportCreate = Annotated[Principal, Depends(require("exports", "create"))]

# the console's pages, behind exactly the gates of the API routes showing the same numbers
DashboardReadPage = Annotated[Principal, Depends(console_require("dashboards", "read"))]
MetricDetailsReadPage = Annotated[Principal, Depends(console_require("data", "read"))]
KpiExportCreatePage = Annotated[Principal, Depends(console_require("exports", "create"))]
GoalsCreatePage = Annotated[Principal, Depends(console_require("dashboards", "create"))]
GoalsUpdatePage = Annotated[Principal, Depends(console_require("dashboards", "update"))]
GoalsDeletePage = Annotated[Principal, Depends(console_require("dashboards", "delete"))]
SettingsReadPage = Annotated[Principal, Depends(console_require("settings", "read"))]
SettingsUpdatePage = Annotated[Principal, Depends(console_require("settings", "update"))]
