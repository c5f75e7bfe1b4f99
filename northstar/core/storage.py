"""Object storage for uploads, exports, video reports and archives: a local directory or any S3 store.

Blobs never go into PostgreSQL; rows keep the object key. One small async interface hides the backend
so a laptop runs on a directory (``data_dir/objects``) and production on AWS S3, MinIO or R2
(``STORAGE_URL=s3://bucket/prefix``) with no code change.

Keys are relative, ``/``-separated paths such as ``org/<uuid>/exports/x.csv``. The same key rules
apply to every backend, so a key that works in development works in production; keys that could
escape the local root (``..``, absolute paths, NUL and other control characters) raise ``ValueError``.

Blocking work (file I/O, boto3 calls) runs in worker threads via ``anyio.to_thread`` so a large
upload never stalls the event loop.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import os
import re
import tempfile
import threading
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import anyio
import anyio.to_thread
import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from northstar.core.crypto import signed_until

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "KeyNotFound",
    "LocalObjectStore",
    "ObjectStore",
    "S3ObjectStore",
    "open_object_store",
    "validate_key",
]

DEFAULT_CHUNK_SIZE = 1 << 20
MAX_KEY_BYTES = 1024  # S3's limit; enforced everywhere so local and S3 accept the same keys
MAX_SIGNED_URL_SECONDS = 7 * 24 * 3600  # SigV4 presigned URLs cannot live longer
MIN_PART_SIZE = 5 << 20  # S3 rejects non-final multipart parts smaller than 5 MiB
DEFAULT_PART_SIZE = 8 << 20
MAX_PARTS = 10_000
PING_TIMEOUT_SECONDS = 5.0
_LOCAL_WRITE_BUFFER = 1 << 20  # coalesce small chunks so a stream costs few thread hops
_DEFAULT_CONTENT_TYPE = "application/octet-stream"
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


class KeyNotFound(Exception):
    """The object does not exist; callers map it to a 404 instead of leaking a backend error."""

    def __init__(self, key: str) -> None:
        super().__init__(f"object not found: {key!r}")
        self.key = key


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key, else raise ``ValueError``.

    Rejecting ``.``/``..``/empty segments, absolute paths, backslashes and control characters keeps
    the local backend inside its root and keeps keys portable between backends.
    """
    if not isinstance(key, str) or not key:
        raise ValueError("object key must be a non-empty string")
    if _CONTROL_CHARS.search(key):
        raise ValueError(f"object key must not contain NUL or control characters: {key!r}")
    if "\\" in key:
        raise ValueError(f"object key must use '/' separators, not backslashes: {key!r}")
    if key.startswith("/"):
        raise ValueError(f"object key must be relative, not absolute: {key!r}")
    if any(segment in ("", ".", "..") for segment in key.split("/")):
        raise ValueError(f"object key must not contain empty, '.' or '..' segments: {key!r}")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"object key is longer than {MAX_KEY_BYTES} bytes")
    return key


def _check_chunk_size(chunk_size: int) -> None:
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")


def _check_expiry(expires_seconds: int) -> None:
    if not 1 <= expires_seconds <= MAX_SIGNED_URL_SECONDS:
        raise ValueError(f"expires_seconds must be between 1 and {MAX_SIGNED_URL_SECONDS}")


class ObjectStore(abc.ABC):
    """A flat key -> bytes store; the only storage interface domain modules see.

    ``put_*`` replace an existing object atomically: readers see the old or the new content, never a
    partial write. ``delete`` is idempotent. ``iter_chunks`` validates its arguments immediately but,
    being a lazy stream, raises ``KeyNotFound`` on the first ``__anext__``; a handler that must answer
    404 before sending headers should call ``exists`` or pull the first chunk before responding.
    """

    @abc.abstractmethod
    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Store a small object held in memory."""

    @abc.abstractmethod
    async def put_stream(self, key: str, chunks: AsyncIterable[bytes], content_type: str | None = None) -> int:
        """Store an object of unknown length with bounded memory; return its size in bytes."""

    @abc.abstractmethod
    async def get_bytes(self, key: str) -> bytes:
        """Read a whole object; only for objects known to be small."""

    @abc.abstractmethod
    def iter_chunks(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Stream an object in chunks of at most ``chunk_size`` bytes."""

    @abc.abstractmethod
    async def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove an object; deleting a missing key is not an error (retries stay safe)."""

    @abc.abstractmethod
    async def signed_url(self, key: str, expires_seconds: int = 3600) -> str | None:
        """A time-limited download URL, or None when the caller must stream through the API."""

    @abc.abstractmethod
    async def ping(self) -> bool:
        """Cheap reachability check for health endpoints; never raises."""


# --------------------------------------------------------------------------------------------- local


def _open_temp(path: Path) -> tuple[IO[bytes], Path]:
    """A private temp file next to ``path``: same filesystem, so ``os.replace`` is atomic."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".upload-", suffix=".tmp")
    return os.fdopen(fd, "wb"), Path(name)


def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself; best effort because some filesystems cannot fsync a directory."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _commit_temp(handle: IO[bytes], temp: Path, path: Path) -> None:
    """fsync before rename so a crash leaves the old object or the whole new one, never a stub."""
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
    os.replace(temp, path)
    _fsync_dir(path.parent)


def _discard_temp(handle: IO[bytes], temp: Path) -> None:
    handle.close()
    temp.unlink(missing_ok=True)


def _write_atomic(path: Path, data: bytes) -> None:
    handle, temp = _open_temp(path)
    try:
        handle.write(data)
        _commit_temp(handle, temp, path)
    except BaseException:
        _discard_temp(handle, temp)
        raise


def _read_file(path: Path, key: str) -> bytes:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise KeyNotFound(key) from None


def _open_for_read(path: Path, key: str) -> IO[bytes]:
    try:
        return path.open("rb")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise KeyNotFound(key) from None


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
        path.unlink()


class LocalObjectStore(ObjectStore):
    """Objects as files under ``root``; the zero-dependency default for one machine.

    Files are created mode 0600 (tenant data is read only by the service). Content types are not
    recorded: local objects are streamed through the API, which sets the type from its own row.
    A key cannot be both an object and a prefix of another key here (``a`` and ``a/b``), because
    ``a`` would have to be a file and a directory; keep keys hierarchical by convention.
    """

    def __init__(self, root: Path) -> None:
        # Runs once at startup, so the blocking mkdir here is fine; ping() then works on a fresh install.
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalObjectStore(root={str(self.root)!r})"

    def _path(self, key: str) -> Path:
        validate_key(key)
        path = self.root.joinpath(*key.split("/"))
        # Belt and braces: validate_key already forbids every way out of the root lexically.
        if os.path.commonpath([self.root, path]) != str(self.root):
            raise ValueError(f"object key escapes the storage root: {key!r}")
        return path

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        path = self._path(key)
        await anyio.to_thread.run_sync(_write_atomic, path, data)

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes], content_type: str | None = None) -> int:
        path = self._path(key)
        handle, temp = await anyio.to_thread.run_sync(_open_temp, path)
        size = 0
        pending = bytearray()
        try:
            async for chunk in chunks:
                size += len(chunk)
                pending += chunk
                if len(pending) >= _LOCAL_WRITE_BUFFER:
                    await anyio.to_thread.run_sync(handle.write, pending)
                    pending.clear()
            if pending:
                await anyio.to_thread.run_sync(handle.write, pending)
            await anyio.to_thread.run_sync(_commit_temp, handle, temp, path)
        except BaseException:
            # Shielded so a cancelled request still removes its half-written temp file.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_discard_temp, handle, temp)
            raise
        return size

    async def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        return await anyio.to_thread.run_sync(_read_file, path, key)

    def iter_chunks(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> AsyncIterator[bytes]:
        _check_chunk_size(chunk_size)
        return self._iter_chunks(self._path(key), key, chunk_size)

    async def _iter_chunks(self, path: Path, key: str, chunk_size: int) -> AsyncIterator[bytes]:
        handle = await anyio.to_thread.run_sync(_open_for_read, path, key)
        try:
            while chunk := await anyio.to_thread.run_sync(handle.read, chunk_size):
                yield chunk
        finally:
            handle.close()

    async def exists(self, key: str) -> bool:
        path = self._path(key)
        return await anyio.to_thread.run_sync(path.is_file)

    async def delete(self, key: str) -> None:
        # Empty parent directories are left in place: pruning them would race a concurrent put
        # that has just created the directory for its temp file.
        path = self._path(key)
        await anyio.to_thread.run_sync(_unlink, path)

    async def signed_url(self, key: str, expires_seconds: int = 3600) -> str | None:
        self._path(key)
        _check_expiry(expires_seconds)
        return None

    async def ping(self) -> bool:
        def check() -> bool:
            return self.root.is_dir() and os.access(self.root, os.W_OK | os.X_OK)

        try:
            return await anyio.to_thread.run_sync(check)
        except OSError:
            return False


# ------------------------------------------------------------------------------------------------ s3


def _is_not_found(exc: ClientError) -> bool:
    """HEAD answers a bare 404 (no body to carry a code); GET answers NoSuchKey."""
    code = exc.response.get("Error", {}).get("Code")
    return code in {"NoSuchKey", "NotFound", "404"}


_SESSION_LOCK = threading.Lock()


@functools.cache
def _boto_session() -> boto3.session.Session:
    """One session for every store: it keeps the service models it has read, so a store opens in about a third of
    the time a fresh session takes. Sessions are not safe to make clients from in two threads at once: the lock."""
    return boto3.session.Session()


class S3ObjectStore(ObjectStore):
    """Objects in an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2) under an optional prefix.

    Credentials come from boto3's standard chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
    profiles, instance or task roles); nothing secret is ever part of ``STORAGE_URL``.

    ``put_stream`` uses a multipart upload rather than ``upload_fileobj`` from a spooled temp file:
    each part goes to S3 as soon as it is full, so memory stays bounded by about two parts, no local
    disk is needed (API containers often have little), and the upload finishes right after the last
    chunk arrives instead of only starting then. Streams smaller than one part become a single
    PutObject. Parts start at ``part_size`` (>= 5 MiB, S3's minimum) and double every 1000 parts, so a
    stream of unknown length reaches S3's 5 TiB object limit within its 10,000-part limit while
    objects under ~8 GB keep the small part size. A failed or cancelled upload is aborted; a bucket
    lifecycle rule ``AbortIncompleteMultipartUpload`` is the backstop for a process that dies
    mid-upload.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        *,
        part_size: int = DEFAULT_PART_SIZE,
    ) -> None:
        if not _BUCKET_NAME.match(bucket):
            raise ValueError(f"invalid S3 bucket name: {bucket!r}")
        prefix = prefix.strip("/")
        if prefix:
            try:
                validate_key(prefix)
            except ValueError as exc:
                raise ValueError(f"invalid S3 prefix: {exc}") from None
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum part size)")
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.part_size = part_size
        config = Config(
            signature_version="s3v4",  # SigV2 presigned URLs are deprecated and refused by newer regions
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=5,
            read_timeout=60,
            # Self-hosted endpoints (MinIO, moto, IP addresses) rarely have wildcard DNS for buckets.
            s3={"addressing_style": "path"} if endpoint_url else None,
        )
        with _SESSION_LOCK:
            self._client: S3Client = _boto_session().client(
                "s3", endpoint_url=endpoint_url, region_name=region, config=config
            )

    def __repr__(self) -> str:
        return f"S3ObjectStore(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def _key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _part_size(self, part_number: int) -> int:
        return self.part_size << ((part_number - 1) // 1000)

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        s3_key = self._key(key)
        await anyio.to_thread.run_sync(self._put_object, s3_key, data, content_type)

    def _put_object(self, s3_key: str, data: bytes, content_type: str | None) -> None:
        self._client.put_object(
            Bucket=self.bucket,
            Key=s3_key,
            Body=data,
            ContentType=content_type or _DEFAULT_CONTENT_TYPE,
        )

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes], content_type: str | None = None) -> int:
        s3_key = self._key(key)
        buffer = bytearray()
        size = 0
        upload_id: str | None = None
        parts: list[CompletedPartTypeDef] = []
        try:
            async for chunk in chunks:
                size += len(chunk)
                buffer += chunk
                while len(buffer) >= (part_size := self._part_size(len(parts) + 1)):
                    if upload_id is None:
                        upload_id = await anyio.to_thread.run_sync(self._create_multipart, s3_key, content_type)
                    with memoryview(buffer) as view:  # one copy out, not two
                        part = bytes(view[:part_size])
                    del buffer[:part_size]
                    parts.append(await self._upload_part(s3_key, upload_id, len(parts) + 1, part))
            if upload_id is None:
                await anyio.to_thread.run_sync(self._put_object, s3_key, bytes(buffer), content_type)
                return size
            if buffer:  # the last part may be smaller than 5 MiB
                parts.append(await self._upload_part(s3_key, upload_id, len(parts) + 1, bytes(buffer)))
                buffer.clear()
            complete = functools.partial(
                self._client.complete_multipart_upload,
                Bucket=self.bucket,
                Key=s3_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
            await anyio.to_thread.run_sync(complete)
        except BaseException:
            if upload_id is not None:
                # Shielded so a cancelled request still frees the parts S3 would otherwise bill for.
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self._abort_multipart, s3_key, upload_id)
            raise
        return size

    def _create_multipart(self, s3_key: str, content_type: str | None) -> str:
        response = self._client.create_multipart_upload(
            Bucket=self.bucket,
            Key=s3_key,
            ContentType=content_type or _DEFAULT_CONTENT_TYPE,
            ChecksumAlgorithm="CRC32",  # per-part integrity, checked again by S3 on completion
        )
        return response["UploadId"]

    async def _upload_part(self, s3_key: str, upload_id: str, number: int, data: bytes) -> CompletedPartTypeDef:
        if number > MAX_PARTS:
            raise ValueError(f"object exceeds S3's limit of {MAX_PARTS} parts")

        def upload() -> CompletedPartTypeDef:
            response = self._client.upload_part(
                Bucket=self.bucket,
                Key=s3_key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                ChecksumAlgorithm="CRC32",
            )
            part: CompletedPartTypeDef = {"ETag": response["ETag"], "PartNumber": number}
            if "ChecksumCRC32" in response:
                part["ChecksumCRC32"] = response["ChecksumCRC32"]
            return part

        return await anyio.to_thread.run_sync(upload)

    def _abort_multipart(self, s3_key: str, upload_id: str) -> None:
        # Best effort: the caller re-raises the original error, which matters more than this one.
        with contextlib.suppress(BotoCoreError, ClientError):
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=s3_key, UploadId=upload_id)

    async def get_bytes(self, key: str) -> bytes:
        s3_key = self._key(key)

        def read() -> bytes:
            body = self._get_body(s3_key, key)
            try:
                return body.read()
            finally:
                body.close()

        return await anyio.to_thread.run_sync(read)

    def _get_body(self, s3_key: str, key: str) -> StreamingBody:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=s3_key)
        except ClientError as exc:
            if _is_not_found(exc):
                raise KeyNotFound(key) from None
            raise
        return response["Body"]

    def iter_chunks(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> AsyncIterator[bytes]:
        _check_chunk_size(chunk_size)
        return self._iter_chunks(self._key(key), key, chunk_size)

    async def _iter_chunks(self, s3_key: str, key: str, chunk_size: int) -> AsyncIterator[bytes]:
        body = await anyio.to_thread.run_sync(self._get_body, s3_key, key)
        try:
            while chunk := await anyio.to_thread.run_sync(body.read, chunk_size):
                yield chunk
        finally:
            body.close()  # returns the connection to the pool, or drops it if unread data remains

    async def exists(self, key: str) -> bool:
        s3_key = self._key(key)

        def head() -> bool:
            try:
                self._client.head_object(Bucket=self.bucket, Key=s3_key)
            except ClientError as exc:
                if _is_not_found(exc):
                    return False
                raise
            return True

        return await anyio.to_thread.run_sync(head)

    async def delete(self, key: str) -> None:
        s3_key = self._key(key)
        delete = functools.partial(self._client.delete_object, Bucket=self.bucket, Key=s3_key)
        await anyio.to_thread.run_sync(delete)

    async def signed_url(self, key: str, expires_seconds: int = 3600) -> str | None:
        """Presigned GET, so large downloads go straight from S3 to the client, not through the API.

        Signing is local computation, but resolving credentials may block (instance metadata), hence
        the thread. The URL does not check that the key exists; a missing key answers 404 from S3.
        """
        s3_key = self._key(key)
        _check_expiry(expires_seconds)
        sign = functools.partial(
            self._client.generate_presigned_url,
            "get_object",
            Params={"Bucket": self.bucket, "Key": s3_key},
            ExpiresIn=expires_seconds,
        )
        return await anyio.to_thread.run_sync(sign)

    async def ping(self) -> bool:
        """HEAD the bucket; gives up after a few seconds so a health check never hangs on retries."""
        head = functools.partial(self._client.head_bucket, Bucket=self.bucket)
        with anyio.move_on_after(PING_TIMEOUT_SECONDS):
            try:
                await anyio.to_thread.run_sync(head, abandon_on_cancel=True)
            except (BotoCoreError, ClientError):
                return False
            return True
        return False


# ----------------------------------------------------------------------------------------- factory

_URL_FORMS = "expected file:///absolute/path, s3://bucket/optional/prefix or a filesystem path"


def open_object_store(storage_url: str | None, *, data_dir: Path, s3_endpoint_url: str | None = None) -> ObjectStore:
    """Build the store ``STORAGE_URL`` names; unset or empty means ``data_dir/objects``.

    Error messages name the scheme but never echo the URL, which might carry credentials.
    """
    if storage_url is None or not storage_url.strip():
        return LocalObjectStore(data_dir / "objects")
    url = storage_url.strip()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "":
        return LocalObjectStore(Path(url))
    if scheme not in ("file", "s3"):
        raise ValueError(f"STORAGE_URL: unsupported scheme {scheme!r}; {_URL_FORMS}")
    if parts.query or parts.fragment:
        raise ValueError(f"STORAGE_URL: {scheme}:// URLs take no query string or fragment; {_URL_FORMS}")
    if scheme == "file":
        path = unquote(parts.path)
        if parts.netloc not in ("", "localhost") or not path.startswith("/"):
            raise ValueError(f"STORAGE_URL: file URLs need an absolute path (file:///abs/path); {_URL_FORMS}")
        return LocalObjectStore(Path(path))
    if "@" in parts.netloc or ":" in parts.netloc:
        raise ValueError(
            "STORAGE_URL: s3:// URLs hold only bucket and prefix; pass credentials through the AWS "
            "environment and the endpoint through NORTHSTAR_S3_ENDPOINT_URL"
        )
    if not parts.netloc:
        raise ValueError(f"STORAGE_URL: s3:// URL has no bucket; {_URL_FORMS}")
    try:
        return S3ObjectStore(parts.netloc, unquote(parts.path), endpoint_url=s3_endpoint_url)
    except ValueError as exc:
        raise ValueError(f"STORAGE_URL: {exc}") from None


async def expiring_link(
    store: ObjectStore,
    key: str,
    *,
    ttl_seconds: int,
    secret: str,
    purpose: str,
    org_id: uuid.UUID,
    subject: object,
    route: str,
) -> str:
    """An expiring link to a stored object: the store's own presigned URL (S3), else ``route`` signed by us for
    ``purpose`` (its handler checks it with ``crypto.check_signed`` and serves the object)."""
    presigned = await store.signed_url(key, expires_seconds=ttl_seconds)
    if presigned:
        return presigned
    return f"{route}?{signed_until(secret, purpose, org_id=org_id, subject=subject, ttl_seconds=ttl_seconds)}"
