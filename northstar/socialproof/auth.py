"""The socialproof module's route guards, declared once: routes take these as parameters."""

from typing import Annotated

from fastapi import Depends

from northstar.core.console.pages import console_require
from northstar.core.context import require
from northstar.core.permissions import Principal

SitesRead = Annotated[Principal, Depends(require("sites", "read"))]
SitesCreate = Annotated[Principal, Depends(require("sites", "create"))]
SitesUpdate = Annotated[Principal, Depends(require("sites", "update"))]
SitesDelete = Annotated[Principal, Depends(require("sites", "delete"))]
EventsCreate = Annotated[Principal, Depends(require("events", "create"))]

# The console's pages pass the same gates, with the principal of the session cookie.
SitesReadPage = Annotated[Principal, Depends(console_require("sites", "read"))]
SitesCreatePage = Annotated[Principal, Depends(console_require("sites", "create"))]
SitesUpdatePage = Annotated[Principal, Depends(console_require("sites", "update"))]

ArchivesRead = Annotated[Principal, Depends(require("archives", "read"))]
ArchivesRestore = Annotated[Principal, Depends(require("archives", "create"))]
ArchivesReadPage = Annotated[Principal, Depends(console_require("archives", "read"))]
ArchivesRestorePage = Annotated[Principal, Depends(console_require("archives", "create"))]
BillingRead = Annotated[Principal, Depends(require("billing", "read"))]
BillingUpdate = Annotated[Principal, Depends(require("billing", "update"))]
BillingReadPage = Annotated[Principal, Depends(console_require("billing", "read"))]
BillingUpdatePage = Annotated[Principal, Depends(console_require("billing", "update"))]

VisitorsRead = Annotated[Principal, Depends(require("visitors", "read"))]
VisitorsDelete = Annotated[Principal, Depends(require("visitors", "delete"))]
CustomFieldsRead = Annotated[Principal, Depends(require("custom_fields", "read"))]
CustomFieldsCreate = Annotated[Principal, Depends(require("custom_fields", "create"))]
CustomFieldsUpdate = Annotated[Principal, Depends(require("custom_fields", "update"))]
CustomFieldsDelete = Annotated[Principal, Depends(require("custom_fields", "delete"))]
VisitorsReadPage = Annotated[Principal, Depends(console_require("visitors", "read"))]
VisitorsDeletePage = Annotated[Principal, Depends(console_require("visitors", "delete"))]
CustomFieldsReadPage = Annotated[Principal, Depends(console_require("custom_fields", "read"))]
CustomFieldsCreatePage = Annotated[Principal, Depends(console_require("custom_fields", "create"))]
CustomFieldsUpdatePage = Annotated[Principal, Depends(console_require("custom_fields", "update"))]
CustomFieldsDeletePage = Annotated[Principal, Depends(console_require("custom_fields", "delete"))]
