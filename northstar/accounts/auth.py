"""The accounts module's route guards, declared once: routes take these as parameters."""

from typing import Annotated

from fastapi import Depends

from northstar.core.console.pages import console_require
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

# The console's pages pass the same gates as the API routes doing the same thing.
KeysReadPage = Annotated[Principal, Depends(console_require("api_keys", "read"))]
KeysCreatePage = Annotated[Principal, Depends(console_require("api_keys", "create"))]
KeysDeletePage = Annotated[Principal, Depends(console_require("api_keys", "delete"))]
OrgReadPage = Annotated[Principal, Depends(console_require("organization", "read"))]
OrgUpdatePage = Annotated[Principal, Depends(console_require("organization", "update"))]
MembersReadPage = Annotated[Principal, Depends(console_require("members", "read"))]
MembersUpdatePage = Annotated[Principal, Depends(console_require("members", "update"))]
MembersDeletePage = Annotated[Principal, Depends(console_require("members", "delete"))]
InvitationsCreatePage = Annotated[Principal, Depends(console_require("invitations", "create"))]
InvitationsDeletePage = Annotated[Principal, Depends(console_require("invitations", "delete"))]
ProjectsReadPage = Annotated[Principal, Depends(console_require("projects", "read", scope="project"))]
ProjectsCreatePage = Annotated[Principal, Depends(console_require("projects", "create"))]
ProjectsUpdatePage = Annotated[Principal, Depends(console_require("projects", "update", scope="project"))]
ProjectsDeletePage = Annotated[Principal, Depends(console_require("projects", "delete", scope="project"))]
ProjectMembersUpdatePage = Annotated[Principal, Depends(console_require("members", "update", scope="project"))]
TeamsReadPage = Annotated[Principal, Depends(console_require("teams", "read", scope="team"))]
TeamsCreatePage = Annotated[Principal, Depends(console_require("teams", "create"))]
TeamsUpdatePage = Annotated[Principal, Depends(console_require("teams", "update", scope="team"))]
TeamsDeletePage = Annotated[Principal, Depends(console_require("teams", "delete", scope="team"))]
