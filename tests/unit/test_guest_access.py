"""The guest-collection decision: path restrictions, access rules, and the whole chain on real
rows (a guest collection made through Connect, rules stored by Transfer, decided through
`connect.access.resolve_guest`)."""

from __future__ import annotations

import getpass
import uuid
from dataclasses import dataclass, replace
from typing import Any

import pytest
from sqlalchemy import select

from isthmus.auth import identities
from isthmus.connect import access, collections, credentials, path_restrictions
from isthmus.connect.authz import Caller
from isthmus.connect.changes import Changes
from isthmus.connect.guest_access import (
    GuestDecision,
    GuestPolicy,
    ShareableArea,
    effective_permission,
)
from isthmus.connect.models import Collection, Role, UserCredential
from isthmus.connect.path_restrictions import UserPaths
from isthmus.core.access_rules import AccessRule
from isthmus.core.db import reading, transaction
from isthmus.core.errors import APIError
from isthmus.deployment import Deployment
from isthmus.groups.models import Group, Membership
from isthmus.storage.errors import InvalidPath
from isthmus.transfer import access_rules
from isthmus.transfer.registry import Caller as TransferCaller

pytestmark = pytest.mark.postgres

ALICE = UserPaths("/alice", "svc")


def restrictions(**lists: list[str]) -> dict[str, Any]:
    return {"DATA_TYPE": "path_restrictions#1.0.0", **lists}


# --- path restrictions ------------------------------------------------------------------------


def test_no_restrictions_allow_everything_and_unmatched_paths_nothing() -> None:
    assert path_restrictions.permission(None, "/anything", ALICE) == "rw"
    home_only = restrictions(read_write=["$HOME"])
    assert path_restrictions.permission(home_only, "/alice", ALICE) == "rw"
    assert path_restrictions.permission(home_only, "/alice/deep/file", ALICE) == "rw"
    assert path_restrictions.permission(home_only, "/", ALICE) == ""
    assert path_restrictions.permission(home_only, "/alice2", ALICE) == ""
    assert path_restrictions.permission(home_only, "/bob", ALICE) == ""
    # ~, /~ and $USER interpolate; a user without a home here matches no home pattern.
    tilde = restrictions(read=["~/pub"], read_write=["/scratch/$USER"])
    assert path_restrictions.permission(tilde, "/alice/pub/x", ALICE) == "r"
    assert path_restrictions.permission(tilde, "/scratch/svc/x", ALICE) == "rw"
    assert path_restrictions.permission(tilde, "/scratch/other", ALICE) == ""
    assert path_restrictions.permission(home_only, "/alice", UserPaths(None, "svc")) == ""


def test_longest_match_first_with_the_override_table() -> None:
    nested = restrictions(read_write=["/data"], read=["/data/ro"], none=["/data/ro/secret"])
    # A longer read gives way to a shorter read_write (the GCS override table)...
    assert path_restrictions.permission(nested, "/data/ro/x", ALICE) == "rw"
    # ...but a longer none does not.
    assert path_restrictions.permission(nested, "/data/ro/secret/x", ALICE) == ""
    read_over_none = restrictions(none=["/"], read=["/pub"])
    assert path_restrictions.permission(read_over_none, "/pub/a", ALICE) == "r"
    assert path_restrictions.permission(read_over_none, "/priv", ALICE) == ""
    rw_over_none = restrictions(none=["/"], read_write=["/pub/"])
    assert path_restrictions.permission(rw_over_none, "/pub", ALICE) == "rw"
    # fnmatch patterns: * crosses "/", and a literal outranks a wildcard of equal reach.
    wild = restrictions(read=["/proj*"], none=["/projects"])
    assert path_restrictions.permission(wild, "/projects", ALICE) == ""
    assert path_restrictions.permission(wild, "/project-x/a", ALICE) == "r"


def test_user_given_paths_are_resolved_and_confined() -> None:
    assert path_restrictions.resolve_path("/~/share/", ALICE) == "/alice/share"
    assert path_restrictions.resolve_path("$HOME", ALICE) == "/alice"
    assert path_restrictions.resolve_path("/x/./y//", ALICE) == "/x/y"
    for bad in ("/../etc", "~/../../x"):
        with pytest.raises(InvalidPath):
            path_restrictions.resolve_path(bad, ALICE)
    with pytest.raises(InvalidPath):
        path_restrictions.resolve_path("~/x", UserPaths(None, "svc"))


def test_home_folders() -> None:
    assert path_restrictions.home_directory("/", "/home/ann", "ann@x.org") == "/home/ann"
    assert path_restrictions.home_directory("/home", "/home/ann", "ann@x.org") == "/ann"
    # A shared account whose home lies elsewhere: a folder per identity.
    assert path_restrictions.home_directory("/srv/files", "/root", "ann@x.org") == "/ann@x.org"
    with pytest.raises(ValueError, match="cannot name"):
        path_restrictions.home_directory("/srv/files", "/root", "../x")


# --- the decision -------------------------------------------------------------------------------

OWNER, READER, OTHER, MANAGER = (uuid.uuid4() for _ in range(4))
TEAM = uuid.uuid4()


def policy(guest_base: str = "/alice/share", **area: Any) -> GuestPolicy:
    values: dict[str, Any] = {
        "mapped_base": "/", "gateway_restrictions": restrictions(read_write=["$HOME"]),
        "sharing_restrictions": None, "gateway_paths": ALICE, "mapped_paths": ALICE}
    values.update(area)
    return GuestPolicy(owner_identity_id=OWNER, managers=frozenset({MANAGER}),
                       guest_base=guest_base, area=ShareableArea(**values))


def rule(kind: str, principal: object, path: str, permissions: str) -> AccessRule:
    return AccessRule(kind, str(principal), path, permissions)


def test_owner_and_managers_have_everything_the_owner_may_share() -> None:
    guest = policy()
    for caller in (OWNER, MANAGER):
        assert effective_permission(guest, [], {caller}, (), "/any/thing") == "rw"
    assert effective_permission(guest, [], {OTHER}, (), "/") == ""
    # The owner's gateway restrictions cap even the owner: the share lies in alice's home.
    outside = policy("/")
    assert effective_permission(outside, [], {OWNER}, (), "/alice/x") == "rw"
    assert effective_permission(outside, [], {OWNER}, (), "/bob") == ""


def test_rules_are_additive_and_cover_subtrees() -> None:
    rules = [rule("identity", READER, "/data/", "r"),
             rule("identity", READER, "/data/sub/", "rw"),
             rule("identity", READER, "/rw/", "rw"),
             rule("identity", READER, "/rw/ro/", "r"),
             rule("group", TEAM, "/team/", "rw"),
             rule("all_authenticated_users", "", "/everyone/", "r"),
             rule("anonymous", "", "/public/", "rw")]
    guest = policy()

    def at(path: str, who: set[uuid.UUID], groups: set[uuid.UUID] | None = None) -> str:
        return effective_permission(guest, rules, who, groups or set(), path)

    assert at("/data", {READER}) == "r"
    assert at("/data/file", {READER}) == "r"
    assert at("/data/sub/file", {READER}) == "rw"
    # Permissions cannot be narrowed in a subfolder: rw on /rw/ stays rw below /rw/ro/.
    assert at("/rw/ro/x", {READER}) == "rw"
    assert at("/", {READER}) == "" and at("/database", {READER}) == ""
    assert at("/data/file", {OTHER}) == ""
    assert at("/team/x", {OTHER}, {TEAM}) == "rw" and at("/team/x", {OTHER}) == ""
    assert at("/everyone/x", {OTHER}) == "r"
    assert at("/public/x", {OTHER}) == "rw"
    # Anonymous callers get anonymous rules only, and read at most.
    assert at("/public/x", set()) == "r"
    assert at("/everyone/x", set()) == "" and at("/data/file", set()) == ""
    with pytest.raises(InvalidPath):
        at("/../escape", {READER})


def test_sharing_restrictions_cap_every_rule() -> None:
    rules = [rule("identity", READER, "/", "rw")]
    guest = policy(sharing_restrictions=restrictions(read=["$HOME/share"],
                                                     none=["$HOME/share/secret"]))
    assert effective_permission(guest, rules, {READER}, (), "/doc") == "r"
    assert effective_permission(guest, rules, {READER}, (), "/secret/x") == ""
    assert effective_permission(guest, [], {OWNER}, (), "/secret") == ""


def decide(guest: GuestPolicy, rules: list[AccessRule], *callers: uuid.UUID) -> GuestDecision:
    return GuestDecision(guest, tuple(rules), frozenset(callers), frozenset())


def test_a_whole_tree_is_as_open_as_its_least_capped_part() -> None:
    # Alice may write her home but not share proj/raw (her gateway) nor proj/secret (the
    # mapped collection's sharing restrictions); bob has rw on /proj/.
    guest = policy(
        gateway_restrictions=restrictions(read_write=["$HOME"],
                                          none=["$HOME/share/proj/raw"]),
        sharing_restrictions=restrictions(read_write=["$HOME"],
                                          none=["$HOME/share/proj/secret"]))
    rules = [rule("identity", READER, "/proj/", "rw"), rule("identity", READER, "/ro/", "r"),
             rule("identity", READER, "/ro/mine/", "rw")]
    bob = decide(guest, rules, READER)
    assert bob.permission("/proj") == "rw"
    # A recursive delete, move or copy of /proj would reach raw and secret.
    assert bob.least_within("/proj") == ""
    assert bob.least_within("/proj/ok") == "rw"
    assert bob.least_within("/proj/raw/x") == ""
    # Rules only add deeper down: a tree read at its top is read everywhere in it.
    assert bob.least_within("/ro") == "r"
    assert bob.least_within("/ro/mine") == "rw"
    # The caps cap the owner too, and an anonymous caller reads at most.
    owner = decide(guest, [], OWNER)
    assert owner.least_within("/") == "" and owner.least_within("/proj/ok") == "rw"
    anyone = decide(guest, [rule("anonymous", "", "/proj/ok/", "rw")])
    assert anyone.least_within("/proj/ok") == "r"


def test_wildcard_caps_make_trees_err_towards_refusing() -> None:
    guest = policy(sharing_restrictions=restrictions(read_write=["$HOME"], none=["*.key"]))
    bob = decide(guest, [rule("identity", READER, "/", "rw")], READER)
    assert bob.permission("/proj/a.txt") == "rw" and bob.permission("/proj/a.key") == ""
    # Any folder might hold a .key file.
    assert bob.least_within("/proj") == ""
    assert bob.least_within("/proj/a.txt") == ""


def test_walking_through_leads_only_to_what_may_be_read() -> None:
    guest = policy(gateway_restrictions=restrictions(read_write=["$HOME"],
                                                     none=["$HOME/share/proj/raw"]))
    rules = [rule("identity", READER, "/a/b/", "r"), rule("identity", READER, "/proj/raw/", "r"),
             rule("anonymous", "", "/pub/data/", "r")]
    bob = decide(guest, rules, READER)
    assert bob.permission("/") == "" and bob.permission("/a") == ""
    assert bob.leads_to_readable("/") and bob.leads_to_readable("/a")
    assert not bob.leads_to_readable("/a/c") and not bob.leads_to_readable("/x")
    # A rule on what the owner may not share leads nowhere.
    assert not bob.leads_to_readable("/proj")
    # Nobody else is led to bob's folders; anybody to the anonymous one.
    carl = decide(guest, rules, OTHER)
    assert not carl.leads_to_readable("/a") and carl.leads_to_readable("/pub")
    anyone = decide(guest, rules)
    assert anyone.leads_to_readable("/") and not anyone.leads_to_readable("/a")
    # The owner walks through to what she may share.
    narrow = policy(sharing_restrictions=restrictions(read_write=["$HOME/share/out"]))
    owner = decide(narrow, [], OWNER)
    assert owner.permission("/") == "" and owner.permission("/out/x") == "rw"
    assert owner.leads_to_readable("/") and not owner.leads_to_readable("/in")


def test_disabled_anonymous_writes_leave_anonymous_rules_read_only() -> None:
    rules = [rule("anonymous", "", "/drop/", "rw"), rule("identity", READER, "/drop/", "rw")]
    closed = replace(policy(), anonymous_writes=False)
    assert effective_permission(closed, rules, {OTHER}, (), "/drop/x") == "r"
    assert effective_permission(closed, rules, {READER}, (), "/drop/x") == "rw"
    assert effective_permission(policy(), rules, {OTHER}, (), "/drop/x") == "rw"


# --- real rows --------------------------------------------------------------------------------


@dataclass
class Site:
    services: Deployment
    owner: Caller
    reader: Caller
    other: Caller
    default_collection: uuid.UUID


def _user(services: Deployment, name: str) -> Caller:
    with transaction(services.auth.sessions) as session:
        identity = identities.create_user(session, name, "pw")
        return Caller(identity.id, identity.username, frozenset({identity.id}))


@pytest.fixture
def site(services: Deployment) -> Site:
    owner = _user(services, "owner")
    services.connect.claim_ownership(owner.identity_id, owner.username)
    default = services.connect.default_collection()
    assert default is not None
    return Site(services, owner, _user(services, "reader"), _user(services, "other"),
                default[0])


def _write(site: Site, work: Any) -> Any:
    changes = Changes()
    with transaction(site.services.auth.sessions) as session:
        result = work(session, site.services.connect.endpoint(session), changes)
    site.services.connect.apply(changes)
    return result


def _share(site: Site, sharer: Caller, base: str) -> str:
    credential = _write(site, lambda session, endpoint, _changes: credentials.create(
        session, endpoint, sharer, {
            "DATA_TYPE": "user_credential#1.0.0",
            "storage_gateway_id": _gateway_id(site)}, site.services.auth,
        site.services.auth.secret_box))
    assert credential["username"] == getpass.getuser()
    assert credential["home_directory"] == "/" + sharer.username
    guest = _write(site, lambda session, endpoint, changes: collections.create(
        session, endpoint, sharer, {
            "DATA_TYPE": "collection#1.0.0", "collection_type": "guest", "display_name": "g",
            "mapped_collection_id": str(site.default_collection),
            "user_credential_id": credential["id"], "collection_base_path": base}, changes))
    return str(guest["id"])


def _gateway_id(site: Site) -> str:
    with reading(site.services.auth.sessions) as session:
        collection = session.get(Collection, site.default_collection)
        assert collection is not None
        return str(collection.storage_gateway_id)


def _add_rule(site: Site, by: Caller, guest_id: str, **fields: str) -> None:
    rule_input = access_rules.parse_new({"DATA_TYPE": "access", **fields}, site.services.auth)
    with transaction(site.services.auth.sessions) as session:
        access_rules.add_rule(session, TransferCaller(by.identity_id, by.identities),
                              guest_id, rule_input)


def _permission(site: Site, guest_id: str, who: Caller | None, path: str) -> str:
    ids = who.identities if who else frozenset()
    return site.services.connect.resolve_guest(uuid.UUID(guest_id), ids, path).permissions


def test_a_shared_folder_is_read_by_its_reader_and_nobody_else(site: Site) -> None:
    guest_id = _share(site, site.owner, "/~/share")
    _add_rule(site, site.owner, guest_id, principal_type="identity",
              principal=str(site.reader.identity_id), path="/results", permissions="r")

    with reading(site.services.auth.sessions) as session:
        resolved = access.resolve_guest(session, uuid.UUID(guest_id), site.reader.identities,
                                        "/results/a.txt", site.services.transfer,
                                        site.services.auth.groups)
    assert (resolved.permissions, resolved.local_username) == ("r", getpass.getuser())
    files = site.services.settings.data_dir / "files"
    assert resolved.location.root_path == str(files / site.owner.username / "share")
    assert resolved.location.collection_type == "guest"
    assert resolved.guest is not None and resolved.guest.permission("/") == ""
    assert _permission(site, guest_id, site.reader, "/other") == ""
    assert _permission(site, guest_id, site.other, "/results/a.txt") == ""
    assert _permission(site, guest_id, None, "/results/a.txt") == ""
    assert _permission(site, guest_id, site.owner, "/anything") == "rw"

    # A group the third user joins, and an anonymous rule.
    with transaction(site.services.auth.sessions) as session:
        group = Group(id=uuid.uuid4(), name="team", description="", parent_id=None)
        session.add(group)
        session.flush()
        session.add(Membership(group_id=group.id, identity_id=site.other.identity_id,
                               username=site.other.username, role="member", status="active",
                               membership_fields={}))
    _add_rule(site, site.owner, guest_id, principal_type="group", principal=str(group.id),
              path="/team/", permissions="rw")
    _add_rule(site, site.owner, guest_id, principal_type="anonymous", principal="",
              path="/public/", permissions="rw")
    assert _permission(site, guest_id, site.other, "/team/x") == "rw"
    assert _permission(site, guest_id, site.reader, "/team/x") == ""
    assert _permission(site, guest_id, None, "/public/x") == "r"

    # The reader cannot manage rules; an access_manager can, and has rw itself.
    with pytest.raises(APIError) as denied:
        _add_rule(site, site.reader, guest_id, principal_type="identity",
                  principal=str(site.reader.identity_id), path="/", permissions="rw")
    assert (denied.value.status, denied.value.code) == (403, "PermissionDenied")
    changes = Changes()
    with transaction(site.services.auth.sessions) as session:
        session.add(Role(endpoint_id=site.services.connect.endpoint_id,
                         collection_id=uuid.UUID(guest_id), role="access_manager",
                         principal=f"urn:globus:auth:identity:{site.reader.identity_id}"))
    changes.published.add(uuid.UUID(guest_id))
    site.services.connect.apply(changes)
    _add_rule(site, site.reader, guest_id, principal_type="all_authenticated_users",
              principal="", path="/all/", permissions="r")
    assert _permission(site, guest_id, site.reader, "/x") == "rw"
    assert _permission(site, guest_id, site.other, "/all/y") == "r"


def test_tightened_policies_reach_existing_guests(site: Site) -> None:
    guest_id = _share(site, site.owner, "/~/share")
    _add_rule(site, site.owner, guest_id, principal_type="identity",
              principal=str(site.reader.identity_id), path="/", permissions="rw")
    assert _permission(site, guest_id, site.reader, "/secret/x") == "rw"

    with transaction(site.services.auth.sessions) as session:
        mapped = session.get(Collection, site.default_collection)
        assert mapped is not None
        mapped.document = {**mapped.document, "sharing_restrict_paths": restrictions(
            read_write=["$HOME"], none=["$HOME/share/secret"])}
    assert _permission(site, guest_id, site.reader, "/secret/x") == ""
    assert _permission(site, guest_id, site.reader, "/open") == "rw"

    with transaction(site.services.auth.sessions) as session:
        mapped = session.get(Collection, site.default_collection)
        assert mapped is not None
        mapped.document = {**mapped.document, "allow_guest_collections": False}
    with pytest.raises(APIError) as refused:
        _permission(site, guest_id, site.reader, "/open")
    assert refused.value.status == 403

    with transaction(site.services.auth.sessions) as session:
        mapped = session.get(Collection, site.default_collection)
        assert mapped is not None
        mapped.document = {**mapped.document, "allow_guest_collections": True}
        guest = session.get(Collection, uuid.UUID(guest_id))
        assert guest is not None
        credential = session.scalar(select(UserCredential))
        assert credential is not None
        session.delete(credential)
    with pytest.raises(APIError) as gone:
        _permission(site, guest_id, site.reader, "/open")
    assert gone.value.extra["detail"]["DATA_TYPE"] == "invalid_credential#1.0.0"


def test_sharing_is_refused_where_policies_forbid_it(site: Site) -> None:
    with pytest.raises(APIError) as outside_home:
        _share(site, site.reader, "/somebody-else")
    assert outside_home.value.status == 403
    assert "may not share" in outside_home.value.message
    with pytest.raises(APIError) as escape:
        _share(site, site.other, "/~/../../etc")
    assert escape.value.status == 400
    assert escape.value.extra["detail"]["errors"][0]["property"] == "collection_base_path"
