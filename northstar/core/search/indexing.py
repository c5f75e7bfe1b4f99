"""Keeping ``core.search_documents`` in step with the rows it is made of.

- **In the same transaction.** After every flush, the rows of the manifests' sources that were added or changed
  become documents (written with the flush, so a new project is findable in the answer that made it); a row its
  source no longer finds findable loses its document. A deleted row, by the ORM, a cascade or a bulk delete, takes
  its document with it through the ``core.search_forget`` trigger on its table.
  Rows written by an SQL statement (a bulk upsert, an ``update()``) pass no flush: their writer indexes them with
  ``index_rows``.
- **Rebuilt on demand.** ``reindex`` writes every document of an org again (the queued task ``core.search_reindex``,
  queued by the ``northstar search reindex`` command, ``POST /api/v1/search/reindex`` and a change of the org's
  language), a batch per transaction with its progress on ``core.search_settings``; documents no row rewrote are
  dropped at the end.

Documents are written with one ``INSERT … SELECT FROM unnest(…)`` per batch: the ``tsvector`` is made by PostgreSQL
from the folded title (weight A) and body (weight B), in the org's language and in ``simple`` (so a prefix or an
unstemmed word matches too). The org's words go to ``core.search_words`` for typo tolerance.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import orjson
from sqlalchemy import ColumnElement, event, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from northstar.core.db import Database, TenantSession
from northstar.core.search.documents import (
    BY_MODEL,
    MAX_BODY,
    MAX_TITLE,
    SOURCES,
    Document,
    SearchSource,
    blind_tokens,
    org_lexeme,
    tokens,
    words,
)
from northstar.core.security import field_cipher
from northstar.settings import Settings

BATCH = 5000

_WRITE = text("""
    INSERT INTO core.search_documents AS d
      (org_id, doc_type, doc_id, title, body, facets, resource, project_id, hidden_from, sealed, url, search,
       updated_at)
    SELECT n.org_id, n.doc_type, n.doc_id, n.title, n.body, n.facets::jsonb, n.resource, n.project_id,
           string_to_array(n.hidden_from, ','), n.sealed, n.url,
           setweight(to_tsvector(l.config, n.folded_title), 'A')
           || setweight(to_tsvector('simple', n.folded_title), 'A')
           || setweight(to_tsvector(l.config, n.folded_body), 'B')
           || setweight(to_tsvector('simple', n.folded_body), 'B')
           || array_to_tsvector(ARRAY[CAST(:org_lexeme AS text)]),
           now()
    FROM unnest(CAST(:org_ids AS uuid[]), CAST(:doc_types AS text[]), CAST(:doc_ids AS text[]),
                CAST(:titles AS text[]), CAST(:bodies AS text[]), CAST(:facets AS text[]),
                CAST(:resources AS text[]), CAST(:project_ids AS uuid[]), CAST(:hidden_froms AS text[]),
                CAST(:sealed AS boolean[]), CAST(:urls AS text[]),
                CAST(:folded_titles AS text[]), CAST(:folded_bodies AS text[]))
         AS n(org_id, doc_type, doc_id, title, body, facets, resource, project_id, hidden_from, sealed, url,
              folded_title, folded_body)
    CROSS JOIN LATERAL (
      SELECT CASE WHEN n.sealed THEN 'simple'::regconfig ELSE coalesce(
               (SELECT s.language FROM core.search_settings s WHERE s.org_id = n.org_id), 'english')::regconfig END
             AS config
    ) l
    ON CONFLICT (org_id, doc_type, doc_id) DO UPDATE
      SET title = excluded.title, body = excluded.body, facets = excluded.facets, resource = excluded.resource,
          project_id = excluded.project_id, hidden_from = excluded.hidden_from, sealed = excluded.sealed,
          url = excluded.url,
          search = excluded.search, updated_at = now()
""")
_WORDS = text("""
    INSERT INTO core.search_words (org_id, word, trigrams)
    SELECT CAST(:org_id AS uuid), w,
           ARRAY(SELECT DISTINCT :prefix || substr('  ' || w || ' ', i, 3) FROM generate_series(1, length(w) + 1) i)
    FROM unnest(CAST(:words AS text[])) AS w
    WHERE NOT EXISTS (SELECT 1 FROM core.search_words k WHERE k.org_id = CAST(:org_id AS uuid) AND k.word = w)
    ON CONFLICT DO NOTHING
""")
_FORGET = text("""
    DELETE FROM core.search_documents
    WHERE org_id = CAST(:org_id AS uuid) AND doc_type = :doc_type AND doc_id = ANY(CAST(:doc_ids AS text[]))
""")


@dataclass(frozen=True)
class Indexed:
    """A document with what the index keeps beside it."""

    org_id: uuid.UUID
    source: SearchSource
    document: Document


def _clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[:limit]


def write(session: Session, indexed: Sequence[Indexed]) -> None:
    """Write documents (and their words), each under its own org: the transaction's tenant is switched to it when
    it differs, and put back."""
    connection = session.connection()
    by_org: dict[uuid.UUID, list[Indexed]] = defaultdict(list)
    for item in indexed:
        by_org[item.org_id].append(item)
    current = connection.execute(text("SELECT current_setting('northstar.org_id', true)")).scalar()
    for org_id, items in by_org.items():
        switched = str(org_id) != current
        if switched:
            connection.execute(text("SELECT set_config('northstar.org_id', :org, true)"), {"org": str(org_id)})
        _write_org(session, org_id, items)
        if switched:
            connection.execute(text("SELECT set_config('northstar.org_id', :org, true)"), {"org": current or ""})


def sealing(org_id: uuid.UUID, doc_type: str, doc_id: str) -> str:
    """What a sealed document's text is encrypted for: its own place in the index."""
    return f"search:{org_id}:{doc_type}:{doc_id}"


def _write_org(session: Session, org_id: uuid.UUID, items: Sequence[Indexed]) -> None:
    settings: Settings = session.info["settings"]
    titles = [_clip(item.document.title, MAX_TITLE) for item in items]
    bodies = [_clip(item.document.body, MAX_BODY) for item in items]
    folded_titles, folded_bodies = [tokens(title) for title in titles], [tokens(body) for body in bodies]
    secret, cipher = settings.resolved_secret_key(), field_cipher(settings)
    for index, item in enumerate(items):
        if item.source.sealed:  # personal data: encrypted, and its words as blind tokens only
            place = sealing(org_id, item.source.doc_type, item.document.doc_id)
            folded_titles[index] = " ".join(blind_tokens(secret, titles[index]))
            folded_bodies[index] = " ".join(blind_tokens(secret, bodies[index]))
            titles[index] = cipher.encrypt(titles[index], associated_data=place)
            bodies[index] = cipher.encrypt(bodies[index], associated_data=place) if bodies[index] else ""
    session.connection().execute(
        _WRITE,
        {
            "org_ids": [org_id] * len(items),
            "doc_types": [item.source.doc_type for item in items],
            "doc_ids": [item.document.doc_id for item in items],
            "titles": titles,
            "bodies": bodies,
            "facets": [orjson.dumps(dict(item.document.facets)).decode() for item in items],
            "resources": [item.source.resource for item in items],
            "project_ids": [item.document.project_id for item in items],
            "hidden_froms": [",".join(item.document.hidden_from) for item in items],
            "sealed": [item.source.sealed for item in items],
            "urls": [item.document.url for item in items],
            "folded_titles": folded_titles,
            "folded_bodies": folded_bodies,
            "org_lexeme": org_lexeme(org_id),
        },
    )
    found = set().union(
        *(words(folded) for item, folded in zip(items, folded_titles, strict=True) if not item.source.sealed),
        *(words(folded) for item, folded in zip(items, folded_bodies, strict=True) if not item.source.sealed),
    )
    if found:
        session.connection().execute(_WORDS, {"org_id": org_id, "prefix": org_id.hex[:12], "words": sorted(found)})


def forget(connection: Connection, org_id: uuid.UUID, doc_type: str, doc_ids: Sequence[str]) -> None:
    connection.execute(_FORGET, {"org_id": org_id, "doc_type": doc_type, "doc_ids": list(doc_ids)})


def _row_id(source: SearchSource, row: Any) -> str:
    return str(getattr(row, source.id_column))


def _index(session: Session, rows: Iterable[tuple[SearchSource, Any]]) -> None:
    """Write the documents of these rows, and forget those of the rows their source no longer finds findable."""
    indexed: list[Indexed] = []
    unfindable: dict[tuple[uuid.UUID, str], list[str]] = defaultdict(list)
    for source, row in rows:
        document = source.document(row, session)
        if document is None:
            unfindable[(row.org_id, source.doc_type)].append(_row_id(source, row))
        else:
            indexed.append(Indexed(row.org_id, source, document))
    if indexed:
        write(session, indexed)
    for (org_id, doc_type), doc_ids in unfindable.items():
        forget(session.connection(), org_id, doc_type, doc_ids)


@event.listens_for(TenantSession, "after_flush")
def _index_flushed(session: Session, flush_context: Any) -> None:
    """The sources' rows this flush added or changed, indexed in the same transaction."""
    changed = [
        (BY_MODEL[type(row)], row)
        for row in chain(session.new, session.dirty)
        if type(row) in BY_MODEL and (row in session.new or session.is_modified(row))
    ]
    if changed:
        _index(session, changed)


async def index_rows(session: AsyncSession, model: type[Any], *criteria: ColumnElement[bool]) -> None:
    """Index again the rows of a source's ``model`` that ``criteria`` select. Rows written by an SQL statement (a
    bulk upsert, an ``update()``) pass no flush, so whoever writes them calls this in the same transaction."""
    source = BY_MODEL[model]
    table = model.__table__
    rows = (await session.execute(select(*table.columns).where(*criteria))).all()
    if rows:
        await session.run_sync(_index, [(source, row) for row in rows])


def _batch(session: Session, source: SearchSource, org_id: uuid.UUID, after: Any) -> tuple[int, Any]:
    """Index the source's next rows of the org (by id, after ``after``); how many were read, and the last id."""
    table = source.model.__table__
    key = table.c[source.id_column]
    query = select(*table.columns).where(table.c.org_id == org_id).order_by(key).limit(BATCH)
    rows = session.execute(query if after is None else query.where(key > after)).all()
    indexed = [Indexed(org_id, source, document) for row in rows if (document := source.document(row, session))]
    if indexed:
        _write_org(session, org_id, indexed)
    return len(rows), (getattr(rows[-1], source.id_column) if rows else after)


def _count(session: Session, org_id: uuid.UUID) -> int:
    return sum(
        session.execute(select(func.count()).select_from(table).where(table.c.org_id == org_id)).scalar_one()
        for table in (source.model.__table__ for source in SOURCES.values())
    )


_PROGRESS = text("""
    INSERT INTO core.search_settings (org_id, reindex_total, reindex_done, reindex_started_at, reindexed_at)
    VALUES (:org_id, :total, :done, now(), NULL)
    ON CONFLICT (org_id) DO UPDATE SET reindex_total = excluded.reindex_total, reindex_done = excluded.reindex_done,
      reindex_started_at = CASE WHEN excluded.reindex_done = 0 THEN now()
                                ELSE core.search_settings.reindex_started_at END,
      reindexed_at = NULL
""")


async def reindex(database: Database, org_id: uuid.UUID) -> int:
    """Write every document of the org again, a batch per transaction (its progress on ``core.search_settings``
    committed with it, so it can be followed), then drop the documents no row rewrote (rows gone or no longer
    findable). Searches go on meanwhile, on the documents as they are."""
    async with database.tenant_transaction(org_id=org_id) as session:
        total = await session.run_sync(_count, org_id)
        await session.execute(_PROGRESS, {"org_id": org_id, "total": total, "done": 0})
        started = await session.scalar(text("SELECT now()"))
    done = 0
    for source in SOURCES.values():
        after: Any = None
        while True:
            async with database.tenant_transaction(org_id=org_id) as session:
                read, after = await session.run_sync(_batch, source, org_id, after)
                done += read
                await session.execute(_PROGRESS, {"org_id": org_id, "total": max(total, done), "done": done})
            if read < BATCH:
                break
    async with database.tenant_transaction(org_id=org_id) as session:
        await session.execute(
            text("DELETE FROM core.search_documents WHERE org_id = :org_id AND updated_at < :started"),
            {"org_id": org_id, "started": started},
        )
        await session.execute(
            text("UPDATE core.search_settings SET reindexed_at = now(), reindex_done = :done WHERE org_id = :org_id"),
            {"org_id": org_id, "done": done},
        )
    return done
