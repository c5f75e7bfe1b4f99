"""Answering a search: the query language, typo tolerance, ranking, facets and snippets.

The language: words (each matched as typed, stemmed in the org's language, as a prefix, and, from four letters on,
through the org's words one or two edits away), ``"a phrase"``, ``-word`` or ``-"a phrase"`` to exclude, and
``type:dataset`` to keep one kind. Everything is compared folded (case and accents), as it was indexed.

Typo tolerance without pg_trgm: each org's words are kept with their trigrams (``core.search_words``, a GIN index on
a ``text[]``, the org prefixed to every trigram); a query word's neighbours are the org's words of about its length
sharing a trigram with it, and those within an edit distance of 1 (2 from seven letters) join the query as
alternatives. Matches are ranked by the whole query with ``ts_rank`` (title above body; a third of ``ts_rank_cd``'s
cost, which counts on a common word's thousands of matches); the best of them, a window past the page, are ranked
again with ``ts_rank_cd`` (cover density: the query's words close together) and a boost for the words as typed, so
exact matches come before corrections and prefixes.
Every document carries its org's lexeme, so a common word's index lookup reads the asking org's documents alone.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from rapidfuzz.distance import Levenshtein
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.db import settings_of
from northstar.core.http import Unprocessable
from northstar.core.permissions import Principal
from northstar.core.search.documents import SOURCES, blind_token, fold, org_lexeme, trigrams
from northstar.core.search.indexing import sealing
from northstar.core.security import field_cipher
from northstar.settings import Settings

MAX_QUERY = 500
RESCORE_WINDOW = 100  # ranked by the whole query first; this many more than the page then get the exact-word boost
MAX_TERMS = 12
SNIPPET = 160
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w+")


@dataclass
class Parsed:
    terms: list[str] = field(default_factory=list)
    phrases: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.terms or self.phrases)


def parse(query: str) -> Parsed:
    """The query's parts, folded. Operators with nothing to match (``-``, ``""``) are dropped."""
    if "\x00" in query:
        raise Unprocessable("The query contains a NUL character", code="invalid_query")
    if len(query) > MAX_QUERY:
        raise Unprocessable(f"The query is longer than {MAX_QUERY} characters", code="invalid_query")
    parsed = Parsed()
    for match in _TOKEN.finditer(query):
        negated, phrase, word = match.group(1), match.group(2), match.group(3)
        if phrase is not None:
            folded = " ".join(_WORD.findall(fold(phrase)))
            if folded:
                (parsed.excluded if negated else parsed.phrases).append(folded)
            continue
        if word.lower().startswith("type:"):
            parsed.types.extend(kind for kind in word[5:].lower().split(",") if kind)
            continue
        target = parsed.excluded if word.startswith("-") else parsed.terms
        target.extend(_WORD.findall(fold(word.removeprefix("-"))))
    if len(parsed.terms) + len(parsed.phrases) > MAX_TERMS:
        raise Unprocessable(f"Search for at most {MAX_TERMS} words and phrases", code="invalid_query")
    unknown = [kind for kind in parsed.types if kind not in SOURCES]
    if unknown:
        raise Unprocessable(
            f"Unknown type {', '.join(unknown)}: one of {', '.join(sorted(SOURCES))}", code="invalid_query"
        )
    return parsed


def _lexeme(word: str) -> str:
    return "'" + word.replace("'", "''") + "'"


async def _neighbours(session: AsyncSession, org_id: uuid.UUID, terms: Sequence[str]) -> dict[str, list[str]]:
    """The org's words one or two edits from each query word of four letters or more."""
    wanted = [term for term in dict.fromkeys(terms) if len(term) >= 4]
    if not wanted:
        return {}
    grams = sorted({gram for term in wanted for gram in trigrams(term, org_id)})
    rows = await session.execute(
        text("""
            SELECT word FROM core.search_words
            WHERE org_id = :org_id AND trigrams && CAST(:grams AS text[])
              AND length(word) BETWEEN :shortest AND :longest
        """),
        {
            "org_id": org_id,
            "grams": grams,
            "shortest": min(len(term) for term in wanted) - 2,
            "longest": max(len(term) for term in wanted) + 2,
        },
    )
    candidates = [word for (word,) in rows]
    found: dict[str, list[str]] = {}
    for term in wanted:
        allowed = 1 if len(term) < 7 else 2
        near = [
            (distance, word)
            for word in candidates
            if word != term
            and abs(len(word) - len(term)) <= allowed
            and (distance := Levenshtein.distance(term, word, score_cutoff=allowed)) <= allowed
        ]
        if near:
            found[term] = [word for _, word in sorted(near)[:4]]
    return found


@dataclass(frozen=True)
class Hit:
    doc_type: str
    doc_id: str
    title: str
    title_highlight: str
    snippet: str
    url: str
    facets: dict[str, Any]
    updated_at: datetime
    score: float


@dataclass(frozen=True)
class Answer:
    hits: list[Hit]
    total: int
    counts: dict[str, int]
    corrections: dict[str, list[str]]


def _visibility(principal: Principal) -> tuple[list[str], list[str]]:
    """The resources the reader reads everywhere, and ``resource:project`` pairs of those read in some projects."""
    everywhere: list[str] = []
    scoped: list[str] = []
    for resource in sorted({source.resource for source in SOURCES.values()}):
        reach = principal.reach("read", resource, "project")
        if reach is None:
            everywhere.append(resource)
        else:
            scoped.extend(f"{resource}:{project}" for project in sorted(reach))
    return everywhere, scoped


async def search(
    session: AsyncSession, *, principal: Principal, query: str, types: Sequence[str], offset: int, limit: int
) -> Answer:
    parsed = parse(query)
    unknown = [kind for kind in types if kind not in SOURCES]
    if unknown:
        raise Unprocessable(f"Unknown type {', '.join(unknown)}", code="invalid_query")
    if parsed.empty:
        return Answer([], 0, {}, {})
    org_id = principal.org_id
    corrections = await _neighbours(session, org_id, parsed.terms)
    settings = settings_of(session)
    secret = settings.resolved_secret_key()
    params: dict[str, Any] = {"org_id": org_id}
    required, exact = [], []
    for number, term in enumerate(parsed.terms):
        params[f"t{number}"], params[f"p{number}"] = _lexeme(term), _lexeme(term) + ":*"
        params[f"b{number}"] = _lexeme(blind_token(secret, term))  # the word as sealed documents keep it
        as_typed = f"(to_tsquery(cfg.config, :t{number}) || to_tsquery('simple', :b{number}))"
        alternatives = [as_typed, f"to_tsquery('simple', :p{number})"]
        for other, word in enumerate(corrections.get(term, [])):
            params[f"f{number}_{other}"] = _lexeme(word)
            alternatives.append(f"to_tsquery('simple', :f{number}_{other})")
        required.append("(" + " || ".join(alternatives) + ")")
        exact.append(as_typed)
    for number, phrase in enumerate(parsed.phrases):
        params[f"q{number}"] = phrase
        required.append(f"phraseto_tsquery(cfg.config, :q{number})")
        exact.append(f"phraseto_tsquery(cfg.config, :q{number})")
    for number, word in enumerate(parsed.excluded):
        params[f"x{number}"] = word
        required.append(f"!!(phraseto_tsquery(cfg.config, :x{number}) || phraseto_tsquery('simple', :x{number}))")
    everywhere, scoped = _visibility(principal)
    params |= {"everywhere": everywhere, "scoped": scoped, "role": principal.role.value}
    wanted = sorted(set(types) | set(parsed.types))
    wanted_query, exact_query = " && ".join(required), " && ".join(exact)
    params |= {
        "org_query": _lexeme(org_lexeme(org_id)),
        "types": wanted,
        "window": offset + limit + RESCORE_WINDOW,
        "limit": limit,
        "offset": offset,
    }
    typed = "WHERE doc_type = ANY(CAST(:types AS text[]))" if wanted else ""
    statement = (
        "WITH cfg AS (SELECT coalesce((SELECT language FROM core.search_settings WHERE org_id = :org_id),"  # noqa: S608 - our fragments; values bound
        " 'english')::regconfig AS config), "
        f"q AS (SELECT ({wanted_query}) AS query, ({exact_query}) AS exact, "
        "CAST(:org_query AS tsquery) AS org FROM cfg), "
        "matches AS MATERIALIZED ("
        " SELECT d.doc_type, d.doc_id, d.updated_at, ts_rank(d.search, q.query) AS rank"
        " FROM core.search_documents d, q"
        " WHERE d.org_id = :org_id AND d.search @@ (q.query && q.org)"
        " AND (d.resource = ANY(CAST(:everywhere AS text[]))"
        " OR d.resource || ':' || d.project_id::text = ANY(CAST(:scoped AS text[])))"
        " AND NOT (CAST(:role AS text) = ANY(d.hidden_from))), "
        f"best AS (SELECT doc_type, doc_id, rank FROM matches {typed}"
        " ORDER BY rank DESC, updated_at DESC, doc_id LIMIT :window) "
        "SELECT c.counts, p.* FROM ("
        " SELECT coalesce(jsonb_object_agg(doc_type, found), '{}') AS counts"
        " FROM (SELECT doc_type, count(*) AS found FROM matches GROUP BY doc_type) t) c "
        "LEFT JOIN LATERAL ("
        " SELECT d.doc_type, d.doc_id, d.title, d.body, d.sealed, d.url, d.facets, d.updated_at,"
        " ts_rank_cd(d.search, q.exact) * 2 + ts_rank_cd(d.search, q.query) AS score"
        " FROM best b JOIN core.search_documents d"
        " ON d.org_id = :org_id AND d.doc_type = b.doc_type AND d.doc_id = b.doc_id, q"
        " ORDER BY score DESC, d.updated_at DESC, d.doc_id LIMIT :limit OFFSET :offset) p ON true"
    )
    rows = (await session.execute(text(statement), params)).all()
    counts = {doc_type: int(count) for doc_type, count in rows[0].counts.items()}
    total = sum(count for doc_type, count in counts.items() if not wanted or doc_type in wanted)
    rows = [row for row in rows if row.doc_id is not None]
    rows = [_opened(settings, org_id, row) for row in rows]
    marks = [*parsed.terms, *(word for words in corrections.values() for word in words)]
    phrase_words = [word for phrase in parsed.phrases for word in phrase.split()]
    hits = [
        Hit(
            doc_type=row.doc_type,
            doc_id=row.doc_id,
            title=row.title,
            title_highlight=highlight(row.title, marks, phrase_words, whole=True),
            snippet=highlight(row.body or row.title, marks, phrase_words),
            url=row.url,
            facets=dict(row.facets),
            updated_at=row.updated_at,
            score=round(float(row.score), 6),
        )
        for row in rows
    ]
    return Answer(hits, total, counts, corrections)


def _opened(settings: Settings, org_id: uuid.UUID, row: Any) -> Any:
    """A sealed document's title and body decrypted for the page (the reader may read its resource)."""
    if not row.sealed:
        return row
    cipher, place = field_cipher(settings), sealing(org_id, row.doc_type, row.doc_id)
    body = cipher.decrypt(row.body, associated_data=place) if row.body else ""
    return SimpleNamespace(**{**row._mapping, "title": cipher.decrypt(row.title, associated_data=place), "body": body})


def highlight(original: str, prefixes: Sequence[str], exact: Sequence[str], *, whole: bool = False) -> str:
    """HTML: the text (or, unless ``whole``, a window around its first match) escaped, each word that starts with a
    query word or is a phrase's word in ``<mark>``."""
    spans = [
        (match.start(), match.end())
        for match in _WORD.finditer(original)
        if (folded := fold(match.group())) in exact or any(folded.startswith(prefix) for prefix in prefixes)
    ]
    start, end = 0, len(original)
    if not whole and len(original) > SNIPPET:
        first = spans[0][0] if spans else 0
        start = max(0, min(first - SNIPPET // 4, len(original) - SNIPPET))
        end = start + SNIPPET
    pieces, cursor = [], start
    for begin, finish in spans:
        if begin < start or finish > end:
            continue
        pieces += [html.escape(original[cursor:begin]), "<mark>", html.escape(original[begin:finish]), "</mark>"]
        cursor = finish
    pieces.append(html.escape(original[cursor:end]))
    return ("…" if start > 0 else "") + "".join(pieces) + ("…" if end < len(original) else "")
