"""Links the platform hands out (invitations, embed snippets, downloads) lead where it really listens."""

from __future__ import annotations

import pytest

from northstar.cli import _with_bind
from northstar.settings import HttpSettings, Settings


@pytest.fixture(autouse=True)
def unconfigured(monkeypatch: pytest.MonkeyPatch) -> None:
    """No public URL in the environment, and whatever a test exports there is undone after it."""
    monkeypatch.setenv("NORTHSTAR_PUBLIC_URL", "")
    monkeypatch.delenv("NORTHSTAR_PUBLIC_URL")


def test_the_public_url_is_the_listening_address_unless_configured() -> None:
    assert Settings(http=HttpSettings(port=8765)).public_url == "http://127.0.0.1:8765"
    assert Settings(http=HttpSettings(host="0.0.0.0", port=80)).public_url == "http://127.0.0.1:80"  # noqa: S104
    assert Settings(http=HttpSettings(host="::1")).public_url == "http://[::1]:8000"
    assert Settings(public_url="https://api.example.com").public_url == "https://api.example.com"


def test_a_port_given_on_the_command_line_reaches_the_links_of_the_api_and_its_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _with_bind(Settings(), None, 9123)
    assert settings.public_url == "http://127.0.0.1:9123"
    assert Settings().public_url == "http://127.0.0.1:9123"  # what a worker it starts reads from the environment
    monkeypatch.setenv("NORTHSTAR_PUBLIC_URL", "https://api.example.com")
    assert _with_bind(Settings(), None, 9124).public_url == "https://api.example.com"
