"""Custom DNS domains (`domain#1.0.0`): the names the endpoint's Manager and its collections
are advertised under, each proved by a certificate whose private key the administrator holds.

Real GCS serves each such name with its own virtual host. Isthmus runs no DNS and serves
every name from the same process: a domain changes the advertised URLs (the endpoint's
``gcs_manager_url``, a collection's ``https_url``, and what Transfer publishes), keeping their
port and path, so clients reach the server once the name resolves to it. The certificate
must match its key and cover the name; the key is kept sealed, never shown.

An endpoint has at most one domain of its own (its Manager's name) and any number of
wildcard domains (``*.<name>``): a collection may take a name one label below a wildcard
domain without a certificate of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import UnsupportedAlgorithm
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from isthmus.connect import authz, collections, schemas
from isthmus.connect.authz import Caller
from isthmus.connect.changes import Changes
from isthmus.connect.errors import conflict, exists, not_found, unprocessable
from isthmus.connect.models import Collection, CustomDomain, Endpoint
from isthmus.core.encryption import SecretBox

if TYPE_CHECKING:
    from cryptography import x509

PRIVATE_KEY_PURPOSE = "connect-domain-private-key"
WILDCARD_PREFIX = "*."


def domain_document(domain: CustomDomain) -> dict[str, Any]:
    """What the Manager shows of a domain: never its private key."""
    return {"DATA_TYPE": schemas.DOMAIN.data_type, "domain_name": domain.domain_name,
            "wildcard": domain.wildcard, "certificate": domain.certificate,
            "certificate_chain": domain.certificate_chain}


def _name_and_wildcard(values: Mapping[str, Any]) -> tuple[str, bool]:
    name = str(values["domain_name"])
    wildcard = bool(values.get("wildcard"))
    if name.startswith(WILDCARD_PREFIX):
        return name[len(WILDCARD_PREFIX):], True
    return name, wildcard


def _parse(body: Mapping[str, Any]) -> tuple[str, bool, dict[str, Any]]:
    values = schemas.DOMAIN.parse(body, creating=True)
    on_disk = [key for key in schemas.DOMAIN_PATH_FIELDS if values.get(key) is not None]
    if on_disk:
        # The Manager reads nothing from its own disk on a caller's say-so.
        raise unprocessable(f"{', '.join(on_disk)}: send the PEM text in certificate, "
                            "certificate_chain and private_key instead of a path on the node")
    name, wildcard = _name_and_wildcard(values)
    return name, wildcard, values


# --- certificates ------------------------------------------------------------------------
# cryptography's X.509 modules are imported where certificates are read: they take a
# twentieth of a second to import, which every server start would otherwise pay.


def _public_key_bytes(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    data: bytes = key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    return data


def _certificate_names(certificate: x509.Certificate) -> list[str]:
    """The DNS names a certificate is for: its subjectAltName, else its common name."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return [str(attribute.value) for attribute in
                certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return [str(name) for name in extension.value.get_values_for_type(x509.DNSName)]


def covers(certificate_name: str, host: str) -> bool:
    """Whether a certificate name covers a host name (``*.a.b`` covers ``x.a.b``, one label,
    and ``*.a.b`` itself)."""
    name, host = certificate_name.lower().rstrip("."), host.lower()
    if name == host:
        return True
    if not name.startswith(WILDCARD_PREFIX) or host.startswith(WILDCARD_PREFIX):
        return False
    label, _, rest = host.partition(".")
    return bool(label) and rest == name[len(WILDCARD_PREFIX):]


def check_certificate(host: str, certificate: str | None, private_key: str | None,
                      chain: str | None) -> None:
    """The certificate and its key are a pair, valid now, and the certificate covers
    ``host`` (``*.<name>`` for a wildcard domain); the chain, if any, is PEM certificates."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if not certificate or not private_key:
        raise unprocessable(f"A certificate and its private_key are needed for {host}")
    try:
        parsed = x509.load_pem_x509_certificate(certificate.encode())
    except ValueError:
        raise unprocessable("certificate is not a PEM X.509 certificate") from None
    try:
        key = serialization.load_pem_private_key(private_key.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise unprocessable("private_key is not an unencrypted PEM private key") from None
    if chain:
        try:
            x509.load_pem_x509_certificates(chain.encode())
        except ValueError:
            raise unprocessable("certificate_chain is not a list of PEM certificates") \
                from None
    if _public_key_bytes(key.public_key()) != _public_key_bytes(parsed.public_key()):
        raise unprocessable("The private key does not belong to the certificate")
    now = datetime.now(UTC)
    if not parsed.not_valid_before_utc <= now <= parsed.not_valid_after_utc:
        raise unprocessable(f"The certificate is not valid now (valid from "
                            f"{parsed.not_valid_before_utc:%Y-%m-%d} to "
                            f"{parsed.not_valid_after_utc:%Y-%m-%d})")
    names = _certificate_names(parsed)
    if not any(covers(name, host) for name in names):
        raise unprocessable(f"The certificate does not cover {host}: it is for "
                            f"{', '.join(names) or 'no DNS name'}")


# --- the endpoint's domains ----------------------------------------------------------------


def _taken(session: Session, name: str, wildcard: bool) -> None:
    found = session.scalar(select(CustomDomain.id).where(
        CustomDomain.domain_name == name, CustomDomain.wildcard == wildcard))
    if found is not None:
        raise exists(f"The domain {WILDCARD_PREFIX if wildcard else ''}{name} is already in "
                     "use")


def _insert(session: Session, domain: CustomDomain) -> None:
    """Add the domain; two requests claiming one name at once: the unique constraint picks
    one, the other is told the name is taken."""
    try:
        with session.begin_nested():
            session.add(domain)
    except IntegrityError:
        raise exists(f"The domain {domain.domain_name} is already in use") from None


def _endpoint_domains(session: Session, endpoint: Endpoint) -> list[CustomDomain]:
    return list(session.scalars(select(CustomDomain).where(
        CustomDomain.endpoint_id == endpoint.id, CustomDomain.collection_id.is_(None))
        .order_by(CustomDomain.created, CustomDomain.id)))


def _require_endpoint_domain(session: Session, endpoint: Endpoint, key: str) -> CustomDomain:
    """The endpoint's domain ``key`` names: ``<name>`` or, for a wildcard one, ``*.<name>``."""
    wildcard = key.startswith(WILDCARD_PREFIX)
    name = key.lower().removeprefix(WILDCARD_PREFIX)
    for domain in _endpoint_domains(session, endpoint):
        if domain.domain_name == name and domain.wildcard == wildcard:
            return domain
    raise not_found("Domain", key)


def list_endpoint_domains(session: Session, endpoint: Endpoint,
                          caller: Caller) -> list[dict[str, Any]]:
    authz.require_endpoint_admin(session, endpoint, caller, "list the endpoint's domains")
    return [domain_document(domain) for domain in _endpoint_domains(session, endpoint)]


def get_endpoint_domain(session: Session, endpoint: Endpoint, caller: Caller,
                        key: str) -> dict[str, Any]:
    authz.require_endpoint_admin(session, endpoint, caller, "read the endpoint's domain")
    return domain_document(_require_endpoint_domain(session, endpoint, key))


def create_endpoint_domain(
    session: Session, endpoint: Endpoint, caller: Caller, body: Mapping[str, Any],
    box: SecretBox, changes: Changes,
) -> dict[str, Any]:
    """Add a domain (or a wildcard domain) of the endpoint; its own domain becomes the host
    of the Manager URL and of every collection without a domain of its own."""
    authz.require_endpoint_admin(session, endpoint, caller, "add a domain to the endpoint")
    name, wildcard, values = _parse(body)
    # One domain of its own: concurrent requests for two names take turns on the row.
    session.refresh(endpoint, with_for_update=True)
    if not wildcard and endpoint.custom_domain is not None:
        raise conflict(f"The endpoint is already advertised as {endpoint.custom_domain}: "
                       "delete that domain first", [endpoint.custom_domain])
    _taken(session, name, wildcard)
    host = WILDCARD_PREFIX + name if wildcard else name
    check_certificate(host, values.get("certificate"), values.get("private_key"),
                      values.get("certificate_chain"))
    domain = CustomDomain(endpoint_id=endpoint.id, collection_id=None, domain_name=name,
                          wildcard=wildcard, certificate=values["certificate"],
                          certificate_chain=values.get("certificate_chain"),
                          private_key=box.seal(values["private_key"], PRIVATE_KEY_PURPOSE))
    _insert(session, domain)
    if not wildcard:
        endpoint.custom_domain = name
        changes.all_collections = True
    session.flush()
    return domain_document(domain)


def delete_endpoint_domain(session: Session, endpoint: Endpoint, caller: Caller, key: str,
                           changes: Changes) -> None:
    authz.require_endpoint_admin(session, endpoint, caller, "delete the endpoint's domain")
    domain = _require_endpoint_domain(session, endpoint, key)
    if domain.wildcard:
        relying = [str(row.collection_id) for row in session.scalars(select(CustomDomain).where(
            CustomDomain.endpoint_id == endpoint.id, CustomDomain.certificate.is_(None)))
            if covers(WILDCARD_PREFIX + domain.domain_name, row.domain_name)]
        if relying:
            raise conflict(f"Collections use names under {key}: delete their domains first",
                           relying)
    else:
        endpoint.custom_domain = None
        changes.all_collections = True
    session.delete(domain)
    session.flush()


# --- a collection's domain -----------------------------------------------------------------


def _administered_collection(session: Session, endpoint: Endpoint, caller: Caller,
                             collection_id: str, action: str) -> Collection:
    authz.require_endpoint_admin(session, endpoint, caller, action)
    return collections.require_collection(session, endpoint, collection_id)


def _collection_domain(session: Session, collection: Collection) -> CustomDomain | None:
    return session.scalar(select(CustomDomain).where(
        CustomDomain.collection_id == collection.id))


def get_collection_domain(session: Session, endpoint: Endpoint, caller: Caller,
                          collection_id: str) -> dict[str, Any]:
    collection = _administered_collection(session, endpoint, caller, collection_id,
                                          "read the collection's domain")
    domain = _collection_domain(session, collection)
    if domain is None:
        raise not_found("Domain of collection", collection_id)
    return domain_document(domain)


def set_collection_domain(
    session: Session, endpoint: Endpoint, caller: Caller, collection_id: str,
    body: Mapping[str, Any], box: SecretBox, changes: Changes,
) -> dict[str, Any]:
    """The collection is advertised under this name: one its own certificate covers, or
    one label below a wildcard domain of the endpoint (then no certificate is needed)."""
    collection = _administered_collection(session, endpoint, caller, collection_id,
                                          "set the collection's domain")
    name, wildcard, values = _parse(body)
    if wildcard:
        raise unprocessable("A collection's domain names one host: wildcard domains belong "
                            "to the endpoint")
    current = _collection_domain(session, collection)
    if current is None or current.domain_name != name:
        _taken(session, name, False)
    if values.get("certificate") is None and values.get("private_key") is None:
        under = [domain for domain in _endpoint_domains(session, endpoint)
                 if domain.wildcard and covers(WILDCARD_PREFIX + domain.domain_name, name)]
        if not under:
            raise unprocessable(f"No wildcard domain of the endpoint covers {name}: give a "
                                "certificate and private_key for it")
        sealed = None
    else:
        check_certificate(name, values.get("certificate"), values.get("private_key"),
                          values.get("certificate_chain"))
        sealed = box.seal(values["private_key"], PRIVATE_KEY_PURPOSE)
    if current is not None:
        session.delete(current)
        session.flush()
    domain = CustomDomain(endpoint_id=endpoint.id, collection_id=collection.id,
                          domain_name=name, wildcard=False,
                          certificate=values.get("certificate"),
                          certificate_chain=values.get("certificate_chain"),
                          private_key=sealed)
    _insert(session, domain)
    collection.custom_domain = name
    session.flush()
    changes.published.add(collection.id)
    return domain_document(domain)


def delete_collection_domain(session: Session, endpoint: Endpoint, caller: Caller,
                             collection_id: str, changes: Changes) -> None:
    collection = _administered_collection(session, endpoint, caller, collection_id,
                                          "delete the collection's domain")
    domain = _collection_domain(session, collection)
    if domain is None:
        raise not_found("Domain of collection", collection_id)
    session.delete(domain)
    collection.custom_domain = None
    session.flush()
    changes.published.add(collection.id)
