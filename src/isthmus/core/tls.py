"""A private certificate authority and server certificate, made on first start.

Globus services are HTTPS-only and the SDK's GCSClient accepts only https://
addresses, so an all-in-one server needs a certificate that clients can trust
through ``GLOBUS_SDK_VERIFY_SSL=<ca file>``.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

# What the server certificate covers, beside it, so that a restart can tell
# without parsing X.509 (and importing its libraries) that nothing needs doing.
SUMMARY_FILE = "server.json"


@dataclass(frozen=True)
class ServerCertificate:
    cert_file: Path
    key_file: Path
    ca_file: Path | None


def ensure_certificates(
    tls_dir: Path, host_names: list[str], ca_dir: Path | None = None
) -> ServerCertificate:
    """Make the CA once; (re)issue the server certificate when names are missing from it.

    ``ca_dir``: the CA lives there rather than in ``tls_dir`` (a Connect node beside an
    all-in-one server has a certificate of its own from the deployment's CA, which clients
    already trust).
    """
    tls_dir.mkdir(parents=True, exist_ok=True)
    authority = ca_dir or tls_dir
    authority.mkdir(parents=True, exist_ok=True)
    ca_cert_file, ca_key_file = authority / "ca.pem", authority / "ca-key.pem"
    cert_file, key_file = tls_dir / "server.pem", tls_dir / "server-key.pem"
    if not ca_cert_file.exists():
        _write_ca(ca_cert_file, ca_key_file)
    names = sorted(set(host_names))
    if not cert_file.exists() or not _covers(tls_dir / SUMMARY_FILE, names):
        not_after = _write_server_certificate(
            ca_cert_file, ca_key_file, cert_file, key_file, names
        )
        summary = {"names": names, "not_after": not_after.isoformat()}
        (tls_dir / SUMMARY_FILE).write_text(json.dumps(summary))
    return ServerCertificate(cert_file, key_file, ca_cert_file)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write_private(path: Path, data: bytes) -> None:
    temporary = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    temporary.replace(path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_ca(cert_file: Path, key_file: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Isthmus local CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(days=1))
        .not_valid_after(_now() + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_file, _key_pem(key))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _subject_alternative_names(names: list[str]) -> list[x509.GeneralName]:
    from cryptography import x509

    result: list[x509.GeneralName] = []
    for name in names:
        try:
            result.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            result.append(x509.DNSName(name))
    return result


def _covers(summary_file: Path, names: list[str]) -> bool:
    """True when the certificate names every host and has more than 30 days left."""
    try:
        summary = json.loads(summary_file.read_text())
        not_after = datetime.datetime.fromisoformat(summary["not_after"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    renew_after = not_after - datetime.timedelta(days=30)
    return set(names) <= set(summary.get("names", [])) and _now() < renew_after


def _write_server_certificate(
    ca_cert_file: Path, ca_key_file: Path, cert_file: Path, key_file: Path, names: list[str]
) -> datetime.datetime:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert = x509.load_pem_x509_certificate(ca_cert_file.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_file.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{ca_key_file} does not hold the CA's EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(days=1))
        .not_valid_after(_now() + datetime.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(_subject_alternative_names(names)),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(key_file, _key_pem(key))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert.not_valid_after_utc
