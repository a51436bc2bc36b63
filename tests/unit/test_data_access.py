"""HTTPS data access without HTTP: path restrictions, the RFC 9110/4918 helpers, request
locations, who a token speaks for on a collection, and the connector pool."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from isthmus.auth import identities
from isthmus.connect.audit import AuditLog
from isthmus.connect.connectors import ConnectorPool
from isthmus.connect.data_access import (
    DataAccess,
    DataSession,
    Method,
    SignInRequiredError,
    TransferAccess,
)
from isthmus.connect.data_api import parse_location
from isthmus.connect.data_paths import Access, DataPaths
from isthmus.connect.models import AuditRecord, Collection, StorageGateway
from isthmus.connect.path_restrictions import UserPaths
from isthmus.connect.rfc4918 import (
    Depth,
    PropfindRequest,
    Resource,
    multistatus,
    parse_depth,
    parse_overwrite,
    parse_propfind,
)
from isthmus.connect.rfc9110 import (
    UnsatisfiableRangeError,
    Validators,
    attachment,
    byte_range,
    parse_http_date,
    precondition_status,
)
from isthmus.core.db import reading, transaction, utcnow
from isthmus.core.errors import APIError
from isthmus.core.identities import IdentityRecord
from isthmus.core.registrations import collection_scope
from isthmus.core.session_policies import Authentication
from isthmus.core.tokens import TokenInfo
from isthmus.deployment import Deployment
from isthmus.storage.accounts import LocalAccount
from isthmus.storage.connector import Connector, Entry, EntryType, WriteOptions
from isthmus.storage.errors import NotFound, PermissionDenied, SizeMismatch
from isthmus.storage.posix import PosixConnector

# --- path restrictions as the data plane reads them ------------------------------------------


def test_home_only_restrictions_keep_each_user_in_their_folder() -> None:
    rules = DataPaths({"DATA_TYPE": "path_restrictions#1.0.0", "read_write": ["$HOME"],
                       "read": [], "none": []}, UserPaths("/ann@lab.org", "svc"))
    assert rules.access("/ann@lab.org") is Access.READ_WRITE
    assert rules.access("/ann@lab.org/a/b.txt") is Access.READ_WRITE
    assert rules.access("/") is Access.TRAVERSE  # walk through to one's folder
    assert rules.access("/bob@lab.org") is Access.NONE
    assert rules.access("/ann@lab.org.evil") is Access.NONE  # a prefix, not an ancestor
    assert rules.access("/ann@lab") is Access.NONE
    assert rules.least_within("/ann@lab.org") is Access.READ_WRITE
    assert rules.least_within("/") is Access.TRAVERSE
    # Without a home, $HOME grants nothing.
    homeless = DataPaths({"read_write": ["$HOME"]}, UserPaths(None, "svc"))
    assert homeless.access("/") is Access.NONE


def test_the_most_specific_path_decides_and_trees_take_their_least() -> None:
    rules = DataPaths(
        {"read": ["/data"], "none": ["/data/secret", "/data/both"],
         "read_write": ["/data/secret/mine", "/data/both", "/scratch/$USER", "~/inbox/"]},
        UserPaths("/home/ann", "ann"))
    assert rules.access("/data/x") is Access.READ
    assert rules.access("/data/secret") is Access.TRAVERSE  # it leads to .../mine
    assert rules.access("/data/secret/other") is Access.NONE
    assert rules.access("/data/secret/mine/file") is Access.READ_WRITE
    assert rules.access("/data/both") is Access.NONE  # listed twice: the lesser wins
    assert rules.access("/scratch/ann/x") is Access.READ_WRITE
    assert rules.access("/scratch") is Access.TRAVERSE
    assert rules.access("/scratch/bob") is Access.NONE
    assert rules.access("/home/ann/inbox/new") is Access.READ_WRITE
    assert rules.access("/home/ann") is Access.TRAVERSE
    assert rules.access("/elsewhere") is Access.NONE
    # A tree is as open as its least open part.
    assert rules.least_within("/data") is Access.NONE
    assert rules.least_within("/data/secret/mine") is Access.READ_WRITE


def test_wildcards_walk_through_and_make_trees_err_towards_refusing() -> None:
    rules = DataPaths({"read_write": ["/home/*"], "none": ["/home/*/secret*"]},
                      UserPaths(None, "ann"))
    assert rules.access("/") is Access.TRAVERSE
    assert rules.access("/home") is Access.TRAVERSE
    assert rules.access("/home/ann/notes") is Access.READ_WRITE
    assert rules.access("/home/ann/secret-plans") is Access.NONE
    # A recursive delete of /home/ann might reach a secret folder: refused.
    assert rules.least_within("/home/ann") is Access.NONE
    assert rules.least_within("/home/ann/notes") is Access.NONE  # the pattern could match
    plain = DataPaths({"read_write": ["/home/*"]}, UserPaths(None, "ann"))
    assert plain.least_within("/home/ann") is Access.READ_WRITE


def test_a_leading_wildcard_may_match_in_any_tree() -> None:
    # fnmatch's "*" crosses "/": "*.key" refuses keys in every folder, so no tree is whole.
    rules = DataPaths({"read_write": ["$HOME"], "none": ["*.key"]}, UserPaths("/ann", "ann"))
    assert rules.access("/ann/proj/id.key") is Access.NONE
    assert rules.access("/ann/proj/notes.txt") is Access.READ_WRITE
    assert rules.least_within("/ann/proj") is Access.NONE
    assert rules.readable_below("/") == ["/ann"]


@pytest.mark.parametrize(("document", "expected"), [
    (None, Access.READ_WRITE),  # no restrictions set: everything
    ({}, Access.NONE),  # restrictions that list nothing: nothing
    ({"read": [], "read_write": [], "none": []}, Access.NONE),
    ({"read": ["relative", "/ok"]}, Access.NONE),
])
def test_what_unlisted_paths_get(document: dict[str, list[str]] | None,
                                 expected: Access) -> None:
    rules = DataPaths(document, UserPaths(None, "ann"))
    assert rules.access("/anything/at/all") is expected


# --- RFC 9110 -------------------------------------------------------------------------------


def validators(size: int = 100, mtime: float = 1_700_000_000.25) -> Validators:
    return Validators.of(Entry("f", EntryType.FILE, size, mtime))


@pytest.mark.parametrize(("header", "expected"), [
    (None, None),
    ("bytes=0-9", (0, 9)),
    ("bytes=90-", (90, 99)),
    ("bytes=90-500", (90, 99)),
    ("bytes=-10", (90, 99)),
    ("bytes=-500", (0, 99)),
    ("BYTES = 5-6", (5, 6)),  # the unit is case-insensitive; spaces are forgiven
    ("bytes=5-6", (5, 6)),
    ("bytes=0-1,5-6", None),  # several ranges: the whole file
    ("items=0-1", None),
    ("bytes=9-1", None),
    ("bytes=x-1", None),
    ("bytes=²-3", None),
    ("bytes=-", None),
    ("bytes=", None),
])
def test_byte_ranges(header: str | None, expected: tuple[int, int] | None) -> None:
    assert byte_range(header, 100, if_range=None, current=validators()) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=-0"])
def test_ranges_past_the_end_cannot_be_satisfied(header: str) -> None:
    with pytest.raises(UnsatisfiableRangeError):
        byte_range(header, 100, if_range=None, current=validators())
    with pytest.raises(UnsatisfiableRangeError):
        byte_range("bytes=-5", 0, if_range=None, current=validators(0))


def test_if_range_keeps_a_range_only_for_the_same_file() -> None:
    current = validators()
    assert byte_range("bytes=0-1", 100, if_range=current.etag, current=current) == (0, 1)
    assert byte_range("bytes=0-1", 100, if_range=current.last_modified,
                      current=current) == (0, 1)
    assert byte_range("bytes=0-1", 100, if_range='"old"', current=current) is None
    assert byte_range("bytes=0-1", 100, if_range="W/" + current.etag, current=current) is None
    assert byte_range("bytes=0-1", 100, if_range="not a date", current=current) is None


def test_conditional_requests_in_rfc_9110_order() -> None:
    current = validators()
    etag, modified = current.etag, current.last_modified
    earlier = "Sun, 06 Nov 1994 08:49:37 GMT"
    cases = [
        ("GET", {}, None),
        ("GET", {"if-none-match": etag}, 304),
        ("GET", {"if-none-match": f'"x", W/{etag}'}, 304),  # weak comparison
        ("HEAD", {"if-none-match": "*"}, 304),
        ("PUT", {"if-none-match": "*"}, 412),
        ("GET", {"if-none-match": '"x"'}, None),
        ("GET", {"if-modified-since": modified}, 304),
        ("GET", {"if-modified-since": earlier}, None),
        ("GET", {"if-modified-since": "garbage"}, None),
        # If-None-Match wins over If-Modified-Since.
        ("GET", {"if-none-match": '"x"', "if-modified-since": modified}, None),
        ("PUT", {"if-match": etag}, None),
        ("PUT", {"if-match": f"W/{etag}"}, 412),  # strong comparison
        ("PUT", {"if-match": '"x"'}, 412),
        ("PUT", {"if-match": "not a tag"}, 412),
        ("DELETE", {"if-unmodified-since": earlier}, 412),
        ("DELETE", {"if-unmodified-since": modified}, None),
        # If-Match wins over If-Unmodified-Since.
        ("DELETE", {"if-match": etag, "if-unmodified-since": earlier}, None),
    ]
    for method, headers, status in cases:
        assert precondition_status(method, headers, current) == status, (method, headers)
    assert precondition_status("PUT", {"if-match": "*"}, None) == 412
    assert precondition_status("PUT", {"if-none-match": "*"}, None) is None
    assert precondition_status("GET", {"if-modified-since": modified}, None) is None


def test_dates_and_downloads() -> None:
    assert parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777
    assert parse_http_date("yesterday") is None
    assert parse_http_date("") is None
    assert attachment("r\u00e9sum\u00e9 \"v2\".pdf") == (
        "attachment; filename=\"r_sum_ _v2_.pdf\"; "
        "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22v2%22.pdf")


# --- RFC 4918 -------------------------------------------------------------------------------


def test_propfind_bodies() -> None:
    assert parse_propfind(b"") == PropfindRequest()
    assert parse_propfind(b'<propfind xmlns="DAV:"><allprop/></propfind>') == PropfindRequest()
    assert parse_propfind(b'<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>'
                          ).names_only
    asked = parse_propfind(b'<D:propfind xmlns:D="DAV:" xmlns:x="urn:x"><D:prop>'
                           b"<D:getetag/><x:color/><plain/></D:prop></D:propfind>")
    assert asked.names == (("DAV:", "getetag"), ("urn:x", "color"), ("", "plain"))
    for bad in (b"<x", b"<other/>", b'<D:propfind xmlns:D="DAV:"/>',
                b'<!DOCTYPE x [<!ENTITY a "b">]><D:propfind xmlns:D="DAV:"><D:allprop/>'
                b"</D:propfind>",
                b'<!doctype x SYSTEM "file:///etc/passwd"><x/>'):
        with pytest.raises(APIError) as refused:
            parse_propfind(bad)
        assert refused.value.status == 400


def test_depth_and_overwrite_headers() -> None:
    assert parse_depth(None) is Depth.INFINITY
    assert parse_depth("Infinity") is Depth.INFINITY
    assert parse_depth("1") is Depth.ONE
    assert parse_overwrite(None) is True
    assert parse_overwrite("f") is False
    for call, value in ((parse_depth, "2"), (parse_overwrite, "yes")):
        with pytest.raises(APIError):
            call(value)


def test_multistatus_escapes_names_and_reports_unknown_properties() -> None:
    file = Entry("a <&> b.txt", EntryType.FILE, 5, 1_700_000_000.0)
    folder = Entry("dir", EntryType.DIR, 4096, 1_700_000_000.0)
    body = multistatus(
        [Resource("/data/c/a%20%3C%26%3E%20b.txt", file.name, file),
         Resource("/data/c/dir/", folder.name, folder)],
        PropfindRequest((("DAV:", "displayname"), ("DAV:", "getcontentlength"),
                         ("urn:x", "color")))).decode()
    assert "<D:displayname>a &lt;&amp;&gt; b.txt</D:displayname>" in body
    assert "<D:getcontentlength>5</D:getcontentlength>" in body
    assert '<x:color xmlns:x="urn:x"/>' in body
    assert body.count("HTTP/1.1 404 Not Found") == 2  # color on both, length on the dir
    allprop = multistatus([Resource("/data/c/dir/", "dir", folder)], PropfindRequest()).decode()
    assert "<D:resourcetype><D:collection/></D:resourcetype>" in allprop
    assert "404" not in allprop and "getcontentlength" not in allprop


# --- the request's location -----------------------------------------------------------------


def test_locations_are_decoded_from_the_raw_path() -> None:
    collection = uuid.uuid4()
    assert parse_location(f"/data/{collection}".encode()) == (collection, "/")
    assert parse_location(f"/data/{collection}/a%20b/%C3%A9".encode()) == (collection, "/a b/é")
    assert parse_location(f"/data/{collection}/x%2Fy".encode()) == (collection, "/x/y")
    assert parse_location(f"/data/{str(collection).upper()}/x".encode())[0] == collection
    for raw, status in ((f"/data/{{{collection}}}/x", 404), (f"/data/{collection.hex}/x", 404),
                        ("/data/not-a-uuid/x", 404), (f"/data/{collection}/%ff", 400),
                        ("/elsewhere", 404)):
        with pytest.raises(APIError) as refused:
            parse_location(raw.encode())
        assert refused.value.status == status, raw


# --- who a token speaks for on a collection ---------------------------------------------------


class Introspector:
    def __init__(self) -> None:
        self.tokens: dict[str, TokenInfo] = {}

    def introspect(self, token: str, *, session_info: bool = False) -> TokenInfo | None:
        info = self.tokens.get(token)
        return info if info is None or session_info else replace(info, authentications=())


class Directory:
    def __init__(self) -> None:
        self.records: dict[uuid.UUID, IdentityRecord] = {}

    def lookup_identities(self, identity_ids: object) -> dict[uuid.UUID, IdentityRecord]:
        return {key: value for key, value in self.records.items()
                if key in identity_ids}  # type: ignore[operator]


class Site:
    def __init__(self, services: Deployment) -> None:
        self.services = services
        default = services.connect.default_collection()
        assert default is not None
        self.collection_id = default[0]
        with reading(services.auth.sessions) as session:
            self.domain = identities.local_domain(session)
        self.introspector = Introspector()
        self.directory = Directory()
        self.data = DataAccess(sessions=services.auth.sessions, introspector=self.introspector,
                               identities=self.directory, policies=services.auth,
                               endpoint_id=services.connect.endpoint_id,
                               public_url="https://files.example.org/isthmus/")
        self.files = services.settings.data_dir / "files"

    def token(self, username: str, *, scopes: tuple[str, ...] = ("https", "data_access"),
              linked: tuple[str, ...] = (), resource_server: str | None = None,
              signed_in_ago: timedelta | None = timedelta(0), mfa: bool = False) -> str:
        """A token whose session holds the user's sign-in ``signed_in_ago`` (None: no
        session, as with client credentials)."""
        identity = uuid.uuid4()
        others = {uuid.uuid4(): name for name in linked}
        for other, name in others.items():
            self.directory.records[other] = IdentityRecord(other, name)
        token = f"token-{identity}"
        self.introspector.tokens[token] = TokenInfo(
            identity_id=identity, username=username, client_id=uuid.uuid4(),
            resource_server=resource_server or str(self.collection_id),
            scopes=frozenset(collection_scope(self.collection_id, s) for s in scopes),
            expires_at=time.time() + 60,
            session_id=None if signed_in_ago is None else uuid.uuid4(),
            identity_set=frozenset({identity, *others}),
            authentications=() if signed_in_ago is None else (
                Authentication(identity, username, utcnow() - signed_in_ago, mfa),))
        return token

    def open(self, token: str | None, *methods: Method) -> DataSession:
        return self.data.open(self.collection_id, token, methods or [Method.GET],
                              redirect=True)

    def edit(self, *, gateway: dict[str, object] | None = None,
             collection: dict[str, object] | None = None, high_assurance: bool = False,
             ) -> None:
        with transaction(self.services.auth.sessions) as session:
            row = session.get(Collection, self.collection_id)
            assert row is not None
            row.document = {**row.document, **(collection or {})}
            store = session.get(StorageGateway, row.storage_gateway_id)
            assert store is not None
            store.document = {**store.document, **(gateway or {})}
            store.high_assurance = high_assurance


@pytest.fixture
def site(services: Deployment) -> Site:
    return Site(services)


def refusal(call: object, *args: object) -> APIError:
    with pytest.raises(APIError) as refused:
        call(*args)  # type: ignore[operator]
    return refused.value


def test_a_local_user_gets_their_own_folder_made_on_first_use(site: Site) -> None:
    with site.open(site.token(f"ann@{site.domain}")) as session:
        assert session.home == f"/ann@{site.domain}"
        assert (site.files / f"ann@{site.domain}").is_dir()
        assert session.path("/~/x") == f"/ann@{site.domain}/x"
        with pytest.raises(PermissionDenied):
            session.list(f"/bob@{site.domain}")
        (site.files / "loose.txt").write_text("at the root")
        assert [path for path, _ in session.list("/")] == [f"/ann@{site.domain}"]
    assert len(site.data.pool) == 1
    with site.open(site.token(f"bea@{site.domain}")):
        assert len(site.data.pool) == 1  # the same root, the same account: one connector


def test_without_a_token_reads_are_sent_to_sign_in_and_the_rest_refused(site: Site) -> None:
    sign_in = refusal(site.open, None)
    assert isinstance(sign_in, SignInRequiredError) and sign_in.status == 302
    assert sign_in.headers["Location"].startswith(
        f"https://files.example.org/isthmus/v2/oauth2/authorize?client_id={site.collection_id}&")
    refused = refusal(site.data.open, site.collection_id, None, [Method.PUT])
    assert refused.status == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert refusal(site.open, "unknown token").status == 401
    missing = refusal(site.data.open, uuid.uuid4(), "unknown token", [Method.GET])
    assert missing.status == 401  # an inactive token learns nothing, not even existence
    assert refusal(site.data.open, uuid.uuid4(), site.token(f"x@{site.domain}"),
                   [Method.GET]).status == 404
    assert site.data.href(site.collection_id) == f"/isthmus/data/{site.collection_id}"


def test_the_token_must_be_for_this_collection_with_its_scopes(site: Site) -> None:
    user = f"ann@{site.domain}"
    for token in (site.token(user, scopes=("https",)), site.token(user, scopes=("data_access",)),
                  site.token(user, resource_server=str(uuid.uuid4()))):
        refused = refusal(site.open, token)
        assert refused.status == 403
        assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
    # On high-assurance storage the https scope alone is what is asked for.
    site.edit(high_assurance=True)
    site.open(site.token(user, scopes=("https",))).close()


def test_high_assurance_storage_judges_the_tokens_session(site: Site) -> None:
    user = f"ann@{site.domain}"
    site.edit(high_assurance=True, gateway={"authentication_timeout_mins": 30})
    site.open(site.token(user, signed_in_ago=timedelta(minutes=29))).close()
    for token in (site.token(user, signed_in_ago=timedelta(minutes=31)),
                  site.token(user, signed_in_ago=None)):
        refused = refusal(site.open, token)
        assert (refused.status, refused.code) == (403, "permission_denied")
        assert refused.extra["detail"]["DATA_TYPE"] == "authentication_timeout#1.1.0"
        parameters = refused.extra["authorization_parameters"]
        assert parameters["session_required_single_domain"] == [site.domain]
        assert parameters["session_message"] == refused.message
        assert "within the last 30 minutes" in refused.message
    # A stale sign-in can only be refreshed by a new login, by that identity.
    stale = site.token(user, signed_in_ago=timedelta(minutes=31))
    parameters = refusal(site.open, stale).extra["authorization_parameters"]
    assert parameters["prompt"] == "login"
    assert parameters["session_required_identities"] == [
        str(site.introspector.tokens[stale].identity_id)]
    # MFA: a recent password-only sign-in is not enough.
    site.edit(high_assurance=True, gateway={"require_mfa": True})
    refused = refusal(site.open, site.token(user))
    assert refused.extra["authorization_parameters"]["session_required_mfa"] is True
    assert "prompt" not in refused.extra["authorization_parameters"]
    assert refused.extra["detail"]["require_mfa"] is True
    site.open(site.token(user, mfa=True)).close()
    # Not high assurance: the session is not asked about.
    site.edit(high_assurance=False)
    site.open(site.token(user, signed_in_ago=None)).close()


def test_the_collection_decides_whether_https_and_which_methods(site: Site) -> None:
    token = site.token(f"ann@{site.domain}")
    site.edit(collection={"https_methods": ["GET"]})
    site.open(token, Method.GET).close()
    assert refusal(site.open, token, Method.PUT).status == 403
    assert "PUT" in refusal(site.open, token, Method.PUT, Method.DELETE).message
    site.edit(collection={"enable_https": False})
    assert refusal(site.open, token, Method.GET).status == 403


def test_linked_identities_and_domains(site: Site) -> None:
    # An identity from elsewhere, linked to a local one: the local one maps, and its
    # username keys the folder.
    with site.open(site.token("ann@campus.edu", linked=(f"ann@{site.domain}",))) as session:
        assert session.home == f"/ann@{site.domain}"
    refused = refusal(site.open, site.token("ann@campus.edu"))
    assert refused.status == 403
    assert refused.extra["detail"]["DATA_TYPE"] == "not_from_allowed_domain#1.0.0"
    # A gateway that admits campus.edu too: alice@campus.edu never shares alice@local's folder.
    account = LocalAccount.current().name
    site.edit(gateway={"allowed_domains": [site.domain, "campus.edu"], "identity_mappings": [{
        "DATA_TYPE": "expression_identity_mapping#1.0.0",
        "mappings": [{"source": "{username}", "match": ".*", "output": account}]}]})
    with site.open(site.token("alice@campus.edu")) as campus, \
            site.open(site.token(f"alice@{site.domain}")) as local:
        assert campus.home == "/alice@campus.edu" and local.home == f"/alice@{site.domain}"
    assert (site.files / "alice@campus.edu").is_dir()
    assert (site.files / f"alice@{site.domain}").is_dir()


def test_gateway_user_and_group_policies(site: Site) -> None:
    account = LocalAccount.current()
    token = site.token(f"ann@{site.domain}")
    site.edit(gateway={"users_deny": [account.name]})
    denied = refusal(site.open, token)
    assert denied.status == 403 and denied.extra["detail"]["DATA_TYPE"] == "invalid_user#1.0.0"
    group = sorted(account.group_names())[0]
    site.edit(gateway={"users_deny": [], "policies": {
        "DATA_TYPE": "posix_storage_policies#1.0.0", "groups_allow": [], "groups_deny": [group]}})
    denied = refusal(site.open, token)
    assert denied.status == 403 and group in denied.message
    site.edit(gateway={"policies": {"DATA_TYPE": "posix_storage_policies#1.0.0",
                                    "groups_allow": [group], "groups_deny": []}})
    site.open(token).close()


def test_guest_collections_are_refused_until_their_access_rules_are_read(site: Site) -> None:
    with transaction(site.services.auth.sessions) as session:
        mapped = session.get(Collection, site.collection_id)
        assert mapped is not None
        guest = Collection(id=uuid.uuid4(), endpoint_id=mapped.endpoint_id,
                           collection_type="guest", storage_gateway_id=mapped.storage_gateway_id,
                           mapped_collection_id=mapped.id, display_name="guest",
                           document={"collection_base_path": "/shared"})
        session.add(guest)
        guest_id = guest.id
    token = site.token(f"ann@{site.domain}", scopes=("https",))
    site.introspector.tokens[token] = replace(
        site.introspector.tokens[token], resource_server=str(guest_id),
        scopes=frozenset({collection_scope(guest_id, "https")}))
    assert refusal(site.data.open, guest_id, token, [Method.GET]).status == 403


def test_symlinks_cannot_lead_past_a_restriction(site: Site) -> None:
    bob = site.files / f"bob@{site.domain}"
    bob.mkdir(parents=True)
    (bob / "secret.txt").write_text("bob's")
    with site.open(site.token(f"ann@{site.domain}"), Method.GET, Method.PUT) as session:
        home = site.files / f"ann@{site.domain}"
        (home / "to-bob").symlink_to(bob)
        (home / "own").mkdir()
        (home / "alias").symlink_to(home / "own")
        with pytest.raises(PermissionDenied):
            session.open_read(f"{session.home}/to-bob/secret.txt")
        with pytest.raises(PermissionDenied):
            session.begin_write(f"{session.home}/to-bob/new.txt", WriteOptions(algorithms=()))
        session.mkdir(f"{session.home}/alias/made")  # a link inside one's own folder is fine
        assert (home / "own" / "made").is_dir()
        session.delete(f"{session.home}/to-bob")  # the link goes, not what it points at
        assert (bob / "secret.txt").exists() and not (home / "to-bob").exists()
    # Refused before anything was made there: not even a temporary file.
    assert [path.name for path in bob.iterdir()] == ["secret.txt"]


def test_transfer_reads_and_writes_are_recorded_as_they_end(site: Site) -> None:
    """The bytes really read or committed, and a write that failed or was given up."""
    log = AuditLog(site.services.auth.sessions, flush_seconds=3600)
    user = f"ann@{site.domain}"
    home = f"/{user}"
    with TransferAccess(site.data, log).open(site.collection_id, site.token(user)) as session:
        with session.begin_write(f"{home}/kept.txt", WriteOptions(expected_size=5)) as writer:
            writer.write(b"hello")
            writer.commit()
        with session.begin_write(f"{home}/given-up.txt",
                                 WriteOptions(expected_size=10)) as writer:
            writer.write(b"abcd")  # then abandoned: the engine gave up on the file
        with (session.begin_write(f"{home}/too-long.txt",
                                  WriteOptions(expected_size=3)) as writer,
              pytest.raises(SizeMismatch)):
            writer.write(b"four")
        with session.open_read(f"{home}/kept.txt") as stream:
            assert stream.read(2) == b"he"  # the rest is never read
        with pytest.raises(NotFound):
            session.open_read(f"{home}/missing.txt")
    log.flush()
    with reading(site.services.auth.sessions) as db:
        records = [(r.operation, r.path, r.bytes, r.status, r.result, r.channel, r.username)
                   for r in db.scalars(select(AuditRecord).order_by(AuditRecord.id))]
    assert records == [
        ("WRITE", f"{home}/kept.txt", 5, None, "ok", "transfer", user),
        ("WRITE", f"{home}/given-up.txt", 4, None, "aborted", "transfer", user),
        ("WRITE", f"{home}/too-long.txt", 0, 422, "size_mismatch", "transfer", user),
        ("READ", f"{home}/kept.txt", 2, None, "ok", "transfer", user),
        ("READ", f"{home}/missing.txt", None, 404, "not_found", "transfer", user),
    ]


def test_whole_tree_operations_look_beneath_folders_only(site: Site) -> None:
    home = f"ann@{site.domain}"
    token = site.token(home)
    mine = site.files / home

    def restrict(*none: str) -> DataSession:
        site.edit(gateway={"restrict_paths": {"DATA_TYPE": "path_restrictions#1.0.0",
                                              "read_write": ["$HOME"], "none": list(none)}})
        return site.open(token, Method.GET, Method.PUT)

    with restrict("$HOME/new/raw") as session:
        (mine / "src" / "raw").mkdir(parents=True)
        (mine / "src" / "raw" / "r.dat").write_bytes(b"raw")
        # A folder moved or copied to "new" would put its raw/ where none may write...
        for call in (lambda: session.move(f"/{home}/src", f"/{home}/new", overwrite=False),
                     lambda: session.copy(f"/{home}/src", f"/{home}/new", overwrite=False,
                                          recursive=True)):
            with pytest.raises(PermissionDenied):
                call()
        assert not (mine / "new").exists()
        # ...a file holds nothing else.
        assert session.copy(f"/{home}/src/raw/r.dat", f"/{home}/new", overwrite=False,
                            recursive=True)
        assert (mine / "new").read_bytes() == b"raw"
    with restrict("*.key") as session:
        (mine / "notes.txt").write_bytes(b"notes")
        (mine / "id.key").write_bytes(b"key")
        # Any folder might hold a *.key file; a file is only itself.
        with pytest.raises(PermissionDenied):
            session.delete(f"/{home}/src")
        with pytest.raises(PermissionDenied):
            session.delete(f"/{home}/id.key")
        session.delete(f"/{home}/notes.txt")
        assert not (mine / "notes.txt").exists()
        assert (mine / "src" / "raw" / "r.dat").exists() and (mine / "id.key").exists()


# --- the connector pool ---------------------------------------------------------------------


class Counted(PosixConnector):
    closed: list[str] = []

    def close(self) -> None:
        Counted.closed.append(os.path.basename(os.readlink(f"/proc/self/fd/{self._root_fd}"))
                              if self._root_fd >= 0 else "?")
        super().close()


@pytest.fixture
def roots(tmp_path: Path) -> Iterator[list[str]]:
    made = []
    for name in ("one", "two", "three"):
        (tmp_path / name).mkdir()
        made.append(str(tmp_path / name))
    Counted.closed = []
    yield made


def test_the_pool_keeps_one_connector_per_root_and_account_and_closes_idle_ones(
    roots: list[str],
) -> None:
    opened: list[str] = []

    def opener(root: str, _account: LocalAccount) -> Connector:
        opened.append(os.path.basename(root))
        return Counted(root)

    pool = ConnectorPool(opener, max_idle=1)
    account = LocalAccount.current()
    held = pool.lease(roots[0], account)
    with pool.lease(roots[0], account) as again:
        assert again.connector is held.connector
    assert opened == ["one"]
    pool.lease(roots[1], account).release()
    pool.lease(roots[2], account).release()
    # "one" is lent out, so it stays; of the idle ones only the most recently used is kept.
    assert Counted.closed == ["two"]
    held.release()
    assert sorted(Counted.closed) == ["three", "two"]
    pool.close()
    assert sorted(Counted.closed) == ["one", "three", "two"]
    assert len(pool) == 0
