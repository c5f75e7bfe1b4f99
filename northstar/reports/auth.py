"""The reports module's route guards, declared once: routes take these as parameters.

The coach speaks about customers by name, so it is gated like the metrics' customer-level details (``data``):
investors see what founders share with them, not the coach. Investors read reports, but only investor updates and
dashboards."""

from typing import Annotated

from fastapi import Depends

from northstar.core.console.pages import console_require
from northstar.core.context import require
from northstar.core.permissions import Principal

CoachRead = Annotated[Principal, Depends(require("data", "read"))]
CoachSettingsRead = Annotated[Principal, Depends(require("settings", "read"))]
CoachSettingsUpdate = Annotated[Principal, Depends(require("settings", "update"))]
ReportsCreate = Annotated[Principal, Depends(require("reports", "create"))]
ReportsRead = Annotated[Principal, Depends(require("reports", "read"))]
ReportsDelete = Annotated[Principal, Depends(require("reports", "delete"))]
SharesCreate = Annotated[Principal, Depends(require("shares", "create"))]
SharesRead = Annotated[Principal, Depends(require("shares", "read"))]
SharesRevoke = Annotated[Principal, Depends(require("shares", "delete"))]
InvestorDashboardsRead = Annotated[Principal, Depends(require("investor_dashboards", "read"))]

# the console's pages, behind exactly the gates of the API routes showing the same texts
CoachReadPage = Annotated[Principal, Depends(console_require("data", "read"))]
CoachSettingsUpdatePage = Annotated[Principal, Depends(console_require("settings", "update"))]
ReportsReadPage = Annotated[Principal, Depends(console_require("reports", "read"))]
ReportsCreatePage = Annotated[Principal, Depends(console_require("reports", "create"))]
ReportsDeletePage = Annotated[Principal, Depends(console_require("reports", "delete"))]
SharesCreatePage = Annotated[Principal, Depends(console_require("shares", "create"))]
SharesRevokePage = Annotated[Principal, Depends(console_require("shares", "delete"))]
InvestorDashboardsReadPage = Annotated[Principal, Depends(console_require("investor_dashboards", "read"))]
