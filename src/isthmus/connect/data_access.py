"""Data access to a collection over HTTPS: who the caller is there, and what they may do.

`DataAccess.open` takes a collection and a bearer token and answers with a `DataSession`:

1. the token must be active, issued for the collection's resource server (its id) with the
   scope ``https://auth.globus.org/scopes/<collection_id>/https``, and, on a mapped
   collection that is not high assurance, ``.../data_access`` too (which is why the SDK's
   ``GCSDownloader`` asks for both there); the collection must allow HTTPS and the method;
   the token's session (from introspection) must meet what the collection demands of
   sessions (`session_checks`: high-assurance storage, a guest auth policy);
2. `callers.resolve_caller` applies the gateway's allowed domains and identity mapping
   to the caller's identities and ``users_allow``/``users_deny`` to the account; the POSIX
   gateway's ``groups_allow``/``groups_deny`` apply to the account's groups;
3. path restrictions (`path_restrictions`, with `data_paths` for walking through folders
   and whole trees) are the gateway's, for this user: ``$HOME`` is the mapped account's
   home directory where the gateway's root holds it, and otherwise (Isthmus's own
   "<host> files" collection, where every local user maps to the server's account) a
   folder of the user's own at the gateway root, named by their full username so
   ``alice@campus.edu`` never shares ``alice@<local domain>``'s; it is made on first use;
4. the session borrows a connector over the collection root acting as the account, from a
   pool keeping one per (root, account). On an S3 or ActiveScale gateway there is no local
   account: the mapped name finds the caller's user credential there, whose keys the
   connector uses (none: `credential_not_found`, unless the gateway lets users without one
   act with the server's own keys); the bucket decides what those keys may do.

On a WebDAV gateway (`webdav_gateways`) there is no local account: after the allowed
domains, the caller's own OAuth2 user credential for the gateway opens a WebDAV connector
on the upstream folder (refused with how to make one when there is none), and the gateway's
path restrictions apply as written.

A guest collection (when the deployment gives a `GuestResolver`) needs only the ``https``
scope; its files are reached as the owner's account, and what the caller may do at each
path is the guest decision (`access.resolve_guest`: access rules, owner and managers,
capped by the gateway's and sharing restrictions), so no path restriction applies again.
Where an ``anonymous`` rule covers a path, reads there need no token at all.

Every `DataSession` operation checks the path the client named and the path it really
reaches (symlinks inside the root resolved), so a link cannot lead past a restriction.
Refusals are `APIError`s; storage errors propagate for the HTTP layer to map.

Each session knows whom the endpoint's audit records name (`audit.AuditCaller`: identity,
username, local account). Over HTTPS the data routes' middleware records whole requests;
sessions opened by `TransferAccess` record their own reads, writes, deletes, moves, mkdirs
and symlinks, refused or not.
"""

from __future__ import annotations

import functools
import logging
import posixpath
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from isthmus.connect import (
    credentials,
    documents,
    path_restrictions,
    s3_gateways,
    session_checks,
    webdav_gateways,
)
from isthmus.connect.access import CollectionLocation, IdentityMapper, ResolvedAccess, locate
from isthmus.connect.audit import AuditCaller, AuditLog
from isthmus.connect.callers import GatewayIdentityMapper, MappedCaller, resolve_caller
from isthmus.connect.connectors import ConnectorLease, ConnectorPool
from isthmus.connect.data_paths import Access, DataPaths, from_permission
from isthmus.connect.gateway_policies import (
    AccessPolicyError,
    check_groups_allowed,
    require_allowed_domain,
)
from isthmus.connect.guest_access import GuestDecision
from isthmus.connect.models import Collection, StorageGateway, UserCredential
from isthmus.connect.path_restrictions import UserPaths
from isthmus.core.collection_access import (
    TRANSFER_ALL,
    TRANSFER_RESOURCE_SERVER,
    ConsentRequiredError,
    data_access_dependency,
)
from isthmus.core.db import reading, utcnow
from isthmus.core.encryption import SealedValueError, SecretBox
from isthmus.core.errors import APIError
from isthmus.core.identities import IdentityDirectory
from isthmus.core.registrations import collection_scope
from isthmus.core.session_policies import PolicyDirectory
from isthmus.core.tokens import TokenInfo, TokenIntrospector
from isthmus.storage import paths
from isthmus.storage.accounts import LocalAccount
from isthmus.storage.connector import (
    AtomicWriter,
    CommitOutcome,
    Connector,
    Entry,
    EntryType,
    ReadStream,
    WriteOptions,
    WriteResult,
)
from isthmus.storage.errors import (
    AlreadyExists,
    NotFound,
    PathEscape,
    PermissionDenied,
    StorageError,
)

logger = logging.getLogger("isthmus.connect")
T = TypeVar("T")

DATA_PREFIX = "/data"

# `ConnectService.resolve_guest`: a guest collection, the caller's identities, a path.
GuestResolver = Callable[[uuid.UUID, Iterable[uuid.UUID], str], ResolvedAccess]


class Method(StrEnum):
    """The methods a collection's ``https_methods`` names; WebDAV's map onto them."""

    GET = "GET"
    PUT = "PUT"
    DELETE = "DELETE"


class SignInRequiredError(APIError):
    """No token on a GET or HEAD: the redirect to Auth's authorize page that GCS answers
    with and that `GCSDownloader` reads the collection id from (its one ``client_id``)."""

    def __init__(self, location: str) -> None:
        super().__init__(302, "sign_in_required", "Sign in to read this collection",
                         headers={"Location": location})


def not_authenticated(message: str, collection_id: uuid.UUID) -> APIError:
    return APIError(401, "not_authorized", message, headers={
        "WWW-Authenticate": f'Bearer realm="{collection_id}", error="invalid_token"'})


def insufficient(message: str, scopes: Iterable[str]) -> APIError:
    wanted = " ".join(scopes)
    return APIError(403, "permission_denied", message, headers={
        "WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{wanted}"'})


def forbidden(message: str) -> APIError:
    return APIError(403, "permission_denied", message)


def precondition_failed(message: str) -> APIError:
    return APIError(412, "precondition_failed", message)


def missing_parent(path: str) -> APIError:
    """RFC 4918: creating something in a folder that does not exist is a conflict (409)."""
    return APIError(409, "conflict", f"The folder that would hold '{path}' does not exist")


@dataclass(frozen=True)
class DataTarget:
    """What the HTTPS front needs to know of a collection before anyone is authenticated."""

    collection_id: uuid.UUID
    collection_type: str
    high_assurance: bool
    https_enabled: bool
    https_methods: frozenset[str]
    session: session_checks.SessionDemands
    # Storage reached with the caller's own OAuth2 credential (a WebDAV gateway).
    by_credential: bool = False
    endpoint_id: uuid.UUID | None = None

    @property
    def needs_data_access(self) -> bool:
        """Whether users reach it with a ``data_access`` token (consented per collection)."""
        return self.collection_type == "mapped" and not self.high_assurance

    @property
    def required_scopes(self) -> tuple[str, ...]:
        https = collection_scope(self.collection_id, "https")
        if self.needs_data_access:
            return (https, collection_scope(self.collection_id, "data_access"))
        return (https,)


class DataAccess:
    """The collections of one endpoint, served over HTTPS (thread-safe)."""

    def __init__(
        self, *, sessions: sessionmaker[Session], introspector: TokenIntrospector,
        identities: IdentityDirectory, policies: PolicyDirectory,
        endpoint_id: uuid.UUID | None, public_url: str,
        mapper: IdentityMapper | None = None, pool: ConnectorPool | None = None,
        guests: GuestResolver | None = None, secret_box: SecretBox | None = None,
    ) -> None:
        self.sessions = sessions
        self.introspector = introspector
        self.identities = identities
        self.policies = policies
        self.endpoint_id = endpoint_id  # None: every endpoint in the database
        # Auth's base URL (all-in-one: the server's), and the path collections are under.
        self.public_url = public_url if public_url.endswith("/") else public_url + "/"
        self.mapper: IdentityMapper = mapper or GatewayIdentityMapper()
        self.pool = pool or ConnectorPool()
        self.guests = guests
        # Opens WebDAV gateways' secrets and credentials, and S3 credentials' keys.
        self.secret_box = secret_box

    def href(self, collection_id: uuid.UUID) -> str:
        """The path of a collection's ``https_url`` on this server (no trailing slash)."""
        return f"{urlsplit(self.public_url).path.rstrip('/')}{DATA_PREFIX}/{collection_id}"

    def target(self, collection_id: uuid.UUID) -> DataTarget:
        with reading(self.sessions) as session:
            return self._target(session, collection_id)

    def _target(self, session: Session, collection_id: uuid.UUID) -> DataTarget:
        collection = session.get(Collection, collection_id)
        if collection is None or self.endpoint_id not in (None, collection.endpoint_id):
            raise APIError(404, "not_found", f"Collection {collection_id} not found")
        gateway = session.get(StorageGateway, collection.storage_gateway_id)
        assert gateway is not None  # a foreign key keeps it
        methods = collection.document.get("https_methods")
        return DataTarget(
            collection_id=collection.id, collection_type=collection.collection_type,
            high_assurance=gateway.high_assurance,
            https_enabled=collection.document.get("enable_https", True) is not False,
            https_methods=frozenset(Method) if methods is None else frozenset(methods),
            session=session_checks.demands_of(session, collection, gateway),
            by_credential=webdav_gateways.is_webdav(gateway),
            endpoint_id=collection.endpoint_id,
        )

    def sign_in_url(self, target: DataTarget) -> str:
        query = urlencode({"client_id": str(target.collection_id), "response_type": "code",
                           "scope": " ".join(target.required_scopes)})
        return f"{self.public_url}v2/oauth2/authorize?{query}"

    def open(
        self, collection_id: uuid.UUID, token: str | None, methods: Iterable[Method], *,
        redirect: bool = False, path: str = paths.ROOT,
    ) -> DataSession:
        """A session for the caller the token speaks for; see the module docstring.

        Without a token: an anonymous session when only reading a guest collection's
        ``path`` that an ``anonymous`` rule lets anyone see; otherwise
        `SignInRequiredError` when ``redirect`` (GET and HEAD), else 401.
        """
        if token is None:
            target = self.target(collection_id)
            anonymous = self._anonymous_session(target, methods, path)
            if anonymous is not None:
                return anonymous
            if redirect:
                raise SignInRequiredError(self.sign_in_url(target))
            raise not_authenticated("This collection needs a bearer token", collection_id)
        info, target = self.authenticate(collection_id, token)
        _check_token(target, info)
        _check_methods(target, methods)
        return self.session_for(target, info)

    def authenticate(self, collection_id: uuid.UUID, token: str) -> tuple[TokenInfo, DataTarget]:
        info = self.introspector.introspect(token)
        if info is None:
            raise not_authenticated("The bearer token is not active", collection_id)
        target = self.target(collection_id)
        if target.session.any:
            # Introspected again with the session's sign-ins, which only this needs.
            with_session = self.introspector.introspect(token, session_info=True)
            if with_session is None:
                raise not_authenticated("The bearer token is not active", collection_id)
            session_checks.check(target.session, with_session, self.policies, utcnow())
        return info, target

    def session_for(self, target: DataTarget, info: TokenInfo) -> DataSession:
        """The session of an authenticated caller whose token suits ``target``."""
        session = self._session_for(target, info)
        session.caller = AuditCaller(target.endpoint_id, target.collection_id,
                                     info.identity_id, info.username, session.account)
        return session

    def _session_for(self, target: DataTarget, info: TokenInfo) -> DataSession:
        if target.collection_type == "guest" and self.guests is not None:
            return self._guest_session(self.guests(target.collection_id, info.identities, "/"))
        if target.collection_type != "mapped":
            raise forbidden("This server does not serve guest collections")
        identities = self._identities_of(info)
        if target.by_credential:
            with reading(self.sessions) as session:
                return self._credential_session(session, target.collection_id, identities,
                                                info)
        with reading(self.sessions) as session:
            resolved = resolve_caller(session, target.collection_id, identities, self.mapper)
        return self._session(resolved)

    def _anonymous_session(self, target: DataTarget, methods: Iterable[Method],
                           path: str) -> DataSession | None:
        """Reads of a guest collection without a token (Globus's public sharing), where
        ``path`` is readable, or leads somewhere readable, by an ``anonymous`` rule; None
        when a token is needed instead."""
        if (target.collection_type != "guest" or self.guests is None
                or set(methods) != {Method.GET}):
            return None
        try:
            _check_methods(target, methods)
            canonical = paths.normalize(path)
            resolved = self.guests(target.collection_id, (), canonical)
        except (APIError, StorageError):
            return None  # whoever brings a token hears why
        assert resolved.guest is not None  # resolve_guest always gives it
        if GuestPaths(resolved.guest).access(canonical) is Access.NONE:
            return None
        session = self._guest_session(resolved)
        session.caller = AuditCaller(target.endpoint_id, target.collection_id, None, None,
                                     session.account)
        return session

    def _credential_session(
        self, session: Session, collection_id: uuid.UUID, identities: list[dict[str, Any]],
        info: TokenInfo,
    ) -> DataSession:
        """On a WebDAV gateway: the upstream folder, reached with the caller's OAuth2
        credential (no local account is involved)."""
        location = locate(session, collection_id)
        gateway = session.get(StorageGateway, location.storage_gateway_id)
        assert gateway is not None  # a foreign key keeps it
        try:
            require_allowed_domain(identities, location.allowed_domains)
        except AccessPolicyError as refused:
            raise APIError(403, "permission_denied", refused.message,
                           extra={"detail": refused.detail}) from None
        credential = webdav_gateways.credential_for(session, gateway, info.identities)
        if credential is None or self.secret_box is None:
            raise forbidden(f"You have no valid user credential for storage gateway "
                            f"{gateway.id}: make one with 'globus-connect-server "
                            f"user-credentials oauth-create {gateway.id} --globus-identity "
                            f"{info.username}'")
        lease = webdav_gateways.lease_connector(self.pool, self.sessions, self.secret_box,
                                                gateway, credential, location.root_path)
        rules = DataPaths(location.restrict_paths, UserPaths(None, credential.username))
        return DataSession(lease, rules, location.base_path, None,
                           account=credential.username)

    def _identities_of(self, info: TokenInfo) -> list[dict[str, Any]]:
        """The caller's identity first, then those linked to it (by username, for a stable
        order): the first that maps to an account decides who the caller is."""
        own = {"id": str(info.identity_id), "username": info.username}
        others = info.identities - {info.identity_id}
        if not others:
            return [own]
        linked = sorted(self.identities.lookup_identities(others).values(),
                        key=lambda record: record.username)
        return [own, *({"id": str(r.id), "username": r.username} for r in linked)]

    def _guest_session(self, resolved: ResolvedAccess) -> DataSession:
        """The guest's root as its owner's account; paths checked by the guest decision."""
        assert resolved.guest is not None  # resolve_guest always gives it
        lease = self._lease(resolved.location, resolved.local_username)
        # The base path is the guest's root itself, so the rules see collection paths.
        return DataSession(lease, GuestPaths(resolved.guest), paths.ROOT, None,
                           account=resolved.local_username)

    def _lease(self, location: CollectionLocation, username: str) -> ConnectorLease:
        try:
            return self.pool.lease(location.root_path, LocalAccount.lookup(username))
        except PermissionDenied:
            raise  # e.g. a server that is not root, asked to act as another account
        except StorageError as error:
            logger.warning("collection %s: its root cannot be opened: %s",
                           location.collection_id, error.message)
            raise APIError(503, "unavailable", "This collection's storage is not available "
                           "now") from None

    def _s3_session(self, resolved: MappedCaller) -> DataSession:
        location = resolved.location
        identity_id = uuid.UUID(str(resolved.identity["id"]))
        with reading(self.sessions) as session:
            gateway = session.get(StorageGateway, location.storage_gateway_id)
            assert gateway is not None  # a foreign key keeps it
            credential = session.scalars(select(UserCredential).where(
                UserCredential.storage_gateway_id == gateway.id,
                UserCredential.identity_id == identity_id,
                UserCredential.username == resolved.local_username,
            ).order_by(UserCredential.created)).first()
            keys = None
            if credential is None and s3_gateways.credential_required(gateway):
                raise credentials.credential_not_found(gateway, identity_id,
                                                       resolved.local_username)
            if credential is not None:
                if credential.invalid:
                    raise credentials.invalid_credential(credential.id, "it has been "
                                                         "invalidated")
                try:
                    if self.secret_box is None:
                        raise SealedValueError("this process holds no key to open secrets")
                    keys = s3_gateways.keys_for(self.secret_box, credential,
                                                location.root_path)
                except SealedValueError:
                    logger.warning("user credential %s: its S3 secret does not open",
                                   credential.id)
                    raise credentials.invalid_credential(
                        credential.id, "its secret key cannot be read; register the keys "
                        "again") from None
            endpoint_url = s3_gateways.endpoint_url(gateway)
        bucket, prefix = s3_gateways.bucket_and_prefix(location.root_path)
        lease = self.pool.lease_s3(endpoint_url, bucket, prefix, keys)
        rules = DataPaths(location.restrict_paths, UserPaths(None, resolved.local_username))
        return DataSession(lease, rules, location.base_path, None,
                           account=resolved.local_username)

    def _session(self, resolved: MappedCaller) -> DataSession:
        location = resolved.location
        if location.connector_id in documents.S3_CONNECTORS:
            return self._s3_session(resolved)
        account = LocalAccount.lookup(resolved.local_username)
        if location.groups_allow or location.groups_deny:
            try:
                check_groups_allowed(account.name, account.group_names(),
                                     location.groups_allow, location.groups_deny)
            except AccessPolicyError as refused:
                raise APIError(403, "permission_denied", refused.message,
                               extra={"detail": refused.detail}) from None
        home, per_user = _home(location.gateway_root, account,
                               str(resolved.identity.get("username") or ""))
        rules = DataPaths(location.restrict_paths, UserPaths(home, account.name))
        lease = self._lease(location, account.name)
        session = DataSession(lease, rules, location.base_path, home, account=account.name)
        if per_user and home is not None and rules.access(home) >= Access.READ:
            session.make_home()
        return session


class TransferAccess:
    """`core.collection_access.CollectionAccess`: Transfer reaching this deployment's
    collections for a user, with `DataAccess`'s checks bar those of HTTPS itself (its scope,
    enabled flag and methods)."""

    def __init__(self, data: DataAccess, audit_log: AuditLog | None = None) -> None:
        self.data = data
        self.audit_log = audit_log

    def open(self, collection_id: uuid.UUID, token: str) -> DataSession:
        session = self._open(collection_id, token)
        session.audit_log = self.audit_log
        return session

    def _open(self, collection_id: uuid.UUID, token: str) -> DataSession:
        info, target = self.data.authenticate(collection_id, token)
        for_collection = info.resource_server == str(collection_id)
        if target.needs_data_access:
            scope = collection_scope(collection_id, "data_access")
            if not for_collection or scope not in info.scopes:
                raise ConsentRequiredError(collection_id,
                                           [data_access_dependency(collection_id)])
        elif not for_collection and (info.resource_server != TRANSFER_RESOURCE_SERVER
                                     or TRANSFER_ALL not in info.scopes):
            raise insufficient(f"The bearer token is neither Transfer's nor for collection "
                               f"{collection_id}", target.required_scopes)
        return self.data.session_for(target, info)


# `AuditLog.record` for one operation, its caller, collection, path and channel given.
Recorder = Callable[..., None]


def _outcome(failed: Exception) -> dict[str, Any]:
    """An audit record's status and result for a failed operation."""
    if isinstance(failed, APIError):
        return {"status": failed.status, "result": failed.code}
    if isinstance(failed, StorageError):  # NotFound: not_found, as GCS codes are written
        code = re.sub(r"(?<!^)(?=[A-Z])", "_", type(failed).__name__).lower()
        return {"status": failed.http_status, "result": code}
    return {"status": None, "result": "failed"}


def _recorded_read(stream: ReadStream, record: Recorder) -> ReadStream:
    """``stream``, recorded with the bytes read from it once it is closed or fails."""
    done = False
    read_bytes = 0

    def finish(**outcome: Any) -> None:
        nonlocal done
        if not done:
            done = True
            record(size=read_bytes, **outcome)

    def counted(read: Callable[[], T], size: Callable[[T], int]) -> T:
        nonlocal read_bytes
        try:
            data = read()
        except Exception as failed:
            finish(**_outcome(failed))
            raise
        read_bytes += size(data)
        return data

    def close() -> None:
        stream.close()
        finish()

    return ReadStream(stream.entry, lambda size: counted(lambda: stream.read(size), len), close,
                      chunk_size=stream.chunk_size,
                      readinto=lambda buffer: counted(lambda: stream.readinto(buffer), int))


def _recorded_write(writer: AtomicWriter, record: Recorder) -> AtomicWriter:
    """``writer``, recorded when it is committed (its size), fails or is aborted."""
    def finished(result: WriteResult | None, error: BaseException | None) -> None:
        if result is not None:
            record(size=result.size)
        elif isinstance(error, Exception):
            record(size=writer.size, **_outcome(error))
        else:
            record(size=writer.size, result="aborted")

    writer.on_finish = finished
    return writer


@dataclass(frozen=True)
class GuestPaths:
    """`DataPaths`' questions answered by a guest decision over collection paths."""

    decision: GuestDecision

    def access(self, path: str) -> Access:
        level = from_permission(self.decision.permission(path))
        if level is Access.NONE and self.decision.leads_to_readable(path):
            return Access.TRAVERSE
        return level

    def least_within(self, path: str) -> Access:
        return from_permission(self.decision.least_within(path))


def _check_token(target: DataTarget, info: TokenInfo) -> None:
    wanted = target.required_scopes
    if info.resource_server != str(target.collection_id):
        raise insufficient(f"The bearer token is not for collection {target.collection_id}: "
                           f"it needs the scopes {' '.join(wanted)}", wanted)
    missing = [scope for scope in wanted if scope not in info.scopes]
    if missing:
        raise insufficient(f"The bearer token lacks the scope {' and '.join(missing)}", wanted)


def _check_methods(target: DataTarget, methods: Iterable[Method]) -> None:
    if not target.https_enabled:
        raise forbidden("HTTPS access is disabled on this collection")
    refused = sorted(str(method) for method in methods if method not in target.https_methods)
    if refused:
        raise forbidden(f"This collection does not allow {', '.join(refused)} over HTTPS")


def _home(gateway_root: str, account: LocalAccount, username: str) -> tuple[str | None, bool]:
    """The user's home in the gateway's namespace (None: they have none there), and whether
    it is a folder of their own that Isthmus makes rather than the account's home."""
    try:
        home = path_restrictions.home_directory(gateway_root, account.home, username)
    except ValueError:
        return None, False  # a username that cannot name a folder has no home here
    own_home = path_restrictions.within(posixpath.normpath(gateway_root),
                                        posixpath.normpath(account.home or "/"))
    return home, own_home is None


class DataSession:
    """One caller on one collection: storage operations behind their access checks.

    Paths are collection paths (``/a/b``; a leading ``~`` is the caller's home). Blocking:
    the HTTP layer runs these in worker threads. `close` gives the connector back.
    """

    def __init__(self, lease: ConnectorLease, rules: DataPaths | GuestPaths, base_path: str,
                 home: str | None, *, account: str | None = None) -> None:
        self._lease = lease
        # Who the audit records name: the local account (or credential) storage is used as,
        # and (set by `DataAccess`) the caller.
        self.account = account
        self.caller: AuditCaller | None = None
        # Set by `TransferAccess`: the session then records its own operations (over HTTPS
        # the data routes' middleware records whole requests instead).
        self.audit_log: AuditLog | None = None
        self.connector: Connector = lease.connector
        self.rules = rules
        self.base_path = base_path  # the collection root in the gateway's namespace
        # The caller's home as a collection path, when the collection holds it.
        self.home = path_restrictions.within(base_path, home) if home is not None else None
        self.holds_many_writers = self.connector.holds_many_writers

    def close(self) -> None:
        self._lease.release()

    def __enter__(self) -> DataSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- paths and checks ------------------------------------------------------------------

    def path(self, requested: str) -> str:
        """A client's collection path made canonical, ``~`` expanded."""
        parts = paths.split(requested)
        if parts[:1] == ["~"]:
            if self.home is None:
                raise NotFound("This collection holds no home folder for you", "/~")
            parts = paths.split(self.home) + parts[1:]
        return paths.join_parts(parts)

    def _gateway_path(self, path: str) -> str:
        return paths.normalize(posixpath.join(self.base_path, path.lstrip("/")))

    def access(self, path: str) -> Access:
        return self.rules.access(self._gateway_path(path))

    def _reach(self, path: str, needed: Access, *, follow: bool = True,
               tree: bool = False, folder_lands: bool = False) -> str:
        """The real path an operation needing ``needed`` at ``path`` acts on, once both the
        named and the real path allow it (with ``tree``, everywhere beneath them too when a
        folder is there or ``folder_lands`` there: a file, a link or a new name holds
        nothing else)."""
        check = self._checker(path, needed)
        real = self.connector.real_path(path, follow=follow)
        check(real)
        if tree and (folder_lands or self._is_folder(real)):
            self._allow(path, needed, tree=True)
            if real != path:
                self._allow(real, needed, tree=True)
        return real

    def _is_folder(self, real: str) -> bool:
        try:
            return self.connector.stat(real).type is EntryType.DIR
        except NotFound:
            return False

    def _allow(self, path: str, needed: Access, *, tree: bool) -> None:
        gateway_path = self._gateway_path(path)
        held = (self.rules.least_within(gateway_path) if tree
                else self.rules.access(gateway_path))
        if held >= needed:
            return
        if held >= Access.READ:
            raise PermissionDenied(f"'{path}' may be read but not changed", path)
        raise PermissionDenied(f"'{path}' is outside the paths you may use here", path)

    def _reach_new(self, path: str, *, tree: bool = False, folder_lands: bool = False) -> str:
        """`_reach` for a name to create or replace (a final link is the link itself)."""
        try:
            return self._reach(path, Access.READ_WRITE, follow=False, tree=tree,
                               folder_lands=folder_lands)
        except NotFound:
            raise missing_parent(path) from None

    def make_home(self) -> None:
        """The caller's own folder, made the first time it is needed."""
        if self.home is None or self.home == paths.ROOT:
            return
        try:
            self.connector.mkdir(self.home)
        except AlreadyExists:
            pass
        except StorageError as error:
            logger.warning("could not make the home folder %s: %s", self.home, error.message)

    # --- reading -------------------------------------------------------------------------

    def stat(self, path: str) -> Entry:
        """What ``path`` reaches (through symlinks), named as the client named it."""
        real = self._reach(path, Access.TRAVERSE)
        entry = self.connector.stat(real).resolved
        if entry.type is EntryType.SYMLINK:  # a link whose target vanished meanwhile
            raise NotFound(f"'{path}' does not exist", path)
        return replace(entry, name=posixpath.basename(path) or "/")

    def find(self, path: str) -> Entry | None:
        try:
            return self.stat(path)
        except NotFound:
            return None

    def list(self, path: str, *, links: bool = False) -> list[tuple[str, Entry]]:
        """(collection path, entry) of each child the caller may see, without what a
        restriction hides: files and directories (links reported as what they reach), or
        with ``links`` every entry, links as such (a link whose target the caller may not
        see, or that leads nowhere, with no ``target``)."""
        real = self._reach(path, Access.TRAVERSE)
        shown = []
        for entry in self.connector.list(real):
            child = paths.join(path, entry.name)
            if self.access(child) < Access.TRAVERSE:
                continue
            if links:
                shown.append((child, self._visible_link(entry)))
                continue
            target = entry.resolved
            if target.type in (EntryType.FILE, EntryType.DIR):  # not devices, dangling links
                shown.append((child, replace(target, name=entry.name)))
        return shown

    def _visible_link(self, entry: Entry) -> Entry:
        if entry.target is None or entry.link_target is None:
            return entry
        if self.access(entry.link_target) >= Access.TRAVERSE:
            return entry
        return replace(entry, target=None)

    def _audited(self, operation: str, path: str, act: Callable[[], T], *,
                 destination: str | None = None,
                 until: Callable[[T, Recorder], T] | None = None) -> T:
        """``act``, recorded in the audit log when the session keeps one: when it returns,
        or (``until``) when what it opened ends, so the record has the bytes really moved
        and how the transfer of them ended."""
        if self.audit_log is None or self.caller is None:
            return act()
        record = functools.partial(self.audit_log.record, self.caller,
                                   collection_id=self.caller.collection_id, channel="transfer",
                                   operation=operation, path=path, destination=destination)
        try:
            value = act()
        except Exception as failed:
            record(**_outcome(failed))
            raise
        if until is not None:
            return until(value, record)
        record()
        return value

    def _checker(self, path: str, needed: Access) -> Callable[[str], None]:
        """``path`` checked now; the check returned is given the real path once found (by
        `_reach`, or by a connector in the same walk that opens or makes something there)."""
        self._allow(path, needed, tree=False)

        def check(real: str) -> None:
            if real != path:
                self._allow(real, needed, tree=False)

        return check

    def open_read(self, path: str, offset: int = 0, length: int | None = None) -> ReadStream:
        return self._audited("READ", path, lambda: self.connector.open_read_checked(
            path, self._checker(path, Access.READ), offset, length), until=_recorded_read)
    def digests(self, path: str, algorithms: Iterable[str]) -> dict[str, bytes]:
        return self.connector.digests(self._reach(path, Access.READ), algorithms)

    # --- writing -------------------------------------------------------------------------

    def begin_write(self, path: str, options: WriteOptions) -> AtomicWriter:
        """An `AtomicWriter` for ``path`` (a symlink there is replaced, not written through)."""

        def begin() -> AtomicWriter:
            check = self._checker(path, Access.READ_WRITE)
            try:
                return self.connector.begin_write_checked(path, options, check)
            except NotFound:
                raise missing_parent(path) from None

        return self._audited("WRITE", path, begin, until=_recorded_write)

    def commit_all(self, writers: Sequence[AtomicWriter]) -> Sequence[CommitOutcome]:
        """Commit writers this session began (each checked when it began), durably
        together: see `Connector.commit_all`."""
        return self.connector.commit_all(writers)

    def set_mtime(self, path: str, mtime: float) -> None:
        self.connector.set_mtime(self._reach(path, Access.READ_WRITE), mtime)

    def mkdir(self, path: str) -> None:
        self._audited("MKDIR", path, lambda: self.connector.mkdir(self._reach_new(path)))

    def symlink(self, path: str, target: str) -> None:
        self._audited("SYMLINK", path, lambda: self.connector.symlink(self._reach_new(path),
                                                                      target))

    def delete(self, path: str) -> None:
        """Remove a file, a link, or a directory with everything in it."""
        self._audited("DELETE", path, lambda: self.connector.delete(
            self._reach(path, Access.READ_WRITE, follow=False, tree=True), recursive=True))

    def move(self, source: str, destination: str, *, overwrite: bool) -> bool:
        """Move (rename) within the collection; True when ``destination`` was new."""
        return self._audited("MOVE", source, lambda: self._move(
            source, destination, overwrite=overwrite), destination=destination)

    def _move(self, source: str, destination: str, *, overwrite: bool) -> bool:
        old = self._reach(source, Access.READ_WRITE, follow=False, tree=True)
        new = self._reach_new(destination, tree=True, folder_lands=self._is_folder(old))
        moved = self.connector.stat(old)  # NotFound names the source
        if new != old and path_restrictions.within(old, new) is not None:
            raise forbidden(f"'{source}' cannot be moved into itself")  # RFC 4918 §9.9.4
        existing = self._existing(new)
        if existing is None or old == new:
            self.connector.rename(old, new)
            return existing is None
        if not overwrite:
            raise precondition_failed(f"'{destination}' exists and Overwrite is F")
        if existing.type is EntryType.DIR or moved.type is EntryType.DIR:
            # RFC 4918 §9.9.3: overwriting deletes what was there first.
            self.connector.delete(new, recursive=True)
            self.connector.rename(old, new)
        else:
            self.connector.rename(old, new, overwrite=True)  # one atomic replacement
        return False

    def copy(self, source: str, destination: str, *, overwrite: bool, recursive: bool) -> bool:
        """Copy within the collection; True when ``destination`` was new. Directories copy
        with their contents (``recursive``); links are copied as what they reach, except
        links to directories (which could loop) and links leading nowhere, left out. What
        the caller may not read refuses the whole copy before anything is written."""
        old = self._reach(source, Access.READ, tree=True)
        new = self._reach_new(destination, tree=True, folder_lands=self._is_folder(old))
        if path_restrictions.within(old, new) is not None:
            raise forbidden(f"'{source}' cannot be copied onto or into itself")
        entry = self.connector.stat(old).resolved
        existing = self._existing(new)
        if existing is not None and not overwrite:
            raise precondition_failed(f"'{destination}' exists and Overwrite is F")
        # Listed (and each link's target checked) before the destination changes.
        tree = (list(self._tree_files(old, new)) if entry.type is EntryType.DIR and recursive
                else [])
        if existing is not None:
            self.connector.delete(new, recursive=True)
        if entry.type is EntryType.DIR:
            self.connector.mkdir(new)
            for child, copy_to in tree:
                if child is None:
                    self.connector.mkdir(copy_to)
                else:
                    self._copy_file(child, copy_to)
        else:
            self._copy_file(old, new)
        return existing is None

    def _existing(self, real: str) -> Entry | None:
        try:
            return self.connector.stat(real)
        except NotFound:
            return None

    def _copy_file(self, source: str, destination: str) -> None:
        with self.connector.open_read(source) as stream:
            self.connector.write_atomic(destination, stream,
                                        WriteOptions(algorithms=(), overwrite=False))

    def _tree_files(self, source: str,
                    destination: str) -> Iterator[tuple[str | None, str]]:
        """(file to copy, or None for a directory to make; where) for a tree, each directory
        before what it holds (iteratively: a tree may be deeper than Python's stack)."""
        pending = [(source, destination)]
        while pending:
            directory, copy_to = pending.pop()
            for entry in self.connector.list(directory):
                child, target = paths.join(directory, entry.name), paths.join(copy_to, entry.name)
                if entry.type is EntryType.DIR:
                    yield None, target
                    pending.append((child, target))
                elif entry.type is EntryType.FILE:
                    yield child, target
                elif entry.type is EntryType.SYMLINK and entry.is_file():
                    # A link to what the caller may not read refuses the copy, as the
                    # tree check does for what lies in the tree (PermissionDenied).
                    try:
                        yield self._reach(child, Access.READ), target
                    except (PathEscape, NotFound):
                        continue
