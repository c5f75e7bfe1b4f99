"""The datasets module's route guards, declared once: routes take these as parameters."""

from typing import Annotated

from fastapi import Depends

from northstar.core.console.pages import console_require
from northstar.core.context import require
from northstar.core.permissions import Principal

DataCreate = Annotated[Principal, Depends(require("data", "create"))]
DataRead = Annotated[Principal, Depends(require("data", "read"))]
DataUpdate = Annotated[Principal, Depends(require("data", "update"))]
DataDelete = Annotated[Principal, Depends(require("data", "delete"))]
ExportCreate = Annotated[Principal, Depends(require("exports", "create"))]
QueueRead = Annotated[Principal, Depends(require("queue", "read"))]

# The same gates for the console's pages, the principal from the session cookie.
DataCreatePage = Annotated[Principal, Depends(console_require("data", "create"))]
DataReadPage = Annotated[Principal, Depends(console_require("data", "read"))]
DataUpdatePage = Annotated[Principal, Depends(console_require("data", "update"))]
ExportCreatePage = Annotated[Principal, Depends(console_require("exports", "create"))]
