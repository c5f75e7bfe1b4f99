"""Names and titles must show something: only spaces, zero-width or other invisible characters are a 422."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

import httpx
import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from northstar.core.http import RequestModel, WireModel
from tests.factories import Account, create_project, signup

# What a merchant's customer typed about themselves (``firstName`` of a purchase): shown anonymised, and a blank one
# is shown as "Someone"; refusing the whole event for it would lose the purchase.
ABOUT_PEOPLE = {("EventDetails", "first_name"), ("EventIn", "first_name"), ("WidgetEvent", "first_name")}
BLANK_NAMES = ["\u200b\u200b", "   ", "\u3000", "\u00a0\u2003", "\ufeff\u2060", "\u3164", "\u0301", "\t\n"]


def _subclasses(model: type[BaseModel]) -> list[type[BaseModel]]:
    found = []
    for sub in model.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def _naming_fields() -> list[tuple[str, str, TypeAdapter[Any]]]:
    """Every free-text field of every request model that names or titles something, with its complete type."""
    import northstar.app  # noqa: F401 - every module's request models, loaded

    fields = []
    for model in {*_subclasses(RequestModel), *_subclasses(WireModel)}:
        for name, field in model.model_fields.items():
            if (name in ("name", "title") or name.endswith(("_name", "_title"))) and (
                model.__name__,
                name,
            ) not in ABOUT_PEOPLE:
                adapter: TypeAdapter[Any] = TypeAdapter(Annotated[field.annotation, *field.metadata, None])
                try:
                    adapter.validate_python("Acme")
                except ValidationError:
                    continue  # a choice among fixed values, not a name someone types
                fields.append((model.__name__, name, adapter))
    return fields


def test_every_name_field_refuses_invisible_names() -> None:
    fields = _naming_fields()
    assert len(fields) >= 15, fields
    for model, name, adapter in fields:
        for blank in BLANK_NAMES:
            with pytest.raises(ValidationError, match=r"visible character"):
                adapter.validate_python(blank)
        for fine in ("Acme", "\u200bAcme", "東京", "😀", "a b"):
            assert adapter.validate_python(fine) == fine, (model, name, fine)


@pytest.fixture
async def site(client: httpx.AsyncClient, founder: Account) -> str:
    response = await client.post(
        "/api/v1/sites", headers=founder.headers, json={"name": "Shop", "domain": f"{secrets.token_hex(6)}.example"}
    )
    return f"/api/v1/sites/{response.json()['data']['id']}"


async def test_invisible_names_are_422_on_every_route(client: httpx.AsyncClient, founder: Account, site: str) -> None:
    project = await create_project(client, founder)
    team = (await client.post("/api/v1/teams", json={"name": "T"}, headers=founder.headers)).json()["data"]
    notification = (
        await client.post(f"{site}/notifications", headers=founder.headers, json={"name": "N", "type": "announcement"})
    ).json()["data"]
    template = (
        await client.post(f"{site}/templates", headers=founder.headers, json={"name": "T", "message": "{{city}}"})
    ).json()["data"]
    integration = (
        await client.post(
            "/api/v1/integrations",
            headers=founder.headers,
            json={"provider": "stripe", "name": "S", "credentials": {"apiKey": "sk_test_x"}, "test": False},
        )
    ).json()["data"]
    stripe = {"provider": "stripe", "credentials": {"apiKey": "sk_test_x"}, "test": False}
    calls: list[tuple[str, str, dict[str, Any], str]] = [
        ("PATCH", "/api/v1/users/me", {}, "name"),
        ("POST", "/api/v1/organizations", {}, "name"),
        ("PATCH", "/api/v1/organization", {}, "name"),
        ("POST", "/api/v1/projects", {}, "name"),
        ("PATCH", f"/api/v1/projects/{project['id']}", {}, "name"),
        ("POST", "/api/v1/teams", {}, "name"),
        ("PATCH", f"/api/v1/teams/{team['id']}", {}, "name"),
        ("POST", "/api/v1/api-keys", {}, "name"),
        ("POST", "/api/v1/sites", {"domain": f"{secrets.token_hex(6)}.example"}, "name"),
        ("PATCH", site, {}, "name"),
        ("POST", f"{site}/templates", {"message": "{{city}}"}, "name"),
        ("PATCH", f"{site}/templates/{template['id']}", {}, "name"),
        ("POST", f"{site}/notifications", {"type": "announcement"}, "name"),
        ("PATCH", f"{site}/notifications/{notification['id']}", {}, "name"),
        ("POST", "/api/v1/integrations", stripe, "name"),
        ("PATCH", f"/api/v1/integrations/{integration['id']}", {}, "name"),
        ("POST", "/api/v1/generate", {"rows": 1, "columns": [{"name": "n", "type": "int"}]}, "name"),
        ("POST", "/api/v1/export", {"source": {"type": "jobs"}}, "name"),
    ]
    for blank in ("\u200b\u200b", "   ", "\u3000"):
        for method, path, body, field in calls:
            response = await client.request(method, path, json={**body, field: blank}, headers=founder.headers)
            assert response.status_code == 422, (method, path, blank, response.text)
            error = response.json()["error"]
            assert error["details"][0]["field"].endswith(field), (method, path, error)
        events = await client.post(
            f"{site}/events", headers=founder.headers, json={"events": [{"type": "custom", "name": blank}]}
        )
        assert events.status_code == 422, events.text
        upload = await client.post(
            "/api/v1/upload", params={"name": blank}, headers=founder.headers, files={"file": ("a.csv", b"a\n1\n")}
        )
        assert upload.status_code == 422, upload.text
        for body in ({"name": blank}, {"organizationName": blank}):
            response = await client.post(
                "/api/v1/auth/signup",
                json={
                    "email": f"{secrets.token_hex(5)}@example.com",
                    "password": "a-Long-and-unusual-passphrase-42",
                    **body,
                },
            )
            assert response.status_code == 422, response.text
    # Names that show something, in any script, still work.
    assert (await signup(client, org_name="\u200bAcme 東京")).org_id
