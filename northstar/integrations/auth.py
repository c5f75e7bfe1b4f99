"""The integrations module's route guards, declared once: routes take these as parameters."""

from typing import Annotated

from fastapi import Depends

from northstar.core.console.pages import console_require
from northstar.core.context import require
from northstar.core.permissions import Principal

IntegrationsRead = Annotated[Principal, Depends(require("integrations", "read"))]
IntegrationsCreate = Annotated[Principal, Depends(require("integrations", "create"))]
IntegrationsUpdate = Annotated[Principal, Depends(require("integrations", "update"))]
IntegrationsDelete = Annotated[Principal, Depends(require("integrations", "delete"))]

# The console's pages pass the same gates as the API routes doing the same thing.
IntegrationsReadPage = Annotated[Principal, Depends(console_require("integrations", "read"))]
IntegrationsCreatePage = Annotated[Principal, Depends(console_require("integrations", "create"))]
IntegrationsUpdatePage = Annotated[Principal, Depends(console_require("integrations", "update"))]
IntegrationsDeletePage = Annotated[Principal, Depends(console_require("integrations", "delete"))]
