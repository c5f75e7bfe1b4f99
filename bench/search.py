"""Search (core/search): reindexing an org's documents, and ``GET /api/v1/search`` over them, against a real
``northstar run`` (API and worker).

Seeding: ``NORTHSTAR_BENCH_SEARCH_DOCS`` projects (default 1,000,000) spread evenly over 100 orgs, each org signed
up through the API. A project's name is a few words, often after a company-like name ("Brelvo Labs"); its
description 8 to 40 words; all drawn from a 5,000-word vocabulary with a Zipf distribution (rank r weighs 1/r), so a
few words are in most projects and most words in a few. They go straight to the org's table as provisioning
would write them (one multi-row ``INSERT … FROM unnest`` per 5,000 rows, in tenant transactions under RLS); being
plain statements, not ORM flushes, they are not indexed as they land. ``COPY FROM`` is not an option: PostgreSQL
refuses it on a table under row-level security.

Indexing: ``indexing.reindex(database, org_id)`` of every org, two at a time, timed as a whole: documents/s. Then
``VACUUM (ANALYZE)`` of the index tables (timed apart, not counted): the steady state autovacuum brings, with the
GIN pending lists merged and the planner's statistics taken.

Queries: ``NORTHSTAR_BENCH_SEARCH_ROUNDS`` (default 300) per class, each of a random org with its founder's token,
one request at a time: ``common`` (one of the 50 most frequent words), ``prefix`` (the first three letters of a
word drawn by frequency), ``typo`` (a word of five letters or more drawn by frequency, one letter changed so it is
no word of the vocabulary). Each query is also answered, in the same round, by the two baselines: a plain
``ILIKE '%q%'`` over the org's project names and descriptions (a page of 20 with the total, as the search answers;
through the database directly, in a tenant transaction), and ``GET /api/v1/projects?q=`` (the projects list's
substring filter, on names only). Every answer asks for 20 hits. The first round of each class warms up and is not
counted.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
import uuid
from collections.abc import Awaitable
from typing import Any

import httpx
import numpy
import psycopg
from sqlalchemy import text

from bench.server import PASSWORD, Server, running_server, signup
from bench.socialproof import conninfo, server_database
from northstar.core.db import Database
from northstar.core.manifest import install
from northstar.core.search import indexing
from northstar.modules import MANIFESTS

DOCS = int(os.environ.get("NORTHSTAR_BENCH_SEARCH_DOCS", "1000000"))
ROUNDS = int(os.environ.get("NORTHSTAR_BENCH_SEARCH_ROUNDS", "300"))
ORGS = 100
VOCABULARY = 5000
COMMON = 50
PARALLEL = 2
CHUNK = 5000
LIMIT = 20
CLASSES = ("common", "prefix", "typo")

_ONSETS = ("b", "br", "c", "ch", "cl", "d", "dr", "f", "fl", "g", "gr", "h", "k", "l", "m", "n", "p", "pl", "qu",
           "r", "s", "sh", "st", "t", "th", "tr", "v", "w", "z")  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "io", "ou", "y")
_CODAS = ("", "", "n", "r", "s", "l", "t", "x", "nd", "rk", "st", "m")
_SUFFIXES = ("Labs", "Systems", "Group", "Holdings", "Analytics", "Logistics", "Partners", "Software", "GmbH",
             "Inc", "Ventures", "Health", "Energy", "Capital", "Studio", "Works")  # fmt: skip
_KINDS = ("migration", "rollout", "dashboard", "pipeline", "launch", "audit", "redesign", "integration", "pilot")

_ILIKE = text("""
    SELECT id, name, count(*) OVER () AS total FROM core.projects
    WHERE org_id = :org_id AND (name ILIKE :pattern OR description ILIKE :pattern)
    ORDER BY created_at DESC, id LIMIT :limit
""")
_SEED = text("""
    INSERT INTO core.projects (id, org_id, name, description)
    SELECT id, CAST(:org_id AS uuid), name, description
    FROM unnest(CAST(:ids AS uuid[]), CAST(:names AS text[]), CAST(:descriptions AS text[])) AS n(id, name, description)
""")


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] * 1000


def vocabulary(chance: random.Random) -> list[str]:
    """``VOCABULARY`` distinct pronounceable made-up words of one to four syllables, in rank order (made up, so no
    stemming dictionary knows them better than another's words)."""
    found: dict[str, None] = {}
    while len(found) < VOCABULARY:
        syllables = chance.choices((1, 2, 3, 4), weights=(2, 5, 4, 1))[0]
        word = "".join(chance.choice(_ONSETS) + chance.choice(_VOWELS) for _ in range(syllables))
        word += chance.choice(_CODAS)
        if len(word) >= 3:
            found.setdefault(word, None)
    return list(found)


class Corpus:
    """The vocabulary with its Zipf weights, and projects made of it."""

    def __init__(self, seed: int = 21) -> None:
        self.chance = random.Random(seed)
        self.numbers = numpy.random.default_rng(seed)
        self.words = vocabulary(self.chance)
        weights = 1.0 / numpy.arange(1, VOCABULARY + 1)
        self.weights = weights / weights.sum()
        self.companies = [
            f"{word.capitalize()} {self.chance.choice(_SUFFIXES)}" for word in self.chance.sample(self.words, 400)
        ]

    def draw(self, count: int) -> list[str]:
        """``count`` words by frequency."""
        return [self.words[rank] for rank in self.numbers.choice(VOCABULARY, size=count, p=self.weights)]

    def projects(self, count: int) -> tuple[list[str], list[str]]:
        """Names and descriptions of ``count`` projects."""
        lengths = self.numbers.integers(8, 41, size=count)
        drawn = iter(self.draw(int(lengths.sum()) + 3 * count))
        names, descriptions = [], []
        for length in lengths:
            words = [next(drawn) for _ in range(3)]
            name = " ".join(words[: self.chance.randint(1, 3)]).capitalize()
            if self.chance.random() < 0.4:
                name = f"{self.chance.choice(self.companies)} {name}"
            if self.chance.random() < 0.3:
                name += f" {self.chance.choice(_KINDS)}"
            names.append(name)
            descriptions.append(" ".join(next(drawn) for _ in range(length)).capitalize() + ".")
        return names, descriptions

    def query(self, kind: str) -> str:
        if kind == "common":
            return self.words[self.chance.randrange(COMMON)]
        if kind == "prefix":
            return self.draw(1)[0][:3]
        while True:
            word = self.draw(1)[0]
            if len(word) < 5:
                continue
            at = self.chance.randrange(len(word))
            typo = word[:at] + self.chance.choice("abcdefghijklmnopqrstuvwxyz".replace(word[at], "")) + word[at + 1 :]
            if typo not in self.words:
                return typo


async def _org(http: httpx.AsyncClient, base_url: str, number: int) -> tuple[uuid.UUID, str]:
    """A new org through the API; its id and its founder's e-mail."""
    email = f"bench-search-{number:03d}@example.com"
    token = await asyncio.to_thread(signup, base_url, email)
    answered = await http.get(f"{base_url}/api/v1/organization", headers={"Authorization": f"Bearer {token}"})
    answered.raise_for_status()
    return uuid.UUID(answered.json()["data"]["id"]), email


async def _seed(database: Database, corpus: Corpus, org_id: uuid.UUID, count: int) -> None:
    for start in range(0, count, CHUNK):
        names, descriptions = corpus.projects(min(CHUNK, count - start))
        async with database.tenant_transaction(org_id=org_id) as session:
            await session.execute(
                _SEED,
                {
                    "org_id": org_id,
                    "ids": [uuid.uuid4() for _ in names],
                    "names": names,
                    "descriptions": descriptions,
                },
            )


async def _reindex_all(database: Database, org_ids: list[uuid.UUID]) -> int:
    """Every org reindexed, ``PARALLEL`` at a time; the documents written."""
    gate = asyncio.Semaphore(PARALLEL)

    async def one(org_id: uuid.UUID) -> int:
        async with gate:
            return await indexing.reindex(database, org_id)

    return sum(await asyncio.gather(*(one(org_id) for org_id in org_ids)))


def _vacuum(server: Server) -> None:
    with psycopg.connect(conninfo(server.data_dir), autocommit=True) as connection:
        for table in ("core.search_documents", "core.search_words", "core.projects"):
            connection.execute(f"VACUUM (ANALYZE) {table}")


async def _timed(work: Awaitable[Any]) -> tuple[float, Any]:
    """Seconds ``work`` took from its start (a coroutine starts when awaited), and its result."""
    began = time.perf_counter()
    answered = await work
    return time.perf_counter() - began, answered


async def _ilike(database: Database, org_id: uuid.UUID, q: str) -> list[Any]:
    async with database.tenant_transaction(org_id=org_id) as session:
        return list(await session.execute(_ILIKE, {"org_id": org_id, "pattern": f"%{q}%", "limit": LIMIT}))


async def _queries(
    server: Server, database: Database, corpus: Corpus, orgs: list[tuple[uuid.UUID, str]]
) -> dict[str, Any]:
    """Each class's rounds: the search, then both baselines, for the same org and query."""
    timings: dict[str, list[float]] = {f"{method}_{kind}": [] for method in ("search", "ilike", "projects_q")
                                       for kind in CLASSES}  # fmt: skip
    totals: dict[str, list[int]] = {kind: [] for kind in CLASSES}
    corrected = 0
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        tokens = []
        for _, email in orgs:  # fresh tokens: seeding and indexing a million documents outlast an access token
            answered = await http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
            answered.raise_for_status()
            tokens.append({"Authorization": f"Bearer {answered.json()['data']['tokens']['accessToken']}"})
        for kind in CLASSES:
            for round_ in range(ROUNDS + 1):
                number = corpus.chance.randrange(len(orgs))
                org_id, headers, q = orgs[number][0], tokens[number], corpus.query(kind)
                params = {"q": q, "limit": LIMIT}
                searched, found = await _timed(http.get("/api/v1/search", params=params, headers=headers))
                scanned, _ = await _timed(_ilike(database, org_id, q))
                listed, page = await _timed(http.get("/api/v1/projects", params=params, headers=headers))
                found.raise_for_status()
                page.raise_for_status()
                if round_ == 0:
                    continue
                timings[f"search_{kind}"].append(searched)
                timings[f"ilike_{kind}"].append(scanned)
                timings[f"projects_q_{kind}"].append(listed)
                meta = found.json()["meta"]
                totals[kind].append(int(meta["total"]))
                corrected += kind == "typo" and bool(meta["corrections"])
    results: dict[str, Any] = {}
    for kind in CLASSES:
        for method, label in (("search", "search"), ("ilike", "baseline_ilike"), ("projects_q", "baseline_projects_q")):
            samples = timings[f"{method}_{kind}"]
            results[f"{label}_{kind}_p50_ms"] = statistics.median(samples) * 1000
            results[f"{label}_{kind}_p95_ms"] = _p95(samples)
        results[f"search_{kind}_mean_total"] = statistics.fmean(totals[kind])
    results["search_typo_corrected_pct"] = 100.0 * corrected / ROUNDS
    return results


async def _run() -> dict[str, Any]:
    install(MANIFESTS)  # the manifests' search sources, which reindex reads
    corpus = Corpus()
    per_org = DOCS // ORGS
    with running_server("run") as server:
        database = server_database(server.data_dir)
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                orgs = [await _org(http, server.base_url, number) for number in range(ORGS)]
            began = time.perf_counter()
            for org_id, _ in orgs:
                await _seed(database, corpus, org_id, per_org)
            seeding = time.perf_counter() - began
            indexing_s, documents = await _timed(_reindex_all(database, [org_id for org_id, _ in orgs]))
            vacuum_s, _ = await _timed(asyncio.to_thread(_vacuum, server))
            queries = await _queries(server, database, corpus, orgs)
        finally:
            await database.dispose()
    return {
        "orgs": ORGS,
        "projects_seeded": per_org * ORGS,
        "seed_s": seeding,
        "documents_indexed": documents,
        "reindex_parallel_orgs": PARALLEL,
        "reindex_s": indexing_s,
        "reindex_docs_per_s": documents / indexing_s,
        "vacuum_analyze_s": vacuum_s,
        "rounds_per_class": ROUNDS,
    } | queries


def run() -> dict[str, Any]:
    started = time.perf_counter()
    results: dict[str, Any] = {"machine_load_1m_at_start": os.getloadavg()[0]}
    results |= asyncio.run(_run())
    results["machine_load_1m_at_end"] = os.getloadavg()[0]
    results["run_s"] = time.perf_counter() - started
    return results


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:60} {value:>14,.2f}" if isinstance(value, float) else f"{name:60} {value:>14}")
