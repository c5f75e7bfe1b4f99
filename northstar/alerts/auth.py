"""The alerts module's route guards, declared once: routes take these as parameters.

Rules and the delivery log are ``alerts``; shared Slack channels, whose secrets admins hold, are ``alert_channels``.
Preferences and the inbox belong to whoever is signed in, in any role: they need a member, not an API key.
"""

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from northstar.core.console.pages import console_require
from northstar.core.context import CurrentPrincipal, require
from northstar.core.http import Forbidden
from northstar.core.permissions import Principal

RulesRead = Annotated[Principal, Depends(require("alerts", "read"))]
RulesCreate = Annotated[Principal, Depends(require("alerts", "create"))]
RulesUpdate = Annotated[Principal, Depends(require("alerts", "update"))]
RulesDelete = Annotated[Principal, Depends(require("alerts", "delete"))]

ChannelsRead = Annotated[Principal, Depends(require("alert_channels", "read"))]
ChannelsCreate = Annotated[Principal, Depends(require("alert_channels", "create"))]
ChannelsUpdate = Annotated[Principal, Depends(require("alert_channels", "update"))]
ChannelsDelete = Annotated[Principal, Depends(require("alert_channels", "delete"))]


@dataclass(frozen=True)
class SignedIn:
    """A member acting on what is theirs alone (their preferences, their inbox)."""

    org_id: uuid.UUID
    user_id: uuid.UUID


async def signed_in_member(principal: CurrentPrincipal) -> SignedIn:
    """The caller, when it is a member (an API key has no inbox and no preferences)."""
    if principal.user_id is None:
        raise Forbidden("An API key has no inbox or preferences: sign in as the member", code="member_required")
    return SignedIn(org_id=principal.org_id, user_id=principal.user_id)


Member = Annotated[SignedIn, Depends(signed_in_member)]

# the console's pages, behind the gates of the API routes doing the same
RulesReadPage = Annotated[Principal, Depends(console_require("alerts", "read"))]
RulesCreatePage = Annotated[Principal, Depends(console_require("alerts", "create"))]
RulesUpdatePage = Annotated[Principal, Depends(console_require("alerts", "update"))]
RulesDeletePage = Annotated[Principal, Depends(console_require("alerts", "delete"))]
