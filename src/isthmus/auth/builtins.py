"""What every Isthmus Auth has from first start: resource servers, scopes, public clients.

Resource-server names and scope strings are identifiers hard-coded in the SDK
and in users' scripts, so they stay byte-identical to Globus's, including the
``https://auth.globus.org`` prefix, wherever the server lives.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

_NAMESPACE = uuid.UUID("6f0b6f3c-7c0e-4a8e-9a35-5f3d1e2b9c41")


def builtin_id(name: str) -> uuid.UUID:
    """A fixed id for a built-in record, the same on every deployment."""
    return uuid.uuid5(_NAMESPACE, name)


AUTH_RESOURCE_SERVER = "auth.globus.org"
TRANSFER_RESOURCE_SERVER = "transfer.api.globus.org"
AUTH_CLIENT_ID = builtin_id("client:auth.globus.org")
TRANSFER_CLIENT_ID = builtin_id("client:transfer.api.globus.org")
TIMERS_CLIENT_ID = uuid.UUID("524230d7-ea86-4a52-8312-86065a9e0417")
FLOWS_CLIENT_ID = uuid.UUID("eec9b274-0c81-4334-bdc2-54e90e689b9a")
COMPUTE_CLIENT_ID = uuid.UUID("facd7ccc-c5f4-42aa-916b-a0e270e2c2a9")
TUTORIAL_CLIENT_ID = uuid.UUID("61338d24-54d5-408f-a10d-66c06b59f6d2")
GLOBUS_CLI_TEMPLATE_ID = uuid.UUID("95fdeba8-fac2-42bd-a357-e068d82ff78e")
# The native client `globus-connect-server login` signs in with (the real CLI's id is not
# public; this one is fixed so every Isthmus knows it).
GCS_CLI_CLIENT_ID = builtin_id("client:globus-connect-server-cli")

LOCAL_IDP_ID = builtin_id("idp:local")
CLIENTS_IDP_ID = builtin_id("idp:clients")
CLIENTS_DOMAIN = "clients.auth.globus.org"
DEFAULT_LOCAL_DOMAIN = "isthmus.local"

TRANSFER_ALL = "urn:globus:auth:scope:transfer.api.globus.org:all"
VIEW_IDENTITY_SET = "urn:globus:auth:scope:auth.globus.org:view_identity_set"
OIDC_SCOPES = ("openid", "profile", "email")


@dataclass(frozen=True)
class ScopeSpec:
    suffix: str
    name: str
    description: str
    # Full scope string; None means the urn form for the resource server.
    scope_string: str | None = None
    dependencies: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResourceServerSpec:
    client_id: uuid.UUID
    name: str
    resource_server: str
    scopes: tuple[ScopeSpec, ...] = field(default_factory=tuple)

    def scope_string(self, spec: ScopeSpec) -> str:
        if spec.scope_string:
            return spec.scope_string
        return f"urn:globus:auth:scope:{self.resource_server}:{spec.suffix}"


def _https(client_id: uuid.UUID, suffix: str) -> str:
    return f"https://auth.globus.org/scopes/{client_id}/{suffix}"


def _auth_scope(suffix: str, name: str, description: str) -> ScopeSpec:
    return ScopeSpec(suffix, name, description)


RESOURCE_SERVERS: tuple[ResourceServerSpec, ...] = (
    ResourceServerSpec(AUTH_CLIENT_ID, "Globus Auth", AUTH_RESOURCE_SERVER, (
        ScopeSpec("openid", "Log in", "Know who you are (your identity id).", "openid"),
        ScopeSpec("profile", "Profile", "View your name, username and organization.", "profile"),
        ScopeSpec("email", "Email address", "View your email address.", "email"),
        _auth_scope("manage_projects", "Manage projects",
                    "Create and manage your projects, clients and scopes."),
        _auth_scope("view_authentications", "View authentications",
                    "View information about your recent authentications."),
        _auth_scope("view_clients", "View clients", "View the clients you administer."),
        _auth_scope("view_clients_and_scopes", "View clients and scopes",
                    "View the clients and scopes you administer."),
        _auth_scope("view_consents", "View consents", "View the consents you have granted."),
        _auth_scope("view_identities", "View identities", "View identities you have linked."),
        _auth_scope("view_identity_set", "View linked identities",
                    "View the identities linked to your account."),
    )),
    ResourceServerSpec(TRANSFER_CLIENT_ID, "Globus Transfer", TRANSFER_RESOURCE_SERVER, (
        ScopeSpec("all", "Manage data using Globus Transfer",
                  "Transfer files and manage endpoints, collections and tasks."),
        ScopeSpec("gcp_install", "Install Globus Connect Personal",
                  "Register Globus Connect Personal endpoints."),
    )),
    ResourceServerSpec(builtin_id("client:groups.api.globus.org"), "Globus Groups",
                       "groups.api.globus.org", (
        ScopeSpec("all", "Manage your groups", "View and manage your groups and memberships."),
        ScopeSpec("view_my_groups_and_memberships", "View groups and memberships",
                  "View your groups and memberships."),
    )),
    ResourceServerSpec(builtin_id("client:nexus.api.globus.org"), "Globus Nexus (legacy)",
                       "nexus.api.globus.org", (
        ScopeSpec("groups", "Manage groups (legacy)", "Legacy access to groups."),
    )),
    ResourceServerSpec(builtin_id("client:search.api.globus.org"), "Globus Search",
                       "search.api.globus.org", (
        ScopeSpec("all", "Manage Globus Search", "Search, ingest and manage indexes."),
        ScopeSpec("search", "Search", "Query search indexes."),
        ScopeSpec("ingest", "Ingest", "Ingest documents into search indexes."),
        ScopeSpec("globus_connect_server", "Search for Globus Connect Server",
                  "Index collections of Globus Connect Server."),
    )),
    ResourceServerSpec(TIMERS_CLIENT_ID, "Globus Timers", str(TIMERS_CLIENT_ID), (
        ScopeSpec("timer", "Manage timers", "Create and manage scheduled tasks.",
                  _https(TIMERS_CLIENT_ID, "timer"), dependencies=(TRANSFER_ALL,)),
    )),
    ResourceServerSpec(FLOWS_CLIENT_ID, "Globus Flows", "flows.globus.org", tuple(
        ScopeSpec(suffix, f"Flows: {suffix.replace('_', ' ')}",
                  f"Globus Flows permission '{suffix}'.", _https(FLOWS_CLIENT_ID, suffix))
        for suffix in ("all", "manage_flows", "view_flows", "run", "run_status", "run_manage")
    )),
    ResourceServerSpec(COMPUTE_CLIENT_ID, "Globus Compute", "funcx_service", (
        ScopeSpec("all", "Globus Compute", "Register and run functions.",
                  _https(COMPUTE_CLIENT_ID, "all")),
    )),
)


@dataclass(frozen=True)
class PublicClientSpec:
    client_id: uuid.UUID
    name: str
    is_template: bool


PUBLIC_CLIENTS: tuple[PublicClientSpec, ...] = (
    PublicClientSpec(TUTORIAL_CLIENT_ID, "Globus SDK Tutorial", is_template=False),
    PublicClientSpec(GLOBUS_CLI_TEMPLATE_ID, "Globus CLI", is_template=True),
    PublicClientSpec(GCS_CLI_CLIENT_ID, "Globus Connect Server CLI", is_template=False),
)
