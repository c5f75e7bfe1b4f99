"""The audit module's route guards, declared once: routes take these as parameters."""

from typing import Annotated

from fastapi import Depends

from northstar.core.console.pages import console_require
from northstar.core.context import require
from northstar.core.permissions import Principal

AuditRead = Annotated[Principal, Depends(require("audit", "read"))]
AuditReadPage = Annotated[Principal, Depends(console_require("audit", "read"))]
