"""Custom domains with `globus-connect-server endpoint domain ...` / `collection domain ...`.

An administrator (a client holding the endpoint's administrator role, as in automation)
gives the endpoint a domain of its own and a wildcard domain, each with its certificate
files, and names a collection under the wildcard. The advertised URLs follow: the endpoint
document's and Transfer's ``gcs_manager_url``, the collection's ``https_url`` and
Transfer's ``https_server``, as the official GCSClient and TransferClient read them. Once
the Manager is advertised under a name no DNS resolves here, the CLI reaches it with
``--use-explicit-host 127.0.0.1``, as GCS administrators do on a node.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import globus_sdk
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from globus_sdk import GCSClient

from tests.conftest import shell_environment
from tests.e2e.data_helpers import DataSite, start_data_site
from tests.e2e.helpers import TRANSFER_ALL, native_login, pointed_at
from tests.e2e.test_gcs_cli import gcs, manage_collections, ok

LOCAL = ("--use-explicit-host", "127.0.0.1")


def certificate(directory: Path, name: str, *dns_names: str,
                key: ec.EllipticCurvePrivateKey | None = None,
                expired: bool = False) -> tuple[Path, Path]:
    """A self-signed certificate for ``dns_names`` and its key, as PEM files (the key of
    the certificate is ``key`` when given: then the files do not match)."""
    own_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC) - timedelta(days=60 if expired else 0)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])])
    built = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
             .public_key((key or own_key).public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=30))
             .add_extension(x509.SubjectAlternativeName([x509.DNSName(item)
                                                         for item in dns_names]), critical=False)
             .sign(key or own_key, hashes.SHA256()))
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_bytes(built.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(own_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_file, key_file


@dataclass(frozen=True)
class Admin:
    site: DataSite
    env: dict[str, str]  # a shell with GCS_CLI_* credentials of an endpoint administrator
    gcs: GCSClient
    transfer: globus_sdk.TransferClient
    certs: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return gcs(self.env, *args, *LOCAL)

    def collection(self) -> dict[str, object]:
        with pointed_at(self.site.server):
            return dict(self.gcs.get_collection(self.site.collection_id).data)

    def advertised(self, entity_id: str) -> dict[str, object]:
        with pointed_at(self.site.server):
            return dict(self.transfer.get_endpoint(entity_id).data)


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Admin]:
    tmp = tmp_path_factory.mktemp("gcs-domains")
    for site in start_data_site(tmp):
        server = site.server
        tokens = native_login(server, site.owner.username, site.owner.password,
                              [manage_collections(site.endpoint_id), TRANSFER_ALL])
        robot = server.create_client("domain automation", "client_identity")
        with pointed_at(server):  # the SDK reads where the services are when it is built
            client = GCSClient(server.manager_url, authorizer=globus_sdk.AccessTokenAuthorizer(
                tokens[site.endpoint_id]["access_token"]))
            transfer = globus_sdk.TransferClient(authorizer=globus_sdk.AccessTokenAuthorizer(
                tokens["transfer.api.globus.org"]["access_token"]))
            client.create_role(globus_sdk.GCSRoleDocument(
                role="administrator",
                principal=f"urn:globus:auth:identity:{robot['id']}"))
        env = {**shell_environment(server, tmp / "home"),
               "ISTHMUS_DATA_DIR": str(tmp / "elsewhere"),
               "GCS_CLI_CLIENT_ID": robot["id"], "GCS_CLI_CLIENT_SECRET": robot["secret"],
               "GCS_CLI_ENDPOINT_ID": site.endpoint_id}
        certs = tmp / "certs"
        certs.mkdir()
        yield Admin(site, env, client, transfer, certs)


def test_the_endpoint_is_advertised_under_its_domain_and_back(admin: Admin) -> None:
    site, port = admin.site, admin.site.server.port
    cert, key = certificate(admin.certs, "data", "data.example.org")
    created = ok(gcs(admin.env, "endpoint", "domain", "create", "data.example.org",
                     "--certificate-file", str(cert), "--private-key-file", str(key)))
    assert created.strip() == "Message: Created Domain data.example.org"
    advertised = f"https://data.example.org:{port}"
    shown = json.loads(ok(admin.run("endpoint", "show", "-F", "json")))
    assert shown["gcs_manager_url"] == advertised
    assert admin.advertised(site.endpoint_id)["gcs_manager_url"] == advertised
    with pointed_at(site.server):
        assert admin.gcs.get_gcs_info()["domain_name"] == "data.example.org"
    # Collections without a domain of their own are reached under the endpoint's.
    collection = admin.collection()
    assert collection["https_url"] == f"{advertised}/data/{site.collection_id}"
    assert collection["manager_url"] == advertised
    assert admin.advertised(site.collection_id)["https_server"] == collection["https_url"]

    listed = json.loads(ok(admin.run("endpoint", "domain", "list", "-F", "json")))
    assert listed == [{"DATA_TYPE": "domain#1.0.0", "domain_name": "data.example.org",
                       "wildcard": False, "certificate": cert.read_text(),
                       "certificate_chain": None}]  # never the private key
    text = ok(admin.run("endpoint", "domain", "show", "data.example.org"))
    assert text.splitlines()[:2] == ["Domain Name:         data.example.org",
                                     "Wildcard:            False"]
    # One domain of its own at a time.
    again = admin.run("endpoint", "domain", "create", "other.example.org",
                      "--certificate-file", str(cert), "--private-key-file", str(key))
    assert again.returncode == 1 and "delete that domain first" in again.stderr

    deleted = ok(admin.run("endpoint", "domain", "delete", "data.example.org"))
    assert deleted.strip() == "Message: Deleted Domain data.example.org"
    assert admin.advertised(site.endpoint_id)["gcs_manager_url"] == site.server.manager_url
    assert admin.collection()["https_url"] == site.url
    assert ok(gcs(admin.env, "endpoint", "domain", "list")).strip() == "No domains."


def test_a_collection_takes_a_name_under_a_wildcard_domain(admin: Admin) -> None:
    site, port = admin.site, admin.site.server.port
    cert, key = certificate(admin.certs, "lab", "*.lab.example.org")
    ok(gcs(admin.env, "endpoint", "domain", "create", "lab.example.org", "--wildcard",
           "--certificate", str(cert), "--private-key", str(key)))
    shown = json.loads(ok(gcs(admin.env, "endpoint", "domain", "show", "*.lab.example.org",
                              "-F", "json")))
    assert (shown["domain_name"], shown["wildcard"]) == ("lab.example.org", True)

    ok(gcs(admin.env, "collection", "domain", "set", site.collection_id,
           "files.lab.example.org"))
    expected = f"https://files.lab.example.org:{port}/data/{site.collection_id}"
    collection = admin.collection()
    assert collection["https_url"] == expected
    assert collection["domain"] == {"DATA_TYPE": "domain#1.0.0",
                                    "domain_name": "files.lab.example.org", "wildcard": False}
    assert admin.advertised(site.collection_id)["https_server"] == expected
    # The endpoint itself is still advertised at its node's address.
    assert admin.advertised(site.endpoint_id)["gcs_manager_url"] == site.server.manager_url
    text = ok(gcs(admin.env, "collection", "domain", "show", site.collection_id))
    assert "files.lab.example.org" in text

    # The wildcard domain cannot go while a collection's name relies on it.
    busy = gcs(admin.env, "endpoint", "domain", "delete", "*.lab.example.org")
    assert busy.returncode == 1 and "delete their domains first" in busy.stderr
    ok(gcs(admin.env, "collection", "domain", "delete", site.collection_id))
    assert admin.collection()["https_url"] == site.url
    assert admin.collection()["domain"] is None
    ok(gcs(admin.env, "endpoint", "domain", "delete", "*.lab.example.org"))


@pytest.mark.parametrize(("names", "other_key", "expired", "domain", "fragment"), [
    (("data.example.org",), True, False, "data.example.org",
     "does not belong to the certificate"),
    (("www.example.org",), False, False, "data.example.org",
     "does not cover data.example.org"),
    (("*.example.org",), False, False, "a.b.example.org", "does not cover a.b.example.org"),
    (("data.example.org",), False, True, "data.example.org", "is not valid now"),
])
def test_certificates_that_do_not_prove_the_name_are_refused(
    admin: Admin, names: tuple[str, ...], other_key: bool, expired: bool, domain: str,
    fragment: str,
) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1()) if other_key else None
    cert, key = certificate(admin.certs, "bad", *names, key=stranger, expired=expired)
    refused = gcs(admin.env, "endpoint", "domain", "create", domain,
                  "--certificate-file", str(cert), "--private-key-file", str(key))
    assert refused.returncode == 1, refused.stdout
    assert refused.stderr.count("\n") == 1 and fragment in refused.stderr
    assert ok(gcs(admin.env, "endpoint", "domain", "list")).strip() == "No domains."


def test_a_collection_name_needs_a_certificate_or_a_wildcard_domain(admin: Admin) -> None:
    site = admin.site
    refused = gcs(admin.env, "collection", "domain", "set", site.collection_id,
                  "files.example.net")
    assert refused.returncode == 1
    assert "No wildcard domain of the endpoint covers files.example.net" in refused.stderr
    cert, key = certificate(admin.certs, "net", "files.example.net")
    ok(gcs(admin.env, "collection", "domain", "set", site.collection_id, "files.example.net",
           "--certificate-file", str(cert), "--private-key-file", str(key)))
    shown = json.loads(ok(gcs(admin.env, "collection", "domain", "show", site.collection_id,
                              "-F", "json")))
    assert shown["certificate"] == cert.read_text() and "private_key" not in shown
    ok(gcs(admin.env, "collection", "domain", "delete", site.collection_id))
    missing = gcs(admin.env, "collection", "domain", "show", site.collection_id)
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_the_manager_reads_no_certificate_from_its_own_disk(admin: Admin) -> None:
    with pointed_at(admin.site.server), pytest.raises(globus_sdk.GCSAPIError) as refused:
        admin.gcs.put(f"collections/{admin.site.collection_id}/domain", data={
            "DATA_TYPE": "domain#1.0.0", "domain_name": "files.example.net",
            "certificate_path": "/etc/ssl/certs/x.pem", "private_key_path": "/etc/shadow"})
    assert refused.value.http_status == 422
    assert "instead of a path on the node" in refused.value.message
