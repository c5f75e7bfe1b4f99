"""The socialproof module's route guards, declared once: routes take these as parameters."""

from typing import Annotated

from fastapi import Depends

from northstar.core.context import require
from northstar.core.permissions import Principal

SitesRead = Annotated[Principal, Depends(require("sites", "read"))]
SitesCreate = Annotated[Principal, Depends(require("sites", "create"))]
SitesUpdate = Annotated[Principal, Depends(require("sites", "update"))]
SitesDelete = Annotated[Principal, Depends(require("sites", "delete"))]
EventsCreate = Annotated[Principal, Depends(require("events", "create"))]
