"""The data dir's certificate authority and server certificate."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from cryptography import x509

from isthmus.core.tls import ensure_certificates


def names_in(cert_file: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(name) for name in san.get_values_for_type(x509.DNSName)} | {
        str(address) for address in san.get_values_for_type(x509.IPAddress)
    }


def test_certificates_are_made_once_and_reissued_for_new_names(tmp_path: Path) -> None:
    first = ensure_certificates(tmp_path, ["localhost", "127.0.0.1"])
    assert names_in(first.cert_file) == {"localhost", "127.0.0.1"}
    assert (first.key_file.stat().st_mode & 0o777) == 0o600
    cert_bytes = first.cert_file.read_bytes()

    again = ensure_certificates(tmp_path, ["127.0.0.1", "localhost"])
    assert again.cert_file.read_bytes() == cert_bytes  # nothing to do on a restart

    ca_bytes = first.ca_file.read_bytes() if first.ca_file else b""
    wider = ensure_certificates(tmp_path, ["localhost", "127.0.0.1", "files.example.edu"])
    assert names_in(wider.cert_file) == {"localhost", "127.0.0.1", "files.example.edu"}
    assert wider.ca_file is not None and wider.ca_file.read_bytes() == ca_bytes

    issuer = x509.load_pem_x509_certificate(ca_bytes)
    server = x509.load_pem_x509_certificate(wider.cert_file.read_bytes())
    server.verify_directly_issued_by(issuer)
    assert ipaddress.ip_address("127.0.0.1") in server.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.IPAddress)
