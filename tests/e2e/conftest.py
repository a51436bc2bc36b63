"""Module fixtures shared by the tests on the session's endpoint site (a module that
defines a fixture of the same name uses its own):

- ``site``: the session's `EndpointSite`, with the SDK pointed at its server;
- ``owner``: the endpoint owner's `GCSClient`;
- ``files_gateway``: the storage gateway of the server's "<host> files" collection.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from globus_sdk import GCSClient

from tests.conftest import EndpointSite
from tests.e2e.helpers import pointed_at
from tests.e2e.test_connect_manager_api import gcs_client


@pytest.fixture(scope="module")
def site(endpoint_site: EndpointSite) -> Iterator[EndpointSite]:
    with pointed_at(endpoint_site.server):
        yield endpoint_site


@pytest.fixture(scope="module")
def owner(site: EndpointSite) -> GCSClient:
    return gcs_client(site, site.owner)


@pytest.fixture(scope="module")
def files_gateway(site: EndpointSite, owner: GCSClient) -> str:
    return str(owner.get_collection(site.collection_id)["storage_gateway_id"])
