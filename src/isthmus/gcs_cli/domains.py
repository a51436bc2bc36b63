"""`endpoint domain ...` and `collection domain ...`: custom DNS domains with their
certificates, through the Manager's /api/endpoint/domains and /api/collections/{id}/domain.

The certificate files are read here and sent as PEM text; the Manager checks that the key
matches the certificate and that the certificate covers the name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click
from cryptography import x509

from isthmus.gcs_cli import output
from isthmus.gcs_cli.base import GCSGroup
from isthmus.gcs_cli.common import manager, set_if
from isthmus.gcs_cli.errors import EXIT_USAGE, CLIError
from isthmus.gcs_cli.session import check_uuid, envelope

DOMAIN_DATA_TYPE = "domain#1.0.0"


def _expires(document: Mapping[str, Any]) -> str | None:
    pem = document.get("certificate")
    if not pem:
        return None
    return x509.load_pem_x509_certificate(str(pem).encode()).not_valid_after_utc.isoformat()


DOMAIN_FIELDS: list[output.Field] = [
    ("Domain Name", "domain_name"), ("Wildcard", "wildcard"),
    ("Certificate Expires", _expires),
]


def _read_pem(path: str | None, option: str) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).expanduser().read_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not a PEM text file"
        raise CLIError(f"{option}: cannot read {path}: {reason}", EXIT_USAGE) from None


def _certificate_options(required: bool) -> Callable[[Any], Any]:
    def decorate(function: Any) -> Any:
        for option in reversed([
            click.option("--certificate-file", "--certificate", "certificate_file",
                         required=required, metavar="FILE",
                         help="The PEM certificate for the domain."),
            click.option("--private-key-file", "--private-key", "private_key_file",
                         required=required, metavar="FILE",
                         help="The PEM private key of the certificate (unencrypted)."),
            click.option("--certificate-chain-file", "--certificate-chain",
                         "certificate_chain_file", metavar="FILE",
                         help="PEM intermediate certificates, if the CA uses any."),
        ]):
            function = option(function)
        return function

    return decorate


def _domain_document(domain_name: str, options: Mapping[str, Any],
                     wildcard: bool = False) -> dict[str, Any]:
    document: dict[str, Any] = {"DATA_TYPE": DOMAIN_DATA_TYPE, "domain_name": domain_name,
                                "wildcard": wildcard}
    set_if(document, "certificate", _read_pem(options["certificate_file"],
                                              "--certificate-file"))
    set_if(document, "private_key", _read_pem(options["private_key_file"],
                                              "--private-key-file"))
    set_if(document, "certificate_chain", _read_pem(options["certificate_chain_file"],
                                                    "--certificate-chain-file"))
    return document


def _print_one(response: Any) -> None:
    output.print_record(dict(envelope(response)["data"][0]), DOMAIN_FIELDS)


def endpoint_domains() -> GCSGroup:
    group = GCSGroup("domain", help="Custom DNS domains of the endpoint: its own (the host "
                                    "of its GCS Manager URL) and wildcard ones its "
                                    "collections may take names under.")

    @group.command("create")
    @click.argument("domain_name")
    @_certificate_options(required=True)
    @click.option("--wildcard", is_flag=True,
                  help="The certificate is for *.DOMAIN_NAME: collections may take names "
                       "one label below it without certificates of their own.")
    def create(domain_name: str, wildcard: bool, **options: Any) -> None:
        """Advertise the endpoint under DOMAIN_NAME (or add a wildcard domain)."""
        response = manager().gcs_client().post(
            "endpoint/domains", data=_domain_document(domain_name, options, wildcard))
        output.print_message(envelope(response), f"Created Domain {domain_name}")

    @group.command("list")
    def list_domains() -> None:
        """List the endpoint's domains."""
        found = [dict(item) for item in manager().gcs_client().get("endpoint/domains")["data"]]
        if not found and not output.is_json():
            click.echo("No domains.")
            return
        output.print_table(found, DOMAIN_FIELDS)

    @group.command("show")
    @click.argument("domain_name")
    def show(domain_name: str) -> None:
        """Show one of the endpoint's domains (a wildcard one as *.DOMAIN_NAME)."""
        _print_one(manager().gcs_client().get(f"endpoint/domains/{domain_name}"))

    @group.command("delete")
    @click.argument("domain_name")
    def delete(domain_name: str) -> None:
        """Delete one of the endpoint's domains (a wildcard one as *.DOMAIN_NAME)."""
        response = manager().gcs_client().delete(f"endpoint/domains/{domain_name}")
        output.print_message(envelope(response), f"Deleted Domain {domain_name}")

    return group


def collection_domains() -> GCSGroup:
    group = GCSGroup("domain", help="A custom DNS domain a collection is advertised under.")

    @group.command("set")
    @click.argument("collection_id")
    @click.argument("domain_name")
    @_certificate_options(required=False)
    def set_domain(collection_id: str, domain_name: str, **options: Any) -> None:
        """Advertise the collection under DOMAIN_NAME: with a certificate for it, or a name
        one label below a wildcard domain of the endpoint."""
        target = check_uuid(collection_id, "COLLECTION_ID")
        response = manager().gcs_client().put(f"collections/{target}/domain",
                                              data=_domain_document(domain_name, options))
        output.print_message(envelope(response), f"Set the domain of Collection {target}")

    @group.command("show")
    @click.argument("collection_id")
    def show(collection_id: str) -> None:
        """Show the collection's domain."""
        target = check_uuid(collection_id, "COLLECTION_ID")
        _print_one(manager().gcs_client().get(f"collections/{target}/domain"))

    @group.command("delete")
    @click.argument("collection_id")
    def delete(collection_id: str) -> None:
        """Advertise the collection under the endpoint's host again."""
        target = check_uuid(collection_id, "COLLECTION_ID")
        response = manager().gcs_client().delete(f"collections/{target}/domain")
        output.print_message(envelope(response), f"Deleted the domain of Collection {target}")

    return group
