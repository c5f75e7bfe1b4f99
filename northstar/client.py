"""The command line's side of a running Northstar API: stored profiles, and requests that keep their tokens fresh.

``northstar login`` keeps a profile (the API's URL, the user's tokens and the organization the commands act in) in
``$XDG_CONFIG_HOME/northstar/profiles.json`` (``~/.config/northstar/`` without it), readable by its owner only: the
file is 0600 in a 0700 directory, and is replaced whole, never left half written. An access token lives minutes;
one about to expire, or one the API refuses, is replaced by refreshing with the refresh token. Refresh tokens are
single use (a used one ends the session), so a refresh happens under a lock on the profiles, and a command that
finds the profile already refreshed by another one takes the new tokens instead of spending the old one again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import orjson

DEFAULT_PROFILE = "default"
REFRESH_MARGIN_SECONDS = 60  # refresh a token that expires within this, rather than have a request refused
TIMEOUT_SECONDS = 30.0


class ClientError(Exception):
    """What the user is told, in one line (no traceback)."""


class SessionEnded(ClientError):
    """The refresh token was refused: logged out, the password changed, or the session expired."""


@dataclass(frozen=True)
class Profile:
    url: str
    email: str
    org_id: str
    access_token: str
    refresh_token: str
    expires_at: float  # unix time


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "northstar"


class ProfileStore:
    """The profiles file: read and written whole, 0600, under an exclusive lock while a profile changes."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or config_dir()
        self.path = self.directory / "profiles.json"

    def _ensure_directory(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory.chmod(0o700)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self._ensure_directory()
        descriptor = os.open(self.directory / "profiles.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock

    def _read(self) -> dict[str, Any]:
        try:
            document = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except orjson.JSONDecodeError:
            raise ClientError(f"{self.path} is not readable JSON: remove it and log in again") from None
        return document if isinstance(document, dict) else {}

    def _write(self, document: dict[str, Any]) -> None:
        self._ensure_directory()
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(descriptor, 0o600)  # also when the file was there before, with other permissions
        with os.fdopen(descriptor, "wb") as out:
            out.write(orjson.dumps(document, option=orjson.OPT_INDENT_2))
        os.replace(temporary, self.path)

    def get(self, name: str) -> Profile | None:
        found = self._read().get(name)
        if not isinstance(found, dict):
            return None
        try:
            return Profile(**found)
        except TypeError:
            raise ClientError(f"The profile {name!r} in {self.path} is damaged: log in again") from None

    def save(self, name: str, profile: Profile) -> None:
        with self.locked():
            self.save_locked(name, profile)

    def save_locked(self, name: str, profile: Profile) -> None:
        """``save``, by a caller that holds ``locked()`` already."""
        self._write({**self._read(), name: asdict(profile)})

    def remove(self, name: str) -> bool:
        with self.locked():
            document = self._read()
            if name not in document:
                return False
            del document[name]
            self._write(document)
            return True


def _tokens(data: Any) -> dict[str, Any]:
    """The token pair of a login, MFA or refresh answer (nested under ``tokens`` or not)."""
    pair = data.get("tokens") or data if isinstance(data, dict) else None
    if not isinstance(pair, dict) or not {"accessToken", "refreshToken", "expiresIn", "orgId"} <= pair.keys():
        raise ClientError("The server's answer carries no tokens: is the URL a Northstar API?")
    return pair


def _answer(response: httpx.Response) -> Any:
    """The envelope's body (None for a 204), or its error as a ``ClientError``."""
    if response.status_code == 204:
        return None
    try:
        body = response.json()
    except ValueError:
        raise ClientError(
            f"{response.request.url} answered {response.status_code} without JSON: is the URL a Northstar API?"
        ) from None
    if response.is_success:
        return body
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    raise ClientError(f"{message or 'The request failed'} ({response.status_code})")


def _http(url: str) -> httpx.Client:
    return httpx.Client(base_url=url.rstrip("/"), timeout=TIMEOUT_SECONDS, headers={"User-Agent": "northstar-cli"})


def _send(http: httpx.Client, method: str, path: str, **options: Any) -> httpx.Response:
    try:
        return http.request(method, path, **options)
    except httpx.HTTPError as exc:
        raise ClientError(f"Cannot reach {http.base_url}: {exc or type(exc).__name__}") from None


def _profile_of(url: str, email: str, pair: dict[str, Any]) -> Profile:
    return Profile(
        url=url.rstrip("/"),
        email=email,
        org_id=str(pair["orgId"]),
        access_token=pair["accessToken"],
        refresh_token=pair["refreshToken"],
        expires_at=time.time() + float(pair["expiresIn"]),
    )


class LoginChallenge(Exception):
    """The account uses MFA: a code is needed to finish logging in."""

    def __init__(self, mfa_token: str) -> None:
        super().__init__("a code from the authenticator app is needed")
        self.mfa_token = mfa_token


def login(url: str, *, email: str, password: str, org_id: str | None = None) -> Profile:
    """Log in with a password; raises ``LoginChallenge`` when the account asks for an MFA code."""
    with _http(url) as http:
        body = {"email": email, "password": password, **({"orgId": org_id} if org_id else {})}
        data = _answer(_send(http, "POST", "/api/v1/auth/login", json=body))["data"]
        if data.get("mfaRequired"):
            raise LoginChallenge(str(data.get("mfaToken")))
        return _profile_of(url, email, _tokens(data))


def verify_mfa(url: str, *, email: str, mfa_token: str, code: str) -> Profile:
    with _http(url) as http:
        data = _answer(_send(http, "POST", "/api/v1/auth/mfa/verify", json={"mfaToken": mfa_token, "code": code}))
        return _profile_of(url, email, _tokens(data["data"]))


class ApiClient:
    """Requests as a stored profile's user, in its organization (or ``org_id``), refreshing its tokens as needed."""

    def __init__(self, store: ProfileStore, name: str = DEFAULT_PROFILE, *, org_id: str | None = None) -> None:
        profile = store.get(name)
        if profile is None:
            raise ClientError(
                f"Not logged in{'' if name == DEFAULT_PROFILE else f' as {name!r}'}: run `northstar login` first"
            )
        self.store, self.name, self.profile = store, name, profile
        self.org_id = org_id or profile.org_id
        self.http = _http(profile.url)

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={key: value for key, value in params.items() if value is not None})

    def request(self, method: str, path: str, **options: Any) -> Any:
        """The answer's envelope; an expired or refused access token is refreshed once and the request sent again."""
        if self.profile.expires_at - time.time() < REFRESH_MARGIN_SECONDS:
            self.refresh()
        response = self._authorized(method, path, **options)
        if response.status_code == 401:
            self.refresh(refused=self.profile.access_token)
            response = self._authorized(method, path, **options)
        return _answer(response)

    def _authorized(self, method: str, path: str, **options: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.profile.access_token}", "X-Org-Id": self.org_id}
        return _send(self.http, method, path, headers=headers, **options)

    def refresh(self, *, refused: str | None = None) -> None:
        """New tokens for the profile, unless another command already got them (then those are used)."""
        with self.store.locked():
            stored = self.store.get(self.name)
            if (
                stored is not None
                and stored.refresh_token != self.profile.refresh_token
                and stored.access_token != refused
                and stored.expires_at - time.time() >= REFRESH_MARGIN_SECONDS
            ):
                self.profile = stored
                return
            current = stored or self.profile
            response = _send(self.http, "POST", "/api/v1/auth/refresh", json={"refreshToken": current.refresh_token})
            if response.status_code == 401:
                raise SessionEnded(
                    "The session has ended (logged out, or the password changed): run `northstar login` again"
                )
            pair = _tokens(_answer(response)["data"])
            self.profile = replace(
                current,
                access_token=pair["accessToken"],
                refresh_token=pair["refreshToken"],
                expires_at=time.time() + float(pair["expiresIn"]),
            )
            self.store.save_locked(self.name, self.profile)

    def logout(self) -> None:
        """End the session on the server (its refresh tokens with it); one that already ended is left as it is."""
        with contextlib.suppress(SessionEnded):
            self.request("POST", "/api/v1/auth/logout")
