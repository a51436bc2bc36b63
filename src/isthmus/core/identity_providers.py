"""How a Connect endpoint registers its own OpenID Connect provider with Auth.

`globus-connect-server oidc register` makes the endpoint's provider (`connect.oidc_provider`)
an identity provider of Auth for the endpoint's domain: Auth's login page offers it, and
whoever signs in through it is ``<account>@<domain>``. Auth implements
`IdentityProviderRegistrar`; Connect calls it. An endpoint may register only the DNS name
its provider is served from (Auth checks the issuer answers there), and only the one
provider Auth keeps for it (`provider_name`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol


def provider_name(endpoint_id: uuid.UUID) -> str:
    """The short name of the identity provider Auth keeps for an endpoint's own provider."""
    return f"gcs-{endpoint_id}"


@dataclass(frozen=True)
class EndpointProvider:
    endpoint_id: uuid.UUID
    display_name: str
    issuer: str
    domain: str
    client_id: str
    client_secret: str
    # PEM certificates Auth must trust for the issuer's HTTPS (a deployment's own CA).
    ca_certificates: str | None
    # Where Auth's sign-ins come back to (`IdentityProviderRegistrar.redirect_uri`).
    redirect_uri: str


class IdentityProviderRegistrar(Protocol):
    def redirect_uri(self) -> str:
        """Auth's callback, the redirect URI its sign-ins at the provider name."""

    def register_provider(self, provider: EndpointProvider) -> uuid.UUID:
        """Make (or replace) the endpoint's identity provider; returns its id in Auth.
        Raises `core.errors.APIError` (4xx) when Auth refuses it."""

    def unregister_provider(self, endpoint_id: uuid.UUID) -> None:
        """Stop sign-ins through the endpoint's provider (identities it made are kept)."""
