"""The coach's route guards, declared once: routes take these as parameters.

The coach speaks about customers by name, so it is gated like the metrics' customer-level details (``data``):
investors see what founders share with them, not the coach."""

from typing import Annotated

from fastapi import Depends

from northstar.core.console.pages import console_require
from northstar.core.context import require
from northstar.core.permissions import Principal

CoachRead = Annotated[Principal, Depends(require("data", "read"))]
CoachSettingsRead = Annotated[Principal, Depends(require("settings", "read"))]
CoachSettingsUpdate = Annotated[Principal, Depends(require("settings", "update"))]

# the console's pages, behind exactly the gates of the API routes showing the same texts
CoachReadPage = Annotated[Principal, Depends(console_require("data", "read"))]
CoachSettingsUpdatePage = Annotated[Principal, Depends(console_require("settings", "update"))]
