"""The hottest routes, answered ahead of FastAPI's router.

The OAuth token and introspection endpoints are called far more often than any
other route, and most of their cost under load was the framework's: matching
the path against every route of every service, solving dependencies they do
not have, and wrapping the handler. Their handlers take a `Request` and build
their `Response` themselves, so this middleware hands them the request
directly when method and path match exactly. The routes stay registered with
FastAPI too (same handlers), for the OpenAPI document and any other path form.

This middleware sits outside FastAPI's exception handling, so it renders
errors itself through the same ``render_error`` the application uses.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from isthmus.core.errors import APIError

Handler = Callable[[Request], Awaitable[Response]]
ErrorRenderer = Callable[[Request, APIError], Response]

logger = logging.getLogger("isthmus")


class DirectRoutes:
    def __init__(self, app: ASGIApp, routes: Mapping[tuple[str, str], Handler],
                 render_error: ErrorRenderer) -> None:
        self.app = app
        self.routes = dict(routes)
        self.render_error = render_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = (self.routes.get((scope["method"], scope["path"]))
                   if scope["type"] == "http" else None)
        if handler is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await handler(request)
        except APIError as error:
            response = self.render_error(request, error)
        except Exception:
            # As the application's own handler does: the traceback to the log only.
            logger.exception("unhandled error on %s %s", request.method, request.url.path)
            response = self.render_error(request, APIError(500, "INTERNAL_ERROR",
                                                           "An internal error occurred"))
        await response(scope, receive, send)
