"""The GraphQL API served on loopback and reached with the stock ``gql`` client (its httpx transport), as a client
of the platform would reach it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport

from northstar.app import create_app
from northstar.demo.loopback import serving
from northstar.settings import Settings
from tests.factories import Account


@dataclass
class Graph:
    """``/graphql`` of an app served on loopback."""

    app: FastAPI
    url: str

    @property
    def endpoint(self) -> str:
        return f"{self.url}/graphql"

    def client(self, headers: dict[str, str], *, schema: bool = False) -> Client:
        transport = HTTPXAsyncTransport(url=self.endpoint, headers=headers, timeout=30)
        return Client(transport=transport, fetch_schema_from_transport=schema)

    async def run(self, who: Account | dict[str, str], query: str, **variables: Any) -> dict[str, Any]:
        """The ``data`` of an operation that must succeed."""
        async with self.client(headers_of(who)) as session:
            data: dict[str, Any] = await session.execute(GraphQLRequest(query, variable_values=variables or None))
        return data

    async def errors(self, who: Account | dict[str, str], query: str, **variables: Any) -> list[dict[str, Any]]:
        """The ``errors`` of an operation that must fail (at least in part)."""
        async with self.client(headers_of(who)) as session:
            with pytest.raises(TransportQueryError) as failed:
                await session.execute(GraphQLRequest(query, variable_values=variables or None))
        assert failed.value.errors, failed.value
        return list(failed.value.errors)

    async def post(self, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        """A raw HTTP request, for what the stock client would not send."""
        async with httpx.AsyncClient(timeout=30) as http:
            return await http.post(self.endpoint, json=body, headers=headers or {})


def headers_of(who: Account | dict[str, str]) -> dict[str, str]:
    return who.headers if isinstance(who, Account) else who


def codes(errors: list[dict[str, Any]]) -> list[str]:
    return [error["extensions"]["code"] for error in errors]


@pytest.fixture(scope="module")
async def graph(settings: Settings) -> AsyncIterator[Graph]:
    app = create_app(settings)
    async with serving(app) as url:
        yield Graph(app, url)
