"""The privacy module's route guards, declared once: routes take these as parameters.

``privacy`` (founders and admins) covers visitors' requests, consent logs and settings; ``privacy_self`` lets every
signed-in user ask for their own account's export or erasure.
"""

from typing import Annotated

from fastapi import Depends

from northstar.core.console.pages import console_require
from northstar.core.context import require
from northstar.core.permissions import Principal

PrivacyRead = Annotated[Principal, Depends(require("privacy", "read"))]
PrivacyCreate = Annotated[Principal, Depends(require("privacy", "create"))]
PrivacyUpdate = Annotated[Principal, Depends(require("privacy", "update"))]
OwnDataRead = Annotated[Principal, Depends(require("privacy_self", "read"))]
OwnDataRequest = Annotated[Principal, Depends(require("privacy_self", "create"))]
PrivacyPage = Annotated[Principal, Depends(console_require("privacy", "read"))]
PrivacyPageCreate = Annotated[Principal, Depends(console_require("privacy", "create"))]
