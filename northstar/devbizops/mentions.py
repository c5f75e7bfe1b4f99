"""Finding the work items a text names: tracker keys (``ENG-12``), repository references (``acme/api#12``, or
``#12`` within a change's own repository) and links to an issue on GitHub, GitLab, Jira or Linear.

Pure: a text in, the keys it names out, each with the words around it as evidence. ``service.links`` matches them
against the org's work items (whose keys have the same forms: ``docs/devbizops.md``, "Links to the business").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TRACKER_KEY = re.compile(r"\b([A-Z][A-Z0-9]{1,9}-[1-9][0-9]{0,6})\b")
REPOSITORY_REFERENCE = re.compile(r"(?<![\w/.-])([A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+)#([1-9][0-9]{0,6})\b")
SHORT_REFERENCE = re.compile(r"(?<![\w/#&])#([1-9][0-9]{0,6})\b")
ISSUE_URL = re.compile(
    r"https?://[^\s/]+/([A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+?)(?:/-)?/(?:issues|pull|merge_requests)/([1-9][0-9]{0,6})"
)
CONTEXT = 40  # characters of evidence on each side of a mention


@dataclass(frozen=True)
class Mention:
    key: str
    evidence: str


def _evidence(text: str, start: int, end: int) -> str:
    before, after = max(0, start - CONTEXT), min(len(text), end + CONTEXT)
    snippet = " ".join(text[before:after].split())
    return ("…" if before else "") + snippet + ("…" if after < len(text) else "")


def mentions(text: str | None, *, repository: str | None = None) -> list[Mention]:
    """The keys ``text`` names, first mention of each; ``#12`` counts only with the ``repository`` it is in."""
    if not text:
        return []
    found: dict[str, Mention] = {}

    def add(key: str, start: int, end: int) -> None:
        found.setdefault(key, Mention(key, _evidence(text, start, end)))

    for match in ISSUE_URL.finditer(text):
        add(f"{match.group(1)}#{match.group(2)}", match.start(), match.end())
    for match in TRACKER_KEY.finditer(text):
        add(match.group(1), match.start(), match.end())
    for match in REPOSITORY_REFERENCE.finditer(text):
        add(f"{match.group(1)}#{match.group(2)}", match.start(), match.end())
    if repository is not None:
        for match in SHORT_REFERENCE.finditer(text):
            add(f"{repository}#{match.group(1)}", match.start(), match.end())
    return list(found.values())
