"""Opening a deployment: the database (migrated), the built-ins, the keys, and the services.

Both `isthmus serve` and the administrative commands start here, so either
works on a fresh data dir and both are safe while the other runs. This is
where the services are wired to each other through `core`'s interfaces:
Transfer and Connect learn who calls through Auth's introspection, Connect
registers its resource servers with Auth, publishes to Transfer's registry and
asks Transfer's access rules on guest collections; Transfer reaches collections through
Connect's `TransferAccess` with dependent tokens from Auth.
"""

from __future__ import annotations

import getpass
import ipaddress
import socket
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from isthmus.auth import identities
from isthmus.auth.bootstrap import ensure_builtins
from isthmus.auth.builtins import TRANSFER_CLIENT_ID
from isthmus.auth.endpoint_providers import InProcessIdentityProviders
from isthmus.auth.keys import SigningKey
from isthmus.auth.registrations import InProcessRegistrar
from isthmus.auth.service import AuthService, InProcessDependentTokens
from isthmus.connect.audit import AuditLog
from isthmus.connect.bootstrap import Site, ensure_default_endpoint
from isthmus.connect.data_access import DataAccess, TransferAccess
from isthmus.connect.endpoints import require_endpoint
from isthmus.connect.service import ConnectService
from isthmus.core.config import Settings
from isthmus.core.db import make_engine, make_sessionmaker, migrate, reading, transaction
from isthmus.core.encryption import SecretBox
from isthmus.core.tokens import CachedIntrospector
from isthmus.groups.membership import MembershipDirectory
from isthmus.groups.service import GroupsService
from isthmus.transfer.collections import CollectionOpener
from isthmus.transfer.notifications import Mailer, SMTPServer
from isthmus.transfer.runner import RunnerSettings, TaskRunner
from isthmus.transfer.service import TransferService


def open_deployment(settings: Settings) -> AuthService:
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = make_engine(settings.database_url)
    migrate(engine)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        ensure_builtins(session, settings.local_idp_domain or None)
    return AuthService(
        settings=settings,
        engine=engine,
        sessions=sessions,
        signing_key=SigningKey.load_or_create(settings.keys_dir),
        groups=MembershipDirectory(sessions),
        secret_box=SecretBox.load_or_create(settings.keys_dir),
    )


@dataclass
class Deployment:
    """Every service of the all-in-one process, wired together."""

    auth: AuthService
    groups: GroupsService
    transfer: TransferService
    connect: ConnectService
    # The endpoint's collections over HTTPS/WebDAV (each collection's https_url).
    data: DataAccess
    # `core.collection_access.CollectionAccess`: how Transfer reaches collections' files.
    collections: TransferAccess
    audit: AuditLog

    @property
    def settings(self) -> Settings:
        return self.auth.settings

    def task_runner(self) -> TaskRunner:
        """The runner that works on Transfer's tasks, reaching collections as Transfer does."""
        settings = self.settings
        assert self.transfer.opener is not None  # wired with the deployment
        return TaskRunner(self.auth.sessions, self.collections, self.auth.secret_box,
                          self.transfer.opener.dependent_tokens,
                          RunnerSettings(workers=settings.task_workers,
                                         lease_seconds=settings.task_lease_seconds,
                                         limits=self.transfer.active_limits))

    def connect_for(self, endpoint_id: uuid.UUID) -> ConnectService:
        """Connect for another endpoint of this deployment, wired as this one's is."""
        return connect_service(self.auth, self.transfer, endpoint_id)


def host_name(settings: Settings) -> str:
    """What "<host> files" is named after: the public host, or this machine for loopback."""
    host = urlsplit(settings.public_url).hostname or ""
    try:
        if ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).is_unspecified:
            return socket.gethostname()
    except ValueError:
        if host in ("", "localhost"):
            return socket.gethostname()
    return host


def site_of(settings: Settings, local_domain: str) -> Site:
    host = urlsplit(settings.public_url).hostname or settings.host
    return Site(
        host_name=host_name(settings),
        # GCSClient turns "https://host:port" into "https://host:port/api/"; a path prefix
        # of the public URL stays in front of /api.
        manager_url=settings.public_url.rstrip("/"),
        files_dir=settings.data_dir / "files",
        local_domain=local_domain,
        server_account=getpass.getuser(),
        addresses=(host,),
    )


def connect_service(
    auth: AuthService, transfer: TransferService, endpoint_id: uuid.UUID,
    auth_url: str | None = None,
) -> ConnectService:
    return ConnectService(
        sessions=auth.sessions, introspector=transfer.introspector,
        registrar=InProcessRegistrar(auth.sessions), registry=transfer,
        endpoint_id=endpoint_id,
        domain_name=urlsplit(auth.settings.public_url).hostname or "",
        # Connect asks Transfer's access rules when it serves a guest collection.
        access_rules=transfer, groups=auth.groups, identities=auth,
        secret_box=auth.secret_box,
        public_url=auth.settings.public_url,
        identity_providers=InProcessIdentityProviders(
            auth.sessions, auth.secret_box, auth_url or auth.settings.public_url),
    )


def open_services(
    settings: Settings, *, serving: bool = False, endpoint_id: uuid.UUID | None = None,
    auth_url: str | None = None,
) -> Deployment:
    """The deployment with Transfer and Connect; first start also makes the default endpoint.

    ``serving``: this is `isthmus serve` (or a Connect node), whose settings say where
    clients reach the server; the endpoint advertises that address (other commands do not
    know it), and Auth and Transfer are brought in line with Connect's tables.
    ``endpoint_id``: Connect serves this endpoint (one `endpoint setup` made) rather than
    the all-in-one's own; it is never created here. ``auth_url``: where Auth is reached
    (a node's; default the public URL).
    """
    auth = open_deployment(settings)
    introspector = CachedIntrospector(auth, settings.introspection_cache_seconds)
    # Groups learns who an identity id names from Auth's directory, never its tables.
    groups = GroupsService(sessions=auth.sessions, introspector=introspector, identities=auth)
    # Access rules may name identities (Auth's directory says who exists) and groups.
    transfer = TransferService(auth.sessions, introspector, identities=auth,
                               groups=auth.groups, secret_box=auth.secret_box,
                               active_limits={"TRANSFER": settings.transfer_active_tasks,
                                              "DELETE": settings.delete_active_tasks})
    if endpoint_id is None:
        with reading(auth.sessions) as session:
            site = site_of(settings, identities.local_domain(session))
        with transaction(auth.sessions) as session:
            endpoint, created = ensure_default_endpoint(session, site, advertise=serving)
            endpoint_id = endpoint.id
    else:
        with reading(auth.sessions) as session:
            require_endpoint(session, endpoint_id)
        created = False
    connect = connect_service(auth, transfer, endpoint_id, auth_url)
    if created or serving:
        connect.reconcile()
    # Callers (and their sessions) are known by introspection at Auth, linked identities
    # and policies by Auth's directories, never by Auth's tables.
    data = DataAccess(sessions=auth.sessions, introspector=introspector, identities=auth,
                      policies=auth, endpoint_id=endpoint_id, public_url=settings.public_url,
                      guests=connect.resolve_guest, secret_box=auth.secret_box)
    # Transfer reaches every collection of this database (any endpoint) with the same
    # checks, sharing the connectors; it gets data_access tokens by the dependent-token
    # grant, as its own client in Auth.
    # Both paths record their data operations in the endpoint's audit log.
    audit = AuditLog(auth.sessions)
    collections = TransferAccess(DataAccess(
        sessions=auth.sessions, introspector=introspector, identities=auth, policies=auth,
        endpoint_id=None, public_url=settings.public_url, pool=data.pool,
        guests=connect.resolve_guest, secret_box=auth.secret_box), audit)
    transfer.opener = CollectionOpener(collections,
                                       InProcessDependentTokens(auth, TRANSFER_CLIENT_ID))
    if settings.smtp_url:
        # Task owners are mailed when their tasks end, as their notify_* flags ask.
        Mailer(SMTPServer.from_url(settings.smtp_url),
               settings.mail_from or f"Isthmus <isthmus@{host_name(settings)}>",
               identities=auth).listen(auth.sessions)
    return Deployment(auth=auth, groups=groups, transfer=transfer, connect=connect, data=data,
                      collections=collections, audit=audit)
