"""The accounts module's route guards, declared once: routes take these as parameters."""

from typing import Annotated

from fastapi import Depends

from northstar.core.context import require
from northstar.core.permissions import Principal

KeysRead = Annotated[Principal, Depends(require("api_keys", "read"))]
KeysCreate = Annotated[Principal, Depends(require("api_keys", "create"))]
KeysDelete = Annotated[Principal, Depends(require("api_keys", "delete"))]
OrgRead = Annotated[Principal, Depends(require("organization", "read"))]
OrgUpdate = Annotated[Principal, Depends(require("organization", "update"))]
MembersRead = Annotated[Principal, Depends(require("members", "read"))]
MembersUpdate = Annotated[Principal, Depends(require("members", "update"))]
MembersDelete = Annotated[Principal, Depends(require("members", "delete"))]
InvitationsRead = Annotated[Principal, Depends(require("invitations", "read"))]
InvitationsCreate = Annotated[Principal, Depends(require("invitations", "create"))]
InvitationsDelete = Annotated[Principal, Depends(require("invitations", "delete"))]
ProjectsRead = Annotated[Principal, Depends(require("projects", "read", scope="project"))]
ProjectsCreate = Annotated[Principal, Depends(require("projects", "create"))]
ProjectsUpdate = Annotated[Principal, Depends(require("projects", "update", scope="project"))]
ProjectsDelete = Annotated[Principal, Depends(require("projects", "delete", scope="project"))]
ProjectMembersUpdate = Annotated[Principal, Depends(require("members", "update", scope="project"))]
TeamsRead = Annotated[Principal, Depends(require("teams", "read", scope="team"))]
TeamsCreate = Annotated[Principal, Depends(require("teams", "create"))]
TeamsUpdate = Annotated[Principal, Depends(require("teams", "update", scope="team"))]
TeamsDelete = Annotated[Principal, Depends(require("teams", "delete", scope="team"))]
