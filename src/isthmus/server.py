"""The all-in-one ASGI application: every service's routes on one port."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from isthmus import __version__
from isthmus.auth import account_pages as auth_account_pages
from isthmus.auth import api as auth_api
from isthmus.auth import developer_pages as auth_developer_pages
from isthmus.auth import identities_api as auth_identities_api
from isthmus.auth import login_pages as auth_login_pages
from isthmus.auth import manage_api as auth_manage_api
from isthmus.auth import pages as auth_pages
from isthmus.auth import retention
from isthmus.auth import security_pages as auth_security_pages
from isthmus.auth import upstream_pages as auth_upstream_pages
from isthmus.auth.openapi import finish_document
from isthmus.auth.service import AuthService
from isthmus.connect import api as connect_api
from isthmus.connect import audit, data_access, data_api, oidc_api
from isthmus.connect import errors as connect_errors
from isthmus.connect.audit import AuditMiddleware
from isthmus.connect.data_access import DATA_PREFIX
from isthmus.core.access_log import AccessLog, AccessLogMiddleware
from isthmus.core.db import Checkpointer, transaction, utcnow
from isthmus.core.direct_routes import DirectRoutes
from isthmus.core.errors import APIError
from isthmus.deployment import Deployment
from isthmus.groups import api as groups_api
from isthmus.transfer import api as transfer_api
from isthmus.transfer import endpoint_manager_api
from isthmus.transfer import errors as transfer_errors

logger = logging.getLogger("isthmus")

# SQLite's log is copied into the database this often, off the request path (`Checkpointer`).
CHECKPOINT_INTERVAL_SECONDS = 1.0

# Every service's routes, in the order they are matched.
SERVICE_ROUTERS: dict[str, tuple[APIRouter, ...]] = {
    "auth": (
        auth_api.router,
        auth_pages.router,
        auth_login_pages.router,
        auth_upstream_pages.router,
        auth_account_pages.router,
        auth_security_pages.router,
        auth_developer_pages.router,
        auth_manage_api.router,
        auth_identities_api.router,
    ),
    "groups": (groups_api.router,),
    "transfer": (transfer_api.router, endpoint_manager_api.router),
    "connect": (connect_api.router, oidc_api.router, data_api.router),
}
ALL_SERVICES = tuple(SERVICE_ROUTERS)
ROUTERS = tuple(router for service in ALL_SERVICES for router in SERVICE_ROUTERS[service])
# A Connect node serves its endpoint only; Auth, Groups and Transfer are reached elsewhere.
NODE_SERVICES = ("connect",)


def create_app(
    deployment: Deployment, *, services: Collection[str] = ALL_SERVICES
) -> FastAPI:
    auth = deployment.auth

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tasks:
            if "auth" in services:
                tasks.start_soon(_purge_periodically, auth)
            if "connect" in services:
                tasks.start_soon(_purge_audit_periodically, auth, deployment.audit)
            tasks.start_soon(_checkpoint_periodically, auth)
            # What start-up built lives as long as the server: frozen, it is no longer walked
            # by every full collection (a task of 10,000 small files: 15% less CPU).
            gc.freeze()
            yield
            tasks.cancel_scope.cancel()
        # What the audit log still holds when the server stops.
        await anyio.to_thread.run_sync(deployment.audit.flush)

    app = FastAPI(title="Isthmus", version=__version__, docs_url=None, redoc_url=None,
                  lifespan=lifespan)
    app.state.auth = auth
    app.state.groups = deployment.groups
    app.state.transfer = deployment.transfer
    app.state.connect = deployment.connect
    app.state.data = deployment.data
    app.state.audit = deployment.audit
    for service in services:
        for router in SERVICE_ROUTERS[service]:
            app.include_router(router)
    _install_error_handlers(app)
    generated = app.openapi
    app.openapi = lambda: finish_document(generated())  # type: ignore[method-assign]
    if "auth" in services:
        app.add_middleware(DirectRoutes, routes=auth_api.DIRECT_ROUTES,
                           render_error=render_error)
    if "connect" in services:
        app.add_middleware(AuditMiddleware, log=deployment.audit, prefix=DATA_PREFIX,
                           locate=data_api.parse_location,
                           endpoint_id=deployment.data.endpoint_id)
    # Added last, so outermost: it sees the direct routes' requests too.
    if auth.settings.access_log is not None:
        app.add_middleware(AccessLogMiddleware, log=AccessLog(auth.settings.access_log))
    return app


async def _every_purge_interval(what: str, purge: Callable[[], None]) -> None:
    """``purge`` in a worker thread now and every purge interval; every process may do it
    (deletes are idempotent)."""
    while True:
        try:
            await anyio.to_thread.run_sync(purge)
        except Exception:
            # A busy or briefly unreachable database: try again next round.
            logger.exception("purging %s failed", what)
        await anyio.sleep(retention.PURGE_INTERVAL_SECONDS)


async def _purge_periodically(auth: AuthService) -> None:
    def purge() -> None:
        with transaction(auth.sessions) as session:
            purged = retention.purge_expired(session, utcnow())
        logger.info("purged expired rows: %s", purged)

    await _every_purge_interval("expired rows", purge)


async def _purge_audit_periodically(auth: AuthService, log: audit.AuditLog) -> None:
    """The audit records past their retention go."""
    def purge() -> None:
        with transaction(auth.sessions) as session:
            purged = audit.purge_older(session, utcnow(), log.retention_days)
        if purged:
            logger.info("purged %d audit records older than %d days", purged,
                        log.retention_days)

    await _every_purge_interval("old audit records", purge)


async def _checkpoint_periodically(auth: AuthService) -> None:
    checkpoint = Checkpointer(auth.engine)
    while True:
        await anyio.sleep(CHECKPOINT_INTERVAL_SECONDS)
        try:
            await anyio.to_thread.run_sync(checkpoint)
        except Exception:
            logger.exception("checkpointing the database failed")


def app_factory() -> FastAPI:
    """The application in each process of `isthmus serve --workers N`.

    The parent has already migrated the database and made the keys; the
    settings come from the ``ISTHMUS_*`` variables it set for its workers.
    """
    from isthmus.core.config import Settings
    from isthmus.deployment import open_services

    return create_app(open_services(Settings.load()))


def _is_under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def render_error(request: Request, error: APIError) -> Response:
    """An error in the wire format of the service that owns the path."""
    path = request.url.path
    if _is_under(path, connect_api.API_PREFIX):
        return connect_api.render_error(error)
    if _is_under(path, data_access.DATA_PREFIX):
        return data_api.render_error(error)
    if _is_under(path, transfer_errors.API_PREFIX):
        return transfer_api.render_error(path, error)
    if _is_under(path, groups_api.PREFIX):
        return groups_api.render_error(error)
    if auth_pages.is_page(path):
        return auth_pages.error_page(request, error)
    return auth_api.render_error(error)


def _framework_error(request: Request, status: int, message: str) -> APIError:
    """An error raised before any handler ran (routing, validation), in the path's service."""
    path = request.url.path
    if _is_under(path, connect_api.API_PREFIX):
        return connect_errors.from_status(status, message)
    if _is_under(path, data_access.DATA_PREFIX):
        return data_api.error_for_status(status, message)
    if _is_under(path, transfer_errors.API_PREFIX):
        return transfer_errors.from_status(status, message)
    code = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
            500: "INTERNAL_ERROR"}.get(status, "ERROR")
    return APIError(status, code, message)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(request: Request, error: APIError) -> Response:
        return render_error(request, error)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        message = f"Invalid request: {where}: {first.get('msg', 'invalid value')}"
        return render_error(request, _framework_error(request, 400, message))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        return render_error(request, _framework_error(request, error.status_code,
                                                      str(error.detail)))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, _error: Exception) -> Response:
        # The traceback goes to the log, never to the client.
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return render_error(request, _framework_error(request, 500,
                                                      "An internal error occurred"))
