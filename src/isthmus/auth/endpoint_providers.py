"""Connect endpoints' own OpenID Connect providers: Auth's side of `core.identity_providers`.

An endpoint registers its provider as the upstream identity provider named
``gcs-<endpoint id>``, for one domain: the host name its issuer is served from, so an
endpoint can never claim another site's users. The issuer must answer discovery now.
Whoever signs in through it is named by the ``preferred_username`` it sends,
``<account>@<domain>`` (`upstream.upstream_username` keeps it only within that domain).
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from isthmus.auth import oidc_client, upstream
from isthmus.auth.models import IdentityProvider, UpstreamProvider
from isthmus.core.db import transaction
from isthmus.core.encryption import SecretBox
from isthmus.core.errors import APIError, bad_request
from isthmus.core.identity_providers import EndpointProvider, provider_name


def settings_of(provider: EndpointProvider) -> upstream.ProviderSettings:
    host = (urlsplit(provider.issuer).hostname or "").lower()
    if provider.domain.lower() != host:
        raise bad_request(f"An endpoint's identity provider may only have the domain its "
                          f"issuer is served from ({host}), not {provider.domain}")
    return upstream.validated(upstream.ProviderSettings(
        short_name=provider_name(provider.endpoint_id), display_name=provider.display_name,
        issuer=provider.issuer, client_id=provider.client_id,
        client_secret=provider.client_secret, domains=[host],
        username_claim="preferred_username", ca_certificates=provider.ca_certificates))


def replace_provider(session: Session, box: SecretBox,
                     settings: upstream.ProviderSettings) -> uuid.UUID:
    """Add the endpoint's provider, or give the one it registered before its new settings."""
    existing = session.scalar(select(IdentityProvider).where(
        IdentityProvider.short_name == settings.short_name))
    if existing is not None:
        session.execute(delete(UpstreamProvider)
                        .where(UpstreamProvider.identity_provider_id == existing.id))
        session.flush()
    return upstream.add_oidc_provider(session, box, settings).provider.id


class InProcessIdentityProviders:
    """`core.identity_providers.IdentityProviderRegistrar` writing Auth's tables in process."""

    def __init__(self, sessions: sessionmaker[Session], box: SecretBox, auth_url: str) -> None:
        self._sessions = sessions
        self._box = box
        # Auth's public URL: a node's own differs (`node_server.NodeConfig.auth_url`).
        self._auth_url = auth_url.rstrip("/") + "/"

    def redirect_uri(self) -> str:
        return self._auth_url + upstream.CALLBACK_PATH

    def register_provider(self, provider: EndpointProvider) -> uuid.UUID:
        settings = settings_of(provider)
        # Blocking, in the caller's worker thread: the issuer must answer as itself now,
        # and is stored as its discovery document spells it.
        try:
            discovery = asyncio.run(oidc_client.discover(settings.relying_party(), fresh=True))
        except APIError as error:
            raise APIError(422, "UNPROCESSABLE", error.message) from None
        settings = dataclasses.replace(settings, issuer=discovery.issuer)
        with transaction(self._sessions) as session:
            return replace_provider(session, self._box, settings)

    def unregister_provider(self, endpoint_id: uuid.UUID) -> None:
        with transaction(self._sessions) as session:
            try:
                upstream.delete_oidc_provider(session, provider_name(endpoint_id))
            except APIError as error:
                if error.status != 404:
                    raise
