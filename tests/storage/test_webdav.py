"""The WebDAV connector: the conformance suite against a real Isthmus collection's
``https_url`` (an `isthmus serve` of its own, a real https-scope token), its Backing being the
collection's folder on that server's disk."""

from __future__ import annotations

import os
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from isthmus.storage.connector import WriteOptions
from isthmus.storage.errors import InvalidPath, PermissionDenied
from isthmus.storage.webdav import TEMP_PREFIX, WebDAVConnector
from tests.e2e.data_helpers import DataSite, curl, start_data_site
from tests.storage.conformance import Backing, ConnectorConformance, StorageTarget


class FolderBacking(Backing):
    """The collection's files on the server's disk, under one test's folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _host(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def put(self, path: str, data: bytes) -> None:
        host = self._host(path)
        host.parent.mkdir(parents=True, exist_ok=True)
        host.write_bytes(data)

    def get(self, path: str) -> bytes | None:
        host = self._host(path)
        return host.read_bytes() if host.is_file() else None

    def make_dir(self, path: str) -> None:
        self._host(path).mkdir(parents=True, exist_ok=True)

    def names(self, path: str) -> set[str]:
        return set(os.listdir(self._host(path)))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataSite]:
    yield from start_data_site(tmp_path_factory.mktemp("isthmus-webdav"))


@pytest.fixture(scope="module")
def token(site: DataSite) -> str:
    return site.token(site.owner)


def _connector(site: DataSite, token: str, folder: str) -> WebDAVConnector:
    return WebDAVConnector(f"{site.home_url(site.owner)}/{folder}", lambda: token,
                           verify=ssl.create_default_context(cafile=site.server.ca_file))


class TestWebDAVConnector(ConnectorConformance):
    @pytest.fixture
    def target(self, site: DataSite, token: str) -> Iterator[StorageTarget]:
        folder = f"t-{uuid.uuid4().hex[:12]}"
        root = site.home_dir(site.owner) / folder
        root.mkdir(parents=True)
        with _connector(site, token, folder) as connector:
            yield StorageTarget(connector, FolderBacking(root))


def test_temporary_names_are_reserved_and_hidden(site: DataSite, token: str) -> None:
    folder = f"t-{uuid.uuid4().hex[:12]}"
    root = site.home_dir(site.owner) / folder
    root.mkdir(parents=True)
    (root / f"{TEMP_PREFIX}left-over").write_bytes(b"from a crashed writer")
    with _connector(site, token, folder) as connector:
        assert connector.list("/") == []
        with pytest.raises(InvalidPath):
            connector.write_atomic(f"/{TEMP_PREFIX}x", [b"x"])


def test_a_token_the_server_refuses_is_permission_denied(site: DataSite) -> None:
    with _connector(site, "not-a-token", "") as connector, pytest.raises(PermissionDenied):
        connector.list("/")


def _proppatch(site: DataSite, token: str, url: str, props: str) -> tuple[int, str]:
    body = (f'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:x="urn:x">'
            f"<D:set><D:prop>{props}</D:prop></D:set></D:propertyupdate>")
    answer = curl(site.server, token, "-X", "PROPPATCH", "--data-binary", body, url)
    return answer.status, answer.text


def test_proppatch_sets_the_modification_time_and_nothing_else(
    site: DataSite, token: str,
) -> None:
    """What rclone and ownCloud clients send: DAV:lastmodified in seconds."""
    folder = f"t-{uuid.uuid4().hex[:12]}"
    root = site.home_dir(site.owner) / folder
    root.mkdir(parents=True)
    (root / "f").write_bytes(b"x")
    url = f"{site.home_url(site.owner)}/{folder}/f"
    status, text = _proppatch(site, token, url, "<D:lastmodified>1600000000</D:lastmodified>")
    assert status == 207 and "200 OK" in text
    assert (root / "f").stat().st_mtime == 1_600_000_000
    # All or nothing: a property that cannot be set fails the whole request.
    status, text = _proppatch(site, token, url, "<D:lastmodified>1700000000</D:lastmodified>"
                                                "<x:colour>blue</x:colour>")
    assert status == 207 and "403 Forbidden" in text and "424 Failed Dependency" in text
    assert (root / "f").stat().st_mtime == 1_600_000_000
    status, _ = _proppatch(site, token, url, "<D:lastmodified>soon</D:lastmodified>")
    assert status == 400
    status, _ = _proppatch(site, token, url + "-missing",
                           "<D:lastmodified>1600000000</D:lastmodified>")
    assert status == 404
    malformed = curl(site.server, token, "-X", "PROPPATCH", "--data-binary", "<D:oops", url)
    assert malformed.status == 400


def test_a_put_sets_the_modification_time_it_is_sent(site: DataSite, token: str,
                                                     tmp_path: Path) -> None:
    """ownCloud's X-OC-Mtime, which the connector sends so that no PROPPATCH follows."""
    folder = f"t-{uuid.uuid4().hex[:12]}"
    root = site.home_dir(site.owner) / folder
    root.mkdir(parents=True)
    body = tmp_path / "body"
    body.write_bytes(b"timed")
    url = f"{site.home_url(site.owner)}/{folder}"
    put = curl(site.server, token, "-T", str(body), "-H", "X-OC-Mtime: 1600000000.25",
               f"{url}/f")
    assert put.status == 201 and put.headers["x-oc-mtime"] == "accepted"
    assert abs((root / "f").stat().st_mtime - 1_600_000_000.25) < 1e-5
    for bad in ("soon", "nan", "-5"):
        refused = curl(site.server, token, "-T", str(body), "-H", f"X-OC-Mtime: {bad}",
                       f"{url}/g")
        assert refused.status == 400, bad
    assert not (root / "g").exists()
    with _connector(site, token, folder) as connector:
        connector.write_atomic("/h", [b"through the connector"], WriteOptions(mtime=1.5e9))
    assert (root / "h").stat().st_mtime == 1.5e9
