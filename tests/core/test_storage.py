"""Object storage: the same behaviour tests over a local directory and a real S3 endpoint (moto server)."""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest

from northstar.core.storage import (
    MIN_PART_SIZE,
    KeyNotFound,
    LocalObjectStore,
    ObjectStore,
    S3ObjectStore,
    open_object_store,
)
from tests.conftest import BUCKET, Moto

INVALID_KEYS = [
    "",
    "../escape.txt",
    "org/../../escape.txt",
    "org/./x.txt",
    "org//x.txt",
    "org/",
    "/etc/passwd",
    "org/a\x00b.txt",
    "org/a\nb.txt",
    "org\\..\\escape.txt",
    "x" * 1025,
]


@pytest.fixture(scope="module")
def s3_store(moto: Moto) -> S3ObjectStore:
    """One client for the module (building a boto3 client parses the S3 model, ~0.3 s); every test
    uses fresh random keys. The smallest legal part size keeps the multipart payloads small."""
    return S3ObjectStore(BUCKET, f"t/{uuid.uuid4().hex}", endpoint_url=moto.endpoint_url, part_size=MIN_PART_SIZE)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects")
    s3: S3ObjectStore = request.getfixturevalue("s3_store")
    return s3


async def stream(data: bytes, sizes: list[int]) -> AsyncIterator[bytes]:
    """Yield ``data`` in chunks cycling through ``sizes`` (uneven, like a real network stream)."""
    offset = 0
    index = 0
    while offset < len(data):
        size = sizes[index % len(sizes)]
        yield data[offset : offset + size]
        offset += size
        index += 1


async def failing_stream(data: bytes, chunk: int) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), chunk):
        yield data[offset : offset + chunk]
    raise ConnectionResetError("client went away")


def tree(root: Path) -> list[str]:
    """Every file and directory under ``root``, relative, sorted (temp files included)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def key() -> str:
    return f"org/{uuid.uuid4()}/exports/report.csv"


async def test_put_and_get_bytes_roundtrip_and_overwrite(store: ObjectStore) -> None:
    k = key()
    await store.put_bytes(k, b"id,name\n1,ada\n", content_type="text/csv")
    assert await store.get_bytes(k) == b"id,name\n1,ada\n"
    await store.put_bytes(k, b"")
    assert await store.get_bytes(k) == b""


async def test_put_stream_multi_chunk_payload(store: ObjectStore) -> None:
    # Two full 5 MiB parts plus a short last part on S3; many buffered writes locally.
    payload = os.urandom(2 * MIN_PART_SIZE + 123_457)
    k = key()
    size = await store.put_stream(k, stream(payload, [65_536, 1_000_003, 7, 300_000]))
    assert size == len(payload)
    assert hashlib.sha256(await store.get_bytes(k)).digest() == hashlib.sha256(payload).digest()


async def test_put_stream_small_and_empty(store: ObjectStore) -> None:
    k = key()
    assert await store.put_stream(k, stream(b"hello world", [3])) == 11
    assert await store.get_bytes(k) == b"hello world"
    assert await store.put_stream(k, stream(b"", [1])) == 0
    assert await store.exists(k)
    assert await store.get_bytes(k) == b""


async def test_iter_chunks_respects_chunk_size(store: ObjectStore) -> None:
    payload = os.urandom(300_001)
    k = key()
    await store.put_bytes(k, payload)
    chunks = [chunk async for chunk in store.iter_chunks(k, chunk_size=65_536)]
    assert b"".join(chunks) == payload
    assert all(0 < len(chunk) <= 65_536 for chunk in chunks)
    assert len(chunks) >= 5
    assert b"".join([chunk async for chunk in store.iter_chunks(k)]) == payload


async def test_exists_and_delete_are_idempotent(store: ObjectStore) -> None:
    k = key()
    assert not await store.exists(k)
    await store.put_bytes(k, b"x")
    assert await store.exists(k)
    await store.delete(k)
    assert not await store.exists(k)
    await store.delete(k)  # deleting again is not an error


async def test_missing_key_raises_key_not_found(store: ObjectStore) -> None:
    k = key()
    with pytest.raises(KeyNotFound) as info:
        await store.get_bytes(k)
    assert info.value.key == k
    with pytest.raises(KeyNotFound):
        async for _ in store.iter_chunks(k):
            pass
    await store.put_bytes(k, b"x")
    await store.delete(k)
    with pytest.raises(KeyNotFound):
        await store.get_bytes(k)


async def test_a_prefix_of_a_key_is_not_an_object(store: ObjectStore) -> None:
    k = key()
    await store.put_bytes(k, b"x")
    prefix = k.rsplit("/", 1)[0]
    assert not await store.exists(prefix)
    with pytest.raises(KeyNotFound):
        await store.get_bytes(prefix)
    await store.delete(prefix)
    assert await store.get_bytes(k) == b"x"


@pytest.mark.parametrize("bad", INVALID_KEYS)
async def test_invalid_keys_are_rejected_by_every_operation(store: ObjectStore, bad: str) -> None:
    with pytest.raises(ValueError, match="object key"):
        await store.put_bytes(bad, b"x")
    with pytest.raises(ValueError, match="object key"):
        await store.put_stream(bad, stream(b"x", [1]))
    with pytest.raises(ValueError, match="object key"):
        await store.get_bytes(bad)
    with pytest.raises(ValueError, match="object key"):
        store.iter_chunks(bad)  # rejected eagerly, before any iteration
    with pytest.raises(ValueError, match="object key"):
        await store.exists(bad)
    with pytest.raises(ValueError, match="object key"):
        await store.delete(bad)
    with pytest.raises(ValueError, match="object key"):
        await store.signed_url(bad)


async def test_local_traversal_writes_nothing_outside_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    store = LocalObjectStore(root)
    for bad in ("../outside.txt", "a/../../outside.txt", str(tmp_path / "outside.txt")):
        with pytest.raises(ValueError, match="object key"):
            await store.put_bytes(bad, b"pwned")
    assert tree(tmp_path) == ["root"]


async def test_failed_stream_keeps_previous_object_and_leaves_no_debris(
    store: ObjectStore, request: pytest.FixtureRequest
) -> None:
    k = key()
    await store.put_bytes(k, b"previous")
    with pytest.raises(ConnectionResetError):
        await store.put_stream(k, failing_stream(os.urandom(MIN_PART_SIZE + 10), 1 << 20))
    assert await store.get_bytes(k) == b"previous"
    if isinstance(store, LocalObjectStore):
        directory = k.rsplit("/", 1)[0]
        assert [p for p in tree(store.root) if p.startswith(f"{directory}/")] == [k]  # temp file removed
    else:
        assert isinstance(store, S3ObjectStore)
        moto: Moto = request.getfixturevalue("moto")
        uploads = moto.client.list_multipart_uploads(Bucket=BUCKET, Prefix=store.prefix)
        assert uploads.get("Uploads", []) == []  # the multipart upload was aborted


async def test_cancelled_stream_cleans_up(store: ObjectStore, request: pytest.FixtureRequest) -> None:
    """A client disconnect cancels the request mid-upload: no object, no temp file, no open upload."""

    async def stalls_after_a_part() -> AsyncIterator[bytes]:
        yield os.urandom(MIN_PART_SIZE + 1)
        await anyio.sleep_forever()

    k = key()
    with anyio.move_on_after(0.5) as scope:
        await store.put_stream(k, stalls_after_a_part())
    assert scope.cancelled_caught
    assert not await store.exists(k)
    if isinstance(store, LocalObjectStore):
        assert not [p for p in tree(store.root) if p.startswith(k.rsplit("/", 1)[0] + "/")]
    else:
        assert isinstance(store, S3ObjectStore)
        moto: Moto = request.getfixturevalue("moto")
        uploads = moto.client.list_multipart_uploads(Bucket=BUCKET, Prefix=store.prefix)
        assert uploads.get("Uploads", []) == []


async def test_local_files_are_private_and_atomically_replaced(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    k = "org/1/uploads/data.bin"
    await store.put_bytes(k, b"one")
    path = tmp_path / "org" / "1" / "uploads" / "data.bin"
    inode = path.stat().st_ino
    await store.put_stream(k, stream(b"two", [1]))
    assert path.read_bytes() == b"two"
    assert path.stat().st_ino != inode  # a new file renamed over the old one, not rewritten in place
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["data.bin"]


async def test_s3_stream_really_uses_multipart_under_the_prefix(moto: Moto) -> None:
    store = S3ObjectStore(BUCKET, "/exports/", endpoint_url=moto.endpoint_url, part_size=MIN_PART_SIZE)
    assert store.prefix == "exports"
    k = key()
    payload = os.urandom(MIN_PART_SIZE + 1)
    assert await store.put_stream(k, stream(payload, [1 << 20]), content_type="text/csv") == len(payload)
    head = moto.client.head_object(Bucket=BUCKET, Key=f"exports/{k}")
    assert head["ETag"].strip('"').endswith("-2")  # S3's multipart ETag: md5-of-md5s "-" part count
    assert head["ContentType"] == "text/csv"
    assert head["ContentLength"] == len(payload)


async def test_s3_signed_url_downloads_with_plain_http(moto: Moto) -> None:
    store = S3ObjectStore(BUCKET, "signed", endpoint_url=moto.endpoint_url)
    k = key()
    await store.put_bytes(k, b"id\n1\n", content_type="text/csv")
    url = await store.signed_url(k, expires_seconds=60)
    assert url is not None
    assert url.startswith(f"{moto.endpoint_url}/{BUCKET}/signed/org/")
    assert "X-Amz-Signature=" in url
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
        assert response.status_code == 200
        assert response.content == b"id\n1\n"
        assert response.headers["content-type"] == "text/csv"
    with pytest.raises(ValueError, match="expires_seconds"):
        await store.signed_url(k, expires_seconds=8 * 24 * 3600)


async def test_local_signed_url_is_none(tmp_path: Path) -> None:
    assert await LocalObjectStore(tmp_path).signed_url("org/1/x.csv") is None


async def test_ping(store: ObjectStore, request: pytest.FixtureRequest) -> None:
    assert await store.ping() is True
    if isinstance(store, S3ObjectStore):
        moto: Moto = request.getfixturevalue("moto")
        missing = S3ObjectStore("no-such-bucket", endpoint_url=moto.endpoint_url)
        assert await missing.ping() is False
        with socket.socket() as sock:  # a port nobody listens on
            sock.bind(("127.0.0.1", 0))
            closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
        assert await S3ObjectStore(BUCKET, endpoint_url=closed).ping() is False


async def test_local_ping_fails_when_root_is_gone(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    (tmp_path / "objects").rmdir()
    assert await store.ping() is False


def test_open_object_store_defaults_and_local_urls(tmp_path: Path) -> None:
    default = open_object_store(None, data_dir=tmp_path)
    assert isinstance(default, LocalObjectStore)
    assert default.root == (tmp_path / "objects").resolve()
    assert default.root.is_dir()
    assert isinstance(open_object_store("  ", data_dir=tmp_path), LocalObjectStore)

    by_url = open_object_store(f"file://{tmp_path}/by%20url", data_dir=tmp_path)
    assert isinstance(by_url, LocalObjectStore)
    assert by_url.root == (tmp_path / "by url").resolve()
    localhost = open_object_store(f"file://localhost{tmp_path}/lh", data_dir=tmp_path)
    assert isinstance(localhost, LocalObjectStore)
    assert localhost.root == (tmp_path / "lh").resolve()

    plain = open_object_store(str(tmp_path / "plain"), data_dir=tmp_path)
    assert isinstance(plain, LocalObjectStore)
    assert plain.root == (tmp_path / "plain").resolve()


async def test_open_object_store_s3(moto: Moto) -> None:
    store = open_object_store(
        "s3://northstar-test/team/exports/", data_dir=Path("unused"), s3_endpoint_url=moto.endpoint_url
    )
    assert isinstance(store, S3ObjectStore)
    assert (store.bucket, store.prefix) == (BUCKET, "team/exports")
    await store.put_bytes("a.txt", b"via url")
    body = moto.client.get_object(Bucket=BUCKET, Key="team/exports/a.txt")["Body"].read()
    assert body == b"via url"

    bare = open_object_store("s3://northstar-test", data_dir=Path("unused"))
    assert isinstance(bare, S3ObjectStore)
    assert (bare.bucket, bare.prefix) == (BUCKET, "")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://example.com/bucket", "unsupported scheme 'http'"),
        ("gs://bucket/prefix", "unsupported scheme 'gs'"),
        ("s3://", "no bucket"),
        ("s3:///prefix", "no bucket"),
        ("s3://Not_A_Bucket/x", "invalid S3 bucket name"),
        ("s3://AKIAKEY:secret@bucket/x", "only bucket and prefix"),
        ("s3://bucket-name/x?region=eu-west-1", "no query string"),
        ("s3://bucket-name/a/../b", "invalid S3 prefix"),
        ("file://relative/path", "absolute path"),
        ("file:relative", "absolute path"),
        ("file:///tmp/x#frag", "no query string"),
    ],
)
def test_open_object_store_rejects_bad_urls(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        open_object_store(url, data_dir=tmp_path)
    assert "secret" not in str(info.value)


def test_s3_store_rejects_parts_below_the_s3_minimum() -> None:
    with pytest.raises(ValueError, match="part_size"):
        S3ObjectStore(BUCKET, part_size=MIN_PART_SIZE - 1)
