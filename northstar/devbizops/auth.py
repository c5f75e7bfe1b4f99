"""The DevBizOps route guards, declared once: routes take these as parameters."""

from typing import Annotated

from fastapi import Depends

from northstar.core.context import require
from northstar.core.permissions import Principal

EngineeringRead = Annotated[Principal, Depends(require("engineering", "read"))]
EngineeringUpdate = Annotated[Principal, Depends(require("engineering", "update"))]
EngineeringCreate = Annotated[Principal, Depends(require("engineering", "create"))]
EngineeringDelete = Annotated[Principal, Depends(require("engineering", "delete"))]
