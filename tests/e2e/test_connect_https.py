"""Reading and writing the default mapped collection over HTTPS and WebDAV, with real clients.

Users log in with the SDK's tutorial client for the collection's ``https`` and
``data_access`` scopes (as `GCSDownloader` asks for them on a non-high-assurance
mapped collection); curl, rclone's webdav backend and the SDK's `GCSDownloader`
then use the collection's ``https_url``. Where a file lands, or must not, the tests
look on disk. ``ISTHMUS_TEST_LARGE_FILE`` sizes the large upload (default 64MiB).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import socket
import ssl
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import globus_sdk
import pytest
import requests
from globus_sdk import (
    GCSClient,
    GlobusAppConfig,
    MappedCollectionDocument,
    StorageGatewayDocument,
)
from globus_sdk.experimental.gcs_downloader import GCSDownloader

from tests.browser import Browser
from tests.conftest import User, _new_user
from tests.e2e.data_helpers import (
    Answer,
    DataSite,
    collection_scopes,
    curl,
    dav,
    hrefs,
    rclone,
    start_data_site,
)
from tests.e2e.helpers import (
    TRANSFER_ALL,
    TUTORIAL_CLIENT_ID,
    native_login,
    pointed_at,
    scripted_login_flow,
)

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataSite]:
    yield from start_data_site(tmp_path_factory.mktemp("isthmus-https"))


@pytest.fixture(scope="module")
def alice(site: DataSite) -> User:
    return _new_user(site.server, "alice")


@pytest.fixture(scope="module")
def bob(site: DataSite) -> User:
    return _new_user(site.server, "bob")


@pytest.fixture(scope="module")
def alice_token(site: DataSite, alice: User) -> str:
    return site.token(alice)


@pytest.fixture(scope="module")
def bob_token(site: DataSite, bob: User) -> str:
    return site.token(bob)


def put(site: DataSite, token: str, url: str, data: bytes, *args: str) -> Answer:
    with_data = ["--data-binary", "@-"] if data else ["--data-binary", ""]
    return curl_input(site, token, data, "-X", "PUT", *with_data, *args, url)


def curl_input(site: DataSite, token: str, data: bytes, *args: str) -> Answer:
    """curl reading the request body from a file (so binary bodies pass unchanged)."""
    source = site.server.data_dir.parent / f"body-{time.monotonic_ns()}"
    source.write_bytes(data)
    try:
        replaced = [f"@{source}" if arg == "@-" else arg for arg in args]
        return curl(site.server, token, *replaced)
    finally:
        source.unlink()


def repr_digests(value: str) -> dict[str, bytes]:
    return {key: base64.b64decode(encoded)
            for key, encoded in re.findall(r"([a-z0-9-]+)=:([^:]*):", value)}


# --- reading and writing with curl -----------------------------------------------------------


def test_curl_reads_and_writes_my_home_folder(
    site: DataSite, alice: User, alice_token: str,
) -> None:
    home = site.home_url(alice)
    content = bytes(range(256)) * 40 + b"the end"
    created = put(site, alice_token, home + "/report.bin", content)
    assert created.status == 201, created.text
    # It is in alice's own folder, keyed by her full username, on disk.
    on_disk = site.home_dir(alice) / "report.bin"
    assert on_disk.read_bytes() == content
    assert created.headers["etag"].startswith('"')

    got = curl(site.server, alice_token, home + "/report.bin")
    assert (got.status, got.body) == (200, content)
    assert got.headers["accept-ranges"] == "bytes"
    assert got.headers["content-length"] == str(len(content))
    assert got.headers["etag"] == created.headers["etag"]
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["x-content-type-options"] == "nosniff"

    ranged = curl(site.server, alice_token, "-r", "100-199", home + "/report.bin")
    assert (ranged.status, ranged.body) == (206, content[100:200])
    assert ranged.headers["content-range"] == f"bytes 100-199/{len(content)}"
    tail = curl(site.server, alice_token, "-H", "Range: bytes=-7", home + "/report.bin")
    assert (tail.status, tail.body) == (206, b"the end")
    beyond = curl(site.server, alice_token, "-r", f"{len(content)}-", home + "/report.bin")
    assert beyond.status == 416
    assert beyond.headers["content-range"] == f"bytes */{len(content)}"

    # Conditional requests against the file's validators.
    etag = got.headers["etag"]
    assert curl(site.server, alice_token, "-H", f"If-None-Match: {etag}",
                home + "/report.bin").status == 304
    assert curl(site.server, alice_token, "-H",
                f"If-Modified-Since: {got.headers['last-modified']}",
                home + "/report.bin").status == 304
    assert curl(site.server, alice_token, "-H", 'If-None-Match: "other"',
                home + "/report.bin").status == 200
    assert curl(site.server, alice_token, "-H", 'If-Match: "other"',
                home + "/report.bin").status == 412
    stale_range = curl(site.server, alice_token, "-r", "0-9", "-H", 'If-Range: "other"',
                       home + "/report.bin")
    assert (stale_range.status, stale_range.body) == (200, content)
    refused = put(site, alice_token, home + "/report.bin", b"lost", "-H", 'If-Match: "other"')
    assert refused.status == 412 and on_disk.read_bytes() == content
    assert put(site, alice_token, home + "/report.bin", b"lost",
               "-H", "If-None-Match: *").status == 412
    assert on_disk.read_bytes() == content

    download = curl(site.server, alice_token, home + "/report.bin?download")
    assert download.headers["content-disposition"].startswith("attachment;")
    assert 'filename="report.bin"' in download.headers["content-disposition"]

    replaced = put(site, alice_token, home + "/report.bin", b"version two")
    assert replaced.status == 204 and on_disk.read_bytes() == b"version two"

    assert put(site, alice_token, home + "/no/such/folder/x", b"x").status == 409
    assert not (site.home_dir(alice) / "no").exists()

    deleted = curl(site.server, alice_token, "-X", "DELETE", home + "/report.bin")
    assert deleted.status == 204 and not on_disk.exists()
    assert curl(site.server, alice_token, home + "/report.bin").status == 404


def test_head_and_get_answer_want_repr_digest(
    site: DataSite, alice: User, alice_token: str,
) -> None:
    content = os.urandom(3 * MiB + 17)
    url = site.home_url(alice) + "/digested.bin"
    assert put(site, alice_token, url, content).status == 201
    want = "Want-Repr-Digest: sha-256=10, md5=5, adler=1, unknown=9"
    head = curl(site.server, alice_token, "-I", "-H", want, url)
    assert head.status == 200 and head.headers["content-length"] == str(len(content))
    digests = repr_digests(head.headers["repr-digest"])
    assert digests == {
        "sha-256": hashlib.sha256(content).digest(),
        "md5": hashlib.md5(content).digest(),
        "adler": zlib.adler32(content).to_bytes(4, "big"),
    }
    # Most wanted first; a Range still gets the digest of the whole file (RFC 9530).
    ranged = curl(site.server, alice_token, "-r", "0-9", "-H", want, url)
    assert ranged.status == 206 and ranged.body == content[:10]
    assert ranged.headers["repr-digest"].startswith("sha-256=")
    assert repr_digests(ranged.headers["repr-digest"]) == digests
    assert "repr-digest" not in curl(site.server, alice_token, "-I", url).headers

    # PUT checks a digest it is sent, and keeps nothing that does not match.
    good = base64.b64encode(hashlib.sha256(b"checked").digest()).decode()
    stored = put(site, alice_token, site.home_url(alice) + "/checked.txt", b"checked",
                 "-H", f"Repr-Digest: sha-256=:{good}:", "-H", "Want-Repr-Digest: md5=1")
    assert stored.status == 201
    assert repr_digests(stored.headers["repr-digest"]) == {
        "md5": hashlib.md5(b"checked").digest()}
    mismatch = put(site, alice_token, site.home_url(alice) + "/mismatch.txt", b"altered",
                   "-H", f"Content-Digest: sha-256=:{good}:")
    assert mismatch.status == 422
    assert not (site.home_dir(alice) / "mismatch.txt").exists()


# --- memory: a large upload and download -------------------------------------------------


# What a transfer of any size may add to the server's resident memory: a couple of 1 MiB
# blocks in flight, TLS and HTTP buffers, and the allocator's slack.
MEMORY_BOUND = 32 * MiB


def _size(text: str) -> int:
    found = re.fullmatch(r"\s*(\d+)\s*(|[KMG]i?B?)\s*", text, re.IGNORECASE)
    assert found, f"ISTHMUS_TEST_LARGE_FILE={text!r} is not a size like 64MiB"
    unit = found.group(2).upper()[:1]
    return int(found.group(1)) * {"": 1, "K": 1024, "M": MiB, "G": 1024 * MiB}[unit]


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for process {pid}")


class Watcher:
    """Samples a process's resident memory, and the sizes a path is seen with, while a
    transfer runs."""

    def __init__(self, pid: int, path: Path | None = None) -> None:
        self.pid = pid
        self.path = path
        self.peak_kib = 0
        self.sizes_seen: set[int] = set()
        self._done = threading.Event()
        # The kernel's own peak mark, reset now where allowed (root, Linux >= 4.0).
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
            self.kernel_peak = True
        except OSError:
            self.kernel_peak = False
        self.baseline_kib = _status_kib(pid, "VmRSS")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.02):
            self.peak_kib = max(self.peak_kib, _status_kib(self.pid, "VmRSS"))
            if self.path is not None:
                with contextlib.suppress(FileNotFoundError):
                    self.sizes_seen.add(self.path.stat().st_size)

    def stop(self) -> int:
        """Growth over the baseline at the peak, in bytes."""
        self._done.set()
        self._thread.join()
        peak = self.peak_kib
        if self.kernel_peak:
            peak = max(peak, _status_kib(self.pid, "VmHWM"))
        return (peak - self.baseline_kib) * 1024


def test_a_large_put_and_get_stream_in_bounded_memory(
    site: DataSite, alice: User, alice_token: str, tmp_path: Path,
) -> None:
    size = _size(os.environ.get("ISTHMUS_TEST_LARGE_FILE", "64MiB"))
    source = tmp_path / "large.bin"
    expected, expected_md5 = hashlib.sha256(), hashlib.md5()
    with source.open("wb") as out:
        block = os.urandom(MiB)
        for index in range(0, size, MiB):
            piece = (index.to_bytes(8, "big") + block)[: min(MiB, size - index)]
            expected.update(piece)
            expected_md5.update(piece)
            out.write(piece)
    url = site.home_url(alice) + "/large.bin"
    target = site.home_dir(alice) / "large.bin"
    assert site.server.process is not None
    pid = site.server.process.pid

    # The body reaches storage in many pieces; the digests cover all of them, in order.
    sent = base64.b64encode(expected.digest()).decode()
    watcher = Watcher(pid, target)
    uploaded = curl(site.server, alice_token, "-T", str(source), "-H", f"Repr-Digest: "
                    f"sha-256=:{sent}:", "-H", "Want-Repr-Digest: sha-256=1, md5=2", url)
    growth = watcher.stop()
    assert uploaded.status == 201, uploaded.text
    assert growth < MEMORY_BOUND, f"the server grew by {growth / MiB:.1f} MiB for {size} bytes"
    assert repr_digests(uploaded.headers["repr-digest"]) == {
        "md5": expected_md5.digest(), "sha-256": expected.digest()}
    # Only ever seen whole: the upload went to a temporary name first.
    assert watcher.sizes_seen <= {size}
    assert target.stat().st_size == size
    digest = hashlib.sha256()
    with target.open("rb") as stored:
        while chunk := stored.read(MiB):
            digest.update(chunk)
    assert digest.hexdigest() == expected.hexdigest()
    assert not [name for name in os.listdir(target.parent) if name.startswith(".isthmus-part")]

    back = tmp_path / "back.bin"
    watcher = Watcher(pid)
    downloaded = curl(site.server, alice_token, url, output=back)
    growth = watcher.stop()
    assert downloaded.status == 200
    assert growth < MEMORY_BOUND, f"the server grew by {growth / MiB:.1f} MiB for {size} bytes"
    assert back.stat().st_size == size
    assert subprocess.run(["cmp", str(source), str(back)], check=False).returncode == 0
    assert curl(site.server, alice_token, "-X", "DELETE", url).status == 204


def _parts_and(target: Path) -> list[str]:
    """Temporary files of uploads in progress in ``target``'s folder, and ``target``."""
    return [name for name in os.listdir(target.parent)
            if name.startswith(".isthmus-part") or name == target.name]


def _wait_for(condition: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_an_interrupted_upload_leaves_nothing_behind(
    site: DataSite, alice: User, alice_token: str,
) -> None:
    target = site.home_dir(alice) / "interrupted.bin"
    # The home folder is made by the user's first request; this test may be the first.
    assert put(site, alice_token, site.home_url(alice) + "/before-interrupted.txt",
               b"made").status == 201
    host, port = "127.0.0.1", site.server.port
    context = ssl.create_default_context(cafile=site.server.ca_file)
    with socket.create_connection((host, port)) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        path = urlsplit(site.home_url(alice) + "/interrupted.bin").path
        tls.sendall((f"PUT {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                     f"Authorization: Bearer {alice_token}\r\n"
                     f"Content-Length: {10 * MiB}\r\n\r\n").encode())
        for _ in range(3):
            tls.sendall(os.urandom(MiB))
        # Being written, under a temporary name only.
        assert _wait_for(lambda: _parts_and(target) != [])
        assert not target.exists()
    # The client went away after 3 of 10 MiB: the temporary file goes, nothing appears.
    assert _wait_for(lambda: _parts_and(target) == []), _parts_and(target)


def _open_by(pid: int, target: Path) -> int:
    """How many of the process's file descriptors have ``target`` open."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            count += os.readlink(fd) == str(target)
    return count


def test_an_interrupted_download_releases_the_file(
    site: DataSite, alice: User, alice_token: str,
) -> None:
    target = site.home_dir(alice) / "abandoned.bin"
    assert put(site, alice_token, site.home_url(alice) + "/abandoned.bin",
               os.urandom(8 * MiB)).status == 201
    assert site.server.process is not None
    pid = site.server.process.pid
    host, port = "127.0.0.1", site.server.port
    context = ssl.create_default_context(cafile=site.server.ca_file)
    path = urlsplit(site.home_url(alice) + "/abandoned.bin").path
    for _ in range(3):
        with socket.create_connection((host, port)) as raw, \
                context.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                         f"Authorization: Bearer {alice_token}\r\n\r\n").encode())
            assert tls.recv(65536).startswith(b"HTTP/1.1 200")
            assert _wait_for(lambda: _open_by(pid, target) > 0)
    # The clients went away mid-file: the server lets go of it, and still serves.
    assert _wait_for(lambda: _open_by(pid, target) == 0)
    whole = curl(site.server, alice_token, site.home_url(alice) + "/abandoned.bin")
    assert whole.status == 200 and whole.body == target.read_bytes()


# --- the redirect contract and GCSDownloader --------------------------------------------------


def test_unauthenticated_reads_are_sent_to_sign_in_with_the_collection_id(
    site: DataSite, alice: User, alice_token: str,
) -> None:
    url = site.home_url(alice) + "/public-looking.txt"
    assert put(site, alice_token, url, b"not for everyone").status == 201
    for method in ("GET", "HEAD"):
        answer = requests.request(method, url, verify=site.server.ca_file,
                                  allow_redirects=False, timeout=30)
        assert answer.status_code == 302, answer.text
        location = urlsplit(answer.headers["Location"])
        assert answer.headers["Location"].startswith(site.server.base_url + "v2/oauth2/authorize")
        query = parse_qs(location.query)
        assert query["client_id"] == [site.collection_id]
        assert set(query["scope"][0].split()) == set(collection_scopes(site.collection_id))
        assert b"not for everyone" not in answer.content
    # Anything else without a token, or with a bad one, is 401 with a Bearer challenge.
    for method, token in (("PUT", None), ("DELETE", None), ("PROPFIND", None),
                          ("GET", "not-a-token"), ("PUT", alice_token + "x")):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = requests.request(method, url, data=b"x", headers=headers,
                                  verify=site.server.ca_file, allow_redirects=False,
                                  timeout=30)
        assert answer.status_code == 401, (method, answer.text)
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert answer.json()["code"] == "not_authorized"
    assert (site.home_dir(alice) / "public-looking.txt").read_bytes() == b"not for everyone"


def test_gcs_downloader_reads_through_the_redirect_contract(
    site: DataSite, alice: User, alice_token: str,
) -> None:
    text = "downloaded by the SDK ✓\n"
    binary = os.urandom(2 * MiB)
    assert put(site, alice_token, site.home_url(alice) + "/sdk.txt", text.encode()).status == 201
    assert put(site, alice_token, site.home_url(alice) + "/sdk.bin", binary).status == 201
    flow = scripted_login_flow(Browser(site.server.ca_file), alice.username, alice.password)
    with pointed_at(site.server):
        app = globus_sdk.UserApp(
            "isthmus https tests", client_id=TUTORIAL_CLIENT_ID,
            config=GlobusAppConfig(token_storage="memory", login_flow_manager=flow))
        with GCSDownloader(app) as downloader:
            assert downloader.read_file(site.home_url(alice) + "/sdk.txt") == text
            assert downloader.read_file(site.home_url(alice) + "/sdk.bin",
                                        as_text=False) == binary
            # It asked for both scopes: the collection is mapped and not high assurance.
            requirements = app.scope_requirements[site.collection_id]
            assert {str(scope) for scope in requirements} == set(
                collection_scopes(site.collection_id))
    # One login for Transfer (where the downloader learns the collection's type), one for
    # the collection's scopes; the second file needed none.
    assert flow.logins == 2


# --- rclone's webdav backend -------------------------------------------------------------------


def test_rclone_lists_copies_moves_and_checks_through_webdav(
    site: DataSite, alice: User, alice_token: str, tmp_path: Path,
) -> None:
    local = tmp_path / "local"
    (local / "sub" / "deep").mkdir(parents=True)
    (local / "a.txt").write_text("hello from rclone")
    (local / "empty").write_bytes(b"")
    (local / "sub" / "b.bin").write_bytes(os.urandom(3 * MiB + 1))
    (local / "sub" / "deep" / "données ✓.txt").write_text("unicode names too")

    def run(*args: str) -> str:
        done = rclone(site.server, alice_token, site.home_url(alice), tmp_path, *args)
        assert done.returncode == 0, f"rclone {' '.join(args)}: {done.stderr}"
        return done.stdout

    run("copy", str(local), "isthmus:tree")
    assert sorted(run("lsf", "-R", "isthmus:tree").split("\n")) == sorted([
        "", "a.txt", "empty", "sub/", "sub/b.bin", "sub/deep/", "sub/deep/données ✓.txt"])
    on_disk = site.home_dir(alice) / "tree"
    assert (on_disk / "sub" / "b.bin").read_bytes() == (local / "sub" / "b.bin").read_bytes()
    run("check", "--download", str(local), "isthmus:tree")
    # The same folder through ~, the user's home.
    tilde = rclone(site.server, alice_token, site.url + "/~", tmp_path, "lsf", "isthmus:")
    assert tilde.returncode == 0 and "tree/" in tilde.stdout.splitlines(), tilde.stderr

    run("moveto", "isthmus:tree/a.txt", "isthmus:tree/sub/moved.txt")
    assert not (on_disk / "a.txt").exists()
    assert (on_disk / "sub" / "moved.txt").read_text() == "hello from rclone"
    # check sees the difference now: it compares, it does not just succeed.
    differs = rclone(site.server, alice_token, site.home_url(alice), tmp_path,
                     "check", "--download", str(local), "isthmus:tree")
    assert differs.returncode != 0

    back = tmp_path / "back"
    run("copy", "isthmus:tree", str(back))
    (local / "sub" / "moved.txt").write_text("hello from rclone")
    (local / "a.txt").unlink()
    run("check", "--download", str(local), "isthmus:tree")
    run("check", "--download", str(local), str(back))
    run("purge", "isthmus:tree")
    assert not on_disk.exists()


# --- WebDAV protocol details -------------------------------------------------------------------


def test_webdav_protocol_details(site: DataSite, alice: User, alice_token: str) -> None:
    home = site.home_url(alice)
    options = dav(site, None, "OPTIONS", home + "/")
    assert options.status == 200 and options.headers["dav"] == "1"
    assert "PROPFIND" in options.headers["allow"] and "MOVE" in options.headers["allow"]

    for depth in ("infinity", None):
        refused = dav(site, alice_token, "PROPFIND", home + "/",
                      *(["-H", f"Depth: {depth}"] if depth else []))
        assert refused.status == 403 and "propfind-finite-depth" in refused.text

    assert dav(site, alice_token, "MKCOL", home + "/dav").status == 201
    assert (site.home_dir(alice) / "dav").is_dir()
    assert dav(site, alice_token, "MKCOL", home + "/dav").status == 405
    assert dav(site, alice_token, "MKCOL", home + "/missing/dav").status == 409
    assert put(site, alice_token, home + "/dav/one.txt", b"one").status == 201

    body = ('<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:x="urn:x"><D:prop>'
            "<D:getcontentlength/><D:resourcetype/><x:color/></D:prop></D:propfind>")
    found = dav(site, alice_token, "PROPFIND", home + "/dav/one.txt", "-H", "Depth: 0",
                "--data-binary", body, "-H", "Content-Type: application/xml")
    assert found.status == 207
    assert "<D:getcontentlength>3</D:getcontentlength>" in found.text
    assert "HTTP/1.1 404 Not Found" in found.text and "color" in found.text
    listing = dav(site, alice_token, "PROPFIND", home + "/dav", "-H", "Depth: 1")
    assert hrefs(listing.text) == [f"/data/{site.collection_id}/{quote(alice.username)}/dav/",
                              f"/data/{site.collection_id}/{quote(alice.username)}/dav/one.txt"]
    assert dav(site, alice_token, "PROPFIND", home + "/dav", "-H", "Depth: 1",
               "--data-binary", "<not xml").status == 400
    assert dav(site, alice_token, "PROPFIND", home + "/dav", "-H", "Depth: 1", "--data-binary",
               '<!DOCTYPE x [<!ENTITY a "b">]><D:propfind xmlns:D="DAV:"/>').status == 400

    copied = dav(site, alice_token, "COPY", home + "/dav", "-H",
                 f"Destination: {home}/dav-copy")
    assert copied.status == 201
    assert (site.home_dir(alice) / "dav-copy" / "one.txt").read_bytes() == b"one"
    assert dav(site, alice_token, "COPY", home + "/dav/one.txt", "-H",
               f"Destination: {home}/dav-copy/one.txt", "-H", "Overwrite: F").status == 412
    assert dav(site, alice_token, "COPY", home + "/dav", "-H",
               f"Destination: {home}/dav/inside").status == 403
    moved = dav(site, alice_token, "MOVE", home + "/dav/one.txt", "-H",
                f"Destination: {home}/dav-copy/one.txt")
    assert moved.status == 204  # replaced what was there
    assert not (site.home_dir(alice) / "dav" / "one.txt").exists()
    other = f"{site.server.base_url}data/{site.owner.id}/x"
    assert dav(site, alice_token, "MOVE", home + "/dav-copy", "-H",
               f"Destination: {other}").status == 403
    assert dav(site, alice_token, "MOVE", home + "/dav-copy").status == 400  # no Destination
    assert dav(site, alice_token, "DELETE", home + "/dav-copy").status == 204
    assert not (site.home_dir(alice) / "dav-copy").exists()
    directory = curl(site.server, alice_token, home + "/dav")
    assert directory.status == 405 and "PROPFIND" in directory.headers["allow"]


# --- confinement ---------------------------------------------------------------------------------


def outside_state(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` but the server's own database, which its background work
    (checkpoints, retention) may change at any moment."""
    return {str(path): path.read_bytes() if path.is_file() else b"<dir>"
            for path in sorted(root.rglob("*")) if not path.name.startswith("isthmus.db")}


def test_path_escapes_are_refused_and_nothing_outside_is_touched(
    site: DataSite, alice: User, alice_token: str, bob: User, bob_token: str,
) -> None:
    home = site.home_url(alice)
    # Both homes exist once their owners have used the collection.
    assert dav(site, alice_token, "PROPFIND", home, "-H", "Depth: 0").status == 207
    assert put(site, bob_token, site.home_url(bob) + "/bob.txt", b"bob's").status == 201
    outside = site.server.data_dir.parent / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "secret.txt").write_text("top secret 4711")
    (site.home_dir(alice) / "escape").symlink_to(outside)
    (site.home_dir(alice) / "to-bob").symlink_to(site.home_dir(bob))
    before = outside_state(site.server.data_dir.parent)

    base = site.url
    escapes = [
        ("--path-as-is", f"{base}/../isthmus.db"),
        ("--path-as-is", f"{home}/../../isthmus.db"),
        ("--path-as-is", f"{base}/%2e%2e/isthmus.db"),
        ("--path-as-is", f"{base}/%2E%2E%2Fisthmus.db"),
        ("--path-as-is", f"{home}/%2e%2e/%2e%2e/%2e%2e/outside/secret.txt"),
    ]
    for flag, url in escapes:
        answer = curl(site.server, alice_token, flag, url)
        assert answer.status == 403, (url, answer.text)
        assert b"SQLite" not in answer.body
    for url in (f"{home}/escape/secret.txt", f"{home}/to-bob/bob.txt"):
        answer = curl(site.server, alice_token, url)
        assert answer.status == 403, (url, answer.text)
        assert b"top secret 4711" not in answer.body and b"bob's" not in answer.body
    for url in (f"{home}/escape/new.txt", f"{home}/to-bob/new.txt"):
        assert put(site, alice_token, url, b"planted").status == 403
    assert dav(site, alice_token, "MKCOL", f"{home}/escape/dir").status == 403
    assert dav(site, alice_token, "COPY", f"{home}/to-bob", "-H",
               f"Destination: {home}/stolen").status == 403
    nul = curl(site.server, alice_token, f"{home}/a%00b")
    assert nul.status == 400
    assert curl(site.server, alice_token, f"{home}/%ff%fe").status == 400
    listing = dav(site, alice_token, "PROPFIND", home, "-H", "Depth: 1")
    assert not any(href.endswith("/escape") for href in hrefs(listing.text))

    assert outside_state(site.server.data_dir.parent) == before
    assert sorted(os.listdir(site.home_dir(bob))) == ["bob.txt"]
    assert not (site.home_dir(alice) / "stolen").exists()


def test_another_user_cannot_reach_my_home_folder(
    site: DataSite, alice: User, alice_token: str, bob: User, bob_token: str,
) -> None:
    mine = site.home_url(alice) + "/private.txt"
    assert put(site, alice_token, mine, b"alice only").status == 201
    assert curl(site.server, bob_token, mine).status == 403
    assert curl(site.server, bob_token, "-I", mine).status == 403
    assert put(site, bob_token, mine, b"bob was here").status == 403
    assert put(site, bob_token, site.home_url(alice) + "/new.txt", b"bob").status == 403
    assert dav(site, bob_token, "DELETE", mine).status == 403
    assert dav(site, bob_token, "PROPFIND", site.home_url(alice), "-H", "Depth: 1").status == 403
    assert dav(site, bob_token, "MOVE", mine, "-H",
               f"Destination: {site.home_url(bob)}/taken.txt").status == 403
    assert (site.home_dir(alice) / "private.txt").read_bytes() == b"alice only"
    assert not (site.home_dir(alice) / "new.txt").exists()
    # At the collection root bob sees his own folder and nobody else's; he writes nothing
    # there.
    root = dav(site, bob_token, "PROPFIND", site.url + "/", "-H", "Depth: 1")
    assert root.status == 207
    assert hrefs(root.text) == [f"/data/{site.collection_id}/",
                           f"/data/{site.collection_id}/{quote(bob.username)}/"]
    assert put(site, bob_token, site.url + "/at-the-root.txt", b"x").status == 403
    assert not (site.files / "at-the-root.txt").exists()
    # ~ is one's own home.
    assert put(site, bob_token, site.url + "/~/tilde.txt", b"mine").status == 201
    assert (site.home_dir(bob) / "tilde.txt").read_bytes() == b"mine"


def owner_gcs(site: DataSite) -> tuple[GCSClient, str]:
    """The endpoint owner's GCS client, and the id of the gateway of "<host> files"."""
    manage = str(GCSClient.get_gcs_endpoint_scopes(site.endpoint_id).manage_collections)
    owner_tokens = native_login(site.server, site.owner.username, site.owner.password,
                                [manage])
    gcs = GCSClient(site.server.manager_url, authorizer=globus_sdk.AccessTokenAuthorizer(
        owner_tokens[site.endpoint_id]["access_token"]))
    gateway = next(item["id"] for item in gcs.get_storage_gateway_list()
                   if item["root"] == str(site.files))
    return gcs, str(gateway)


def test_a_restriction_deeper_down_refuses_whole_tree_operations(
    site: DataSite, alice: User, alice_token: str,
) -> None:
    home = site.home_url(alice)
    folder = site.home_dir(alice) / "keys"
    (folder / "deep").mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_bytes(b"notes")
    (folder / "deep" / "id.key").write_bytes(b"private key")
    with pointed_at(site.server):
        gcs, gateway = owner_gcs(site)
        restrictions = gcs.get_storage_gateway(gateway, include="private_policies")[
            "restrict_paths"]
        # fnmatch's "*" crosses "/": no *.key file anywhere is the user's.
        gcs.update_storage_gateway(gateway, StorageGatewayDocument(additional_fields={
            "restrict_paths": {**restrictions, "none": ["*.key"]}}))
        try:
            assert curl(site.server, alice_token, f"{home}/keys/deep/id.key").status == 403
            refused = [
                dav(site, alice_token, "DELETE", f"{home}/keys"),
                dav(site, alice_token, "MOVE", f"{home}/keys", "-H",
                    f"Destination: {home}/moved"),
                dav(site, alice_token, "COPY", f"{home}/keys", "-H",
                    f"Destination: {home}/copied"),
            ]
            assert [answer.status for answer in refused] == [403] * 3, [
                answer.text for answer in refused]
            assert (folder / "deep" / "id.key").read_bytes() == b"private key"
            assert not (site.home_dir(alice) / "moved").exists()
            assert not (site.home_dir(alice) / "copied").exists()
            assert dav(site, alice_token, "DELETE", f"{home}/keys/notes.txt").status == 204
        finally:
            gcs.update_storage_gateway(gateway, StorageGatewayDocument(
                additional_fields={"restrict_paths": restrictions}))


def test_tokens_for_other_collections_or_scopes_are_refused(
    site: DataSite, alice: User, alice_token: str,
) -> None:
    mine = site.home_url(alice) + "/guarded.txt"
    assert put(site, alice_token, mine, b"guarded").status == 201
    # A second collection on the same gateway: its token opens nothing here.
    with pointed_at(site.server):
        gcs, gateway = owner_gcs(site)
        other = gcs.create_collection(MappedCollectionDocument(
            display_name="another view", storage_gateway_id=gateway,
            collection_base_path="/"))["id"]
    other_token = site.token(alice, collection_id=other)
    data_access_only = site.token(alice, [collection_scopes(site.collection_id)[1]])
    https_only = site.token(alice, [collection_scopes(site.collection_id)[0]])
    transfer = native_login(site.server, alice.username, alice.password, [TRANSFER_ALL])[
        "transfer.api.globus.org"]["access_token"]
    for token in (other_token, data_access_only, https_only, transfer):
        for answer in (curl(site.server, token, mine),
                       put(site, token, mine, b"overwritten")):
            assert answer.status == 403, answer.text
            assert "insufficient_scope" in answer.headers["www-authenticate"]
    assert (site.home_dir(alice) / "guarded.txt").read_bytes() == b"guarded"
    # The other collection's own URL takes its own token.
    assert curl(site.server, other_token,
                f"{site.server.base_url}data/{other}/{quote(alice.username)}/guarded.txt"
                ).body == b"guarded"
    assert curl(site.server, alice_token, f"{site.server.base_url}data/{other}/x").status == 403
    unknown = f"{site.server.base_url}data/00000000-0000-4000-8000-000000000000/x"
    assert curl(site.server, alice_token, unknown).status == 404
