"""The all-in-one ASGI application: every service's routes on one port."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from isthmus import __version__
from isthmus.auth import api as auth_api
from isthmus.auth import developer_pages as auth_developer_pages
from isthmus.auth import identities_api as auth_identities_api
from isthmus.auth import manage_api as auth_manage_api
from isthmus.auth import pages as auth_pages
from isthmus.auth.openapi import finish_document
from isthmus.auth.service import AuthService
from isthmus.core.access_log import AccessLog, AccessLogMiddleware
from isthmus.core.errors import APIError

logger = logging.getLogger("isthmus")


def create_app(auth: AuthService) -> FastAPI:
    app = FastAPI(title="Isthmus", version=__version__, docs_url=None, redoc_url=None)
    app.state.auth = auth
    app.include_router(auth_api.router)
    app.include_router(auth_pages.router)
    app.include_router(auth_developer_pages.router)
    app.include_router(auth_manage_api.router)
    app.include_router(auth_identities_api.router)
    _install_error_handlers(app)
    generated = app.openapi
    app.openapi = lambda: finish_document(generated())  # type: ignore[method-assign]
    if auth.settings.access_log is not None:
        app.add_middleware(AccessLogMiddleware, log=AccessLog(auth.settings.access_log))
    return app


def app_factory() -> FastAPI:
    """The application in each process of `isthmus serve --workers N`.

    The parent has already migrated the database and made the keys; the
    settings come from the ``ISTHMUS_*`` variables it set for its workers.
    """
    from isthmus.core.config import Settings
    from isthmus.deployment import open_deployment

    return create_app(open_deployment(Settings.load()))


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(_request: Request, error: APIError) -> Response:
        return auth_api.render_error(error)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        message = f"Invalid request: {where}: {first.get('msg', 'invalid value')}"
        return auth_api.render_error(APIError(400, "BAD_REQUEST", message))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, error: StarletteHTTPException) -> Response:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(error.status_code, "ERROR")
        return auth_api.render_error(APIError(error.status_code, code, str(error.detail)))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, _error: Exception) -> Response:
        # The traceback goes to the log, never to the client.
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        body = APIError(500, "INTERNAL_ERROR", "An internal error occurred")
        response: JSONResponse = auth_api.render_error(body)
        return response
