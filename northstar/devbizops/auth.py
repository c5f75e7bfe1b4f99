"""The DevBizOps route guards, declared once: routes take these as parameters."""

from typing import Annotated

from fastapi import Depends

from northstar.core.console.pages import console_require
from northstar.core.context import require
from northstar.core.permissions import Principal

EngineeringRead = Annotated[Principal, Depends(require("engineering", "read"))]
EngineeringUpdate = Annotated[Principal, Depends(require("engineering", "update"))]
EngineeringCreate = Annotated[Principal, Depends(require("engineering", "create"))]
EngineeringDelete = Annotated[Principal, Depends(require("engineering", "delete"))]

ProposalsCreate = Annotated[Principal, Depends(require("proposals", "create"))]
ProposalsRead = Annotated[Principal, Depends(require("proposals", "read"))]
ProposalsDecide = Annotated[Principal, Depends(require("proposals", "update"))]

InvestorDashboardsCreate = Annotated[Principal, Depends(require("investor_dashboards", "create"))]

# The console's pages pass the same gates as the API routes showing the same things.
EngineeringReadPage = Annotated[Principal, Depends(console_require("engineering", "read"))]
ProposalsReadPage = Annotated[Principal, Depends(console_require("proposals", "read"))]
ProposalsCreatePage = Annotated[Principal, Depends(console_require("proposals", "create"))]
ProposalsDecidePage = Annotated[Principal, Depends(console_require("proposals", "update"))]
InvestorDashboardsCreatePage = Annotated[Principal, Depends(console_require("investor_dashboards", "create"))]
