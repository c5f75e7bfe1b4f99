"""What a document is, where documents come from (the manifests' sources), and the text folding both the index and
queries go through, so "Café" and "cafe" meet."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.orm import Session

from northstar.core.crypto import blind_index

# The stemming an org's documents get (``core.search_settings.language``); ``simple`` is none.
Language = Literal["english", "german", "french", "spanish", "simple"]
MAX_TITLE = 300
MAX_BODY = 4000
MAX_WORD = 60
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Document:
    """A findable thing, as a source makes it from one row. ``project_id``: the project it belongs to, for readers
    who read only some projects; ``url``: the console page that shows it; ``hidden_from``: roles that read the
    source's resource but not this (investors read only some kinds of reports)."""

    doc_id: str
    title: str
    url: str
    body: str = ""
    facets: Mapping[str, str] = field(default_factory=dict)
    project_id: uuid.UUID | None = None
    hidden_from: tuple[str, ...] = ()


@dataclass(frozen=True)
class SearchSource:
    """A module's rows of one kind, findable: ``model``'s rows become documents of ``doc_type`` through
    ``document(row, session)``. The row is read by column name (an ORM object after a flush, or a row of its table's
    columns when reindexing); the synchronous session is there for what a row only points at (a member's user), and
    is otherwise left alone. Readers need ``read`` on ``resource``. A row ``document`` answers ``None`` for is not
    findable (a draft, say)."""

    doc_type: str
    label: str
    model: type[Any]
    resource: str
    document: Callable[[Any, Session], Document | None]
    id_column: str = "id"
    # Personal data (a member's name and e-mail): kept encrypted, found by whole words through blind tokens (HMACs),
    # never in clear in the index nor in the org's word list; no prefixes, typos or stemming.
    sealed: bool = False

    @property
    def table(self) -> str:
        table = self.model.__table__
        return f"{table.schema}.{table.name}"


SOURCES: dict[str, SearchSource] = {}
BY_MODEL: dict[type[Any], SearchSource] = {}


def register_sources(sources: Iterable[SearchSource]) -> None:
    for source in sources:
        if SOURCES.setdefault(source.doc_type, source) != source:
            raise ValueError(f"the search source {source.doc_type!r} is declared twice, differently")
        BY_MODEL[source.model] = source


def fold(text: str) -> str:
    """Lower case without accents (NFKD, combining marks dropped; ß as ss), the form both sides are compared in."""
    if text.isascii():  # most text: nothing to decompose
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def tokens(text: str) -> str:
    """The folded text as the index and queries split it: words of letters and digits only, so "ENG-123",
    "2027-03-31" and "report.csv" are found by what they are made of, as typed."""
    return " ".join(_WORD.findall(fold(text)))


def words(tokenized: str) -> set[str]:
    """The words of a ``tokens`` text that typo tolerance may correct toward (digits alone are not words)."""
    return {word for word in tokenized.split() if 3 <= len(word) <= MAX_WORD and not word.isdigit()}


def org_lexeme(org_id: uuid.UUID) -> str:
    """The lexeme every document of an org carries, so the GIN lookup of a word intersects with the org's documents
    alone (several orgs share a partition)."""
    return f"org{org_id.hex}"


def trigrams(word: str, org_id: uuid.UUID) -> list[str]:
    """The word's trigrams (padded as pg_trgm pads), each prefixed by the org, so one GIN lookup stays in one org."""
    padded = f"  {word} "
    prefix = org_id.hex[:12]
    return sorted({f"{prefix}{padded[index : index + 3]}" for index in range(len(padded) - 2)})


def blind_tokens(secret: str, text: str) -> list[str]:
    """A sealed text's words as the index keeps them: each an HMAC (truncated), so only a whole word asked for finds
    it, and the index holds no word in clear."""
    return [blind_token(secret, word) for word in tokens(text).split()]


def blind_token(secret: str, word: str) -> str:
    return "b" + blind_index(secret, "search", word)[:24].lower()
