"""Connect's domain without HTTP: documents, paging, bootstrap, access, and the registry."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from isthmus.auth import clients, identities, scopes
from isthmus.connect import access, paging, schemas
from isthmus.connect.access import CollectionLocation
from isthmus.connect.models import Collection, Endpoint, Role
from isthmus.core.db import reading, transaction, utcnow
from isthmus.core.errors import APIError
from isthmus.core.registry import GCSV5_GUEST_COLLECTION, RegistryEntry, RoleGrant
from isthmus.deployment import Deployment, open_services
from isthmus.transfer import registry
from isthmus.transfer.registry import Caller
from isthmus.transfer.task_models import Task

pytestmark = pytest.mark.postgres


def problems(error: APIError) -> list[str]:
    return [item["property"] for item in error.extra["detail"]["errors"]]


# --- documents --------------------------------------------------------------------------


def test_every_collection_version_the_sdk_emits_is_accepted() -> None:
    for minor in range(17):
        values = schemas.COLLECTION.parse(
            {"DATA_TYPE": f"collection#1.{minor}.0", "collection_type": "mapped",
             "display_name": "x", "storage_gateway_id": str(uuid.uuid4()),
             # 1.1.0's field, under any version: the SDK does not always raise the version.
             "enable_https": True},
            creating=True, kind="mapped")
        assert values["display_name"] == "x"
    for tag in ("collection#1.17.0", "collection#2.0.0", "storage_gateway#1.0.0", None, 7):
        with pytest.raises(APIError) as caught:
            schemas.COLLECTION.parse({"DATA_TYPE": tag, "display_name": "x"}, creating=True)
        assert caught.value.status == 400


def test_null_clears_absent_keeps_and_read_only_fields_round_trip() -> None:
    stored = {"id": "abc", "https_url": "https://h/data/abc", "display_name": "x"}
    values = schemas.COLLECTION.parse(
        {"DATA_TYPE": "collection#1.0.0", "collection_type": "mapped", "contact_email": None,
         "id": "abc", "https_url": "https://h/data/abc"},
        creating=False, stored=stored, kind="mapped")
    assert values == {"contact_email": None}
    with pytest.raises(APIError) as caught:
        schemas.COLLECTION.parse({"DATA_TYPE": "collection#1.0.0", "id": "other",
                                  "display_name": None, "mapped_collection_id": "m",
                                  "storage_gateway_id": str(uuid.uuid4())},
                                 creating=False, stored=stored, kind="mapped")
    # Every offending field is named: read-only, not nullable, wrong kind, create-only.
    assert problems(caught.value) == ["id", "display_name", "mapped_collection_id",
                                      "storage_gateway_id"]


def test_nested_documents_are_checked_field_by_field() -> None:
    good = schemas.STORAGE_GATEWAY.parse({
        "DATA_TYPE": "storage_gateway#1.1.0", "display_name": "g",
        "connector_id": str(uuid.uuid4()), "allowed_domains": ["Example.org"],
        "identity_mappings": [
            {"DATA_TYPE": "expression_identity_mapping#1.0.0",
             "mappings": [{"source": "{username}", "match": "(.*)@example\\.org",
                           "output": "{0}"}]},
            {"DATA_TYPE": "external_identity_mapping#1.0.0", "command": ["/bin/map", "-x"]}],
        "restrict_paths": {"DATA_TYPE": "path_restrictions#1.0.0", "read": ["/data"]},
    }, creating=True)
    assert good["allowed_domains"] == ["example.org"]
    assert len(good["identity_mappings"]) == 2
    for field, value in (
        ("identity_mappings", [{"DATA_TYPE": "expression_identity_mapping#1.0.0",
                                "mappings": [{"source": "{username}"}]}]),
        ("identity_mappings", [{"DATA_TYPE": "lookup_identity_mapping#1.0.0"}]),
        ("restrict_paths", {"DATA_TYPE": "path_restrictions#1.0.0", "write": ["/"]}),
        ("allowed_domains", ["not a domain"]),
        ("authentication_timeout_mins", True),
        ("root", "/data/../etc"),
    ):
        with pytest.raises(APIError) as caught:
            schemas.STORAGE_GATEWAY.parse({"DATA_TYPE": "storage_gateway#1.0.0",
                                           "display_name": "g", field: value},
                                          creating=False, stored={})
        assert problems(caught.value) == [field], (field, value)


def test_markers_round_trip_and_bad_ones_are_refused() -> None:
    class Item:
        def __init__(self, number: int) -> None:
            self.id = uuid.uuid4()
            self.created = utcnow() + timedelta(seconds=number)

    items = [Item(number) for number in range(3)]
    request = paging.PageRequest(size=2)
    page = paging.page_of(items, request)
    assert list(page.items) == items[:2] and page.has_next_page
    assert page.marker is not None
    following = paging.page_request({"marker": page.marker, "page_size": "2"})
    assert following.after == (items[1].created, items[1].id)
    assert not paging.page_of(items[2:], following).has_next_page
    assert paging.page_request({"page_size": "5000"}).size == paging.MAX_PAGE_SIZE
    for params in ({"marker": "bm90IGpzb24"}, {"marker": "%%%"}, {"page_size": "-1"},
                   {"page_size": "1e3"}):
        with pytest.raises(APIError):
            paging.page_request(params)


# --- first start ----------------------------------------------------------------------


def test_first_start_makes_one_endpoint_registered_with_auth(services: Deployment) -> None:
    connect = services.connect
    with reading(services.auth.sessions) as session:
        endpoint = session.get(Endpoint, connect.endpoint_id)
        assert endpoint is not None and endpoint.owner_identity_id is None
        client = clients.get_client(session, endpoint.id)
        assert client is not None and client.resource_server == str(endpoint.id)
        scope = scopes.scope_by_string(
            session, f"urn:globus:auth:scope:{endpoint.id}:manage_collections")
        assert scope is not None and scope.client_id == endpoint.id
        default = connect.default_collection()
        assert default is not None
        collection_client = clients.get_client(session, default[0])
        assert collection_client is not None
        assert collection_client.parent_client_id == endpoint.id
        for suffix in ("data_access", "https"):
            found = scopes.scope_by_string(
                session, f"https://auth.globus.org/scopes/{default[0]}/{suffix}")
            assert found is not None and found.resource_server == str(default[0])
    assert (services.settings.data_dir / "files").is_dir()

    again = open_services(services.settings, serving=True)  # a restart changes nothing
    assert again.connect.endpoint_id == connect.endpoint_id
    with reading(services.auth.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Endpoint)) == 1
        assert session.scalar(select(func.count()).select_from(Collection)) == 1
    again.auth.engine.dispose()


def test_only_the_first_user_owns_the_endpoint(services: Deployment) -> None:
    made = []
    for name in ("first", "second"):
        with transaction(services.auth.sessions) as session:
            identity = identities.create_user(session, name, "pw")
            made.append((identity.id, identity.username))
    assert services.connect.claim_ownership(*made[0]) is True
    assert services.connect.claim_ownership(*made[1]) is False
    with reading(services.auth.sessions) as session:
        endpoint = session.get(Endpoint, services.connect.endpoint_id)
        assert endpoint is not None
        assert (endpoint.owner_identity_id, endpoint.owner_string) == made[0]
        roles = {(role.role, role.collection_id is None) for role in session.scalars(
            select(Role).where(Role.principal == f"urn:globus:auth:identity:{made[0][0]}"))}
        assert roles == {("owner", True), ("administrator", True), ("administrator", False)}
        document = registry.get_document(session, Caller(made[0][0], frozenset({made[0][0]})),
                                         str(endpoint.id))
        assert document["owner_string"] == made[0][1]
        assert document["my_effective_roles"] == ["administrator", "owner"]


# --- the seam to storage ------------------------------------------------------------------


class FixedMapper:
    def __init__(self, answer: str | None) -> None:
        self.answer = answer
        self.seen: list[tuple[CollectionLocation, Mapping[str, Any]]] = []

    def map_identity(self, location: CollectionLocation,
                     identity: Mapping[str, Any]) -> str | None:
        self.seen.append((location, identity))
        return self.answer


def test_access_resolves_the_default_collection(services: Deployment) -> None:
    default = services.connect.default_collection()
    assert default is not None
    user = {"id": str(uuid.uuid4()), "username": "ann@isthmus.local"}
    with reading(services.auth.sessions) as session:
        mapper = FixedMapper("svc")
        resolved = access.resolve(session, default[0], user, mapper)
        assert resolved.local_username == "svc"
        location = resolved.location
        assert location.root_path == str(services.settings.data_dir / "files")
        assert location.default_directory == "/~/"
        assert location.allowed_domains == ("isthmus.local",)
        assert location.identity_mappings[0]["mappings"][0]["match"] == "(.*)@isthmus\\.local"
        assert mapper.seen == [(location, user)]
        refusals = (
            ({"username": "ann@elsewhere.org"}, "svc", "not_from_allowed_domain#1.0.0"),
            (user, None, None),
        )
        for identity, answer, detail in refusals:
            with pytest.raises(APIError) as caught:
                access.resolve(session, default[0], identity, FixedMapper(answer))
            assert caught.value.status == 403
            got = caught.value.extra.get("detail")
            assert (got or {}).get("DATA_TYPE") == detail
        with pytest.raises(APIError) as missing:
            access.resolve(session, uuid.uuid4(), user, mapper)
        assert missing.value.status == 404


# --- the registry ----------------------------------------------------------------------


def entry(endpoint_id: uuid.UUID, name: str, **fields: Any) -> RegistryEntry:
    values: dict[str, Any] = {"id": uuid.uuid4(), "entity_type": "GCSv5_mapped_collection",
                              "endpoint_id": endpoint_id, "display_name": name,
                              "public": False, "owner_string": f"{endpoint_id}@clients"}
    values.update(fields)
    return RegistryEntry(**values)


def search(session: Any, caller: Caller, **params: str) -> list[str]:
    found = registry.search(session, caller, registry.parse_search(params))
    return [item["display_name"] for item in found["DATA"]]


def test_registry_scopes(services: Deployment) -> None:
    endpoint_id, ann, ben = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    as_ann, as_ben = Caller(ann, frozenset({ann})), Caller(ben, frozenset({ben}))
    mapped = entry(endpoint_id, "mapped one", public=True)
    shared = entry(endpoint_id, "ann's share", entity_type=GCSV5_GUEST_COLLECTION,
                   host_endpoint_id=mapped.id, owners=frozenset({ann}),
                   grants=(RoleGrant(f"urn:globus:auth:identity:{ben}", "access_manager"),))
    secret = entry(endpoint_id, "100%_secret")
    with transaction(services.auth.sessions) as session:
        registry.publish(session, [mapped, shared, secret])
        registry.record_use(session, ben, [mapped.id])
        # In use: ben has an active task reading from the mapped collection.
        task = Task(id=uuid.uuid4(), owner_id=ben, submission_id=uuid.uuid4(),
                    type="TRANSFER", status="ACTIVE", deadline=utcnow(),
                    source_endpoint_id=mapped.id, destination_endpoint_id=None)
        session.add(task)
    with reading(services.auth.sessions) as session:
        assert search(session, as_ann, filter_scope="shared-by-me") == ["ann's share"]
        assert search(session, as_ben, filter_scope="shared-with-me") == ["ann's share"]
        assert search(session, as_ann, filter_scope="shared-with-me") == []
        assert search(session, as_ben, filter_scope="recently-used") == ["mapped one"]
        assert search(session, as_ben, filter_scope="in-use") == ["mapped one"]
        assert search(session, as_ann, filter_scope="in-use") == []
        assert search(session, as_ben, filter_fulltext="one",
                      filter_host_endpoint="") == ["mapped one"]
        assert search(session, as_ann, filter_fulltext="share",
                      filter_host_endpoint=str(mapped.id)) == ["ann's share"]
        # LIKE's wildcards in the text are matched literally.
        assert search(session, as_ann, filter_fulltext="%") == []
        assert search(session, as_ann, filter_fulltext="_") == []
    with transaction(services.auth.sessions) as session:
        ended = session.get(Task, task.id)
        assert ended is not None
        ended.status = "SUCCEEDED"
        registry.reconcile(session, endpoint_id, [mapped])
    with reading(services.auth.sessions) as session:
        assert search(session, as_ben, filter_scope="in-use") == []
        assert search(session, as_ben, filter_scope="recently-used") == ["mapped one"]
        assert search(session, as_ann, filter_scope="shared-by-me") == []
        with pytest.raises(APIError) as gone:
            registry.get_document(session, as_ann, str(shared.id))
        assert gone.value.code == "EndpointDeleted"
