"""The webhooks module's route guards, declared once: routes take these as parameters.

Endpoints hold signing secrets: founders and admins manage them and replay deliveries; members and analysts see
endpoints and the delivery log.
"""

from typing import Annotated

from fastapi import Depends

from northstar.core.console.pages import console_require
from northstar.core.context import require
from northstar.core.permissions import Principal

WebhooksRead = Annotated[Principal, Depends(require("webhooks", "read"))]
WebhooksCreate = Annotated[Principal, Depends(require("webhooks", "create"))]
WebhooksUpdate = Annotated[Principal, Depends(require("webhooks", "update"))]
WebhooksDelete = Annotated[Principal, Depends(require("webhooks", "delete"))]

# the console's pages, behind the gates of the API routes doing the same
WebhooksReadPage = Annotated[Principal, Depends(console_require("webhooks", "read"))]
WebhooksCreatePage = Annotated[Principal, Depends(console_require("webhooks", "create"))]
WebhooksUpdatePage = Annotated[Principal, Depends(console_require("webhooks", "update"))]
