"""What of the accounts module one search finds: projects, teams and members (core/search)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from northstar.accounts.models import Membership, Project, Team, User
from northstar.accounts.service import pii
from northstar.core.search.documents import Document, SearchSource


def _project(row: Any, session: Session) -> Document:
    return Document(
        doc_id=str(row.id), title=row.name, body=row.description, url=f"/app/projects/{row.id}", project_id=row.id
    )


def _team(row: Any, session: Session) -> Document:
    return Document(
        doc_id=str(row.id),
        title=row.name,
        body=row.description,
        url=f"/app/teams/{row.id}",
        project_id=row.project_id,
    )


def _member(row: Any, session: Session) -> Document | None:
    """A member by name and e-mail, with their role: sealed in the index as on the account (found by whole words)."""
    user = session.get(User, row.user_id)
    if user is None:
        return None
    settings = session.info["settings"]
    email = pii.open_token(settings, user.id, user.email_encrypted) or ""
    name = pii.open_token(settings, user.id, user.full_name_encrypted) or ""
    return Document(
        doc_id=str(row.user_id),
        title=name or email,
        body=email,
        url="/app/members",
        facets={"role": row.role},
    )


SOURCES = (
    SearchSource("project", "Projects", Project, "projects", _project),
    SearchSource("team", "Teams", Team, "teams", _team),
    SearchSource("member", "Members", Membership, "members", _member, id_column="user_id", sealed=True),
)
