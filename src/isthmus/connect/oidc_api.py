"""The endpoint's own OpenID Connect provider over HTTP, under /oidc (the issuer's path).

Discovery, the key set, the authorize page (a login form), the token endpoint and
userinfo; `oidc_provider` decides. The login form is protected against cross-site
submission by a double-submit cookie: a random value in a ``SameSite=Strict`` cookie
that the form must carry back. These are pages and protocol endpoints for a browser
and for Auth, not the Manager's JSON API (`connect.openapi` describes that).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import html
from typing import Any
from urllib.parse import parse_qs, unquote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from isthmus.connect import oidc_provider, pam
from isthmus.connect.models import OIDCServer
from isthmus.connect.oidc_provider import (
    AuthorizationRequest,
    LoginRefused,
    ProtocolError,
    TokenError,
)
from isthmus.connect.service import ConnectService
from isthmus.core import work
from isthmus.core.db import reading, transaction
from isthmus.core.errors import APIError
from isthmus.core.http import bearer_token, read_body
from isthmus.core.secrets import new_secret

router = APIRouter(prefix=oidc_provider.ISSUER_PATH, tags=["Endpoint OIDC server"])

CSRF_COOKIE = "isthmus_oidc_csrf"
MAX_FORM_BYTES = 16 * 1024
_PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                 "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
                 "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                            "form-action 'self'; frame-ancestors 'none'"}
_JSON_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _service(request: Request) -> ConnectService:
    service: ConnectService = request.app.state.connect
    return service


async def _server(request: Request) -> OIDCServer:
    service = _service(request)

    def load() -> OIDCServer:
        with reading(service.sessions) as session:
            server = oidc_provider.require_server(session, service.endpoint_id)
            session.expunge(server)
            return server

    return await work.in_thread(request, load)


async def _form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise ProtocolError("invalid_request", "Expected a form-encoded body")
    try:
        text = (await read_body(request, MAX_FORM_BYTES)).decode("utf-8")
        parsed = parse_qs(text, strict_parsing=bool(text), max_num_fields=32)
    except APIError as error:
        raise ProtocolError("invalid_request", error.message, error.status) from None
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("invalid_request", "Expected a form-encoded body") from None
    if any(len(values) > 1 for values in parsed.values()):
        raise ProtocolError("invalid_request", "A parameter was given more than once")
    return {key: values[0] for key, values in parsed.items()}


def _query(request: Request) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key in params:
            raise ProtocolError("invalid_request", f"The {key} parameter was given twice")
        params[key] = value
    return params


def _page(status: int, title: str, body: str, cookie: str | None = None) -> HTMLResponse:
    page = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title></head><body><h1 id=\"title\">"
            f"{html.escape(title)}</h1>{body}</body></html>")
    response = HTMLResponse(page, status_code=status, headers=_PAGE_HEADERS)
    if cookie is not None:
        response.set_cookie(CSRF_COOKIE, cookie, path=oidc_provider.ISSUER_PATH, secure=True,
                            httponly=True, samesite="strict")
    return response


def _error_page(error: ProtocolError) -> Response:
    location = error.redirect_location()
    if location is not None:
        return Response(status_code=303, headers={"Location": location, **_PAGE_HEADERS})
    return _page(error.status, "Sign-in refused",
                 f"<p id=\"message\">{html.escape(error.description)}</p>")


def _login_page(server: OIDCServer, authorization: AuthorizationRequest, csrf: str,
                status: int = 200, message: str | None = None,
                username: str = "") -> HTMLResponse:
    hidden = "".join(f"<input type=\"hidden\" name=\"{html.escape(key)}\" "
                     f"value=\"{html.escape(value)}\">"
                     for key, value in authorization.form_fields().items())
    notice = f"<p id=\"error\" role=\"alert\">{html.escape(message)}</p>" if message else ""
    body = (f"<p>Sign in with your account on {html.escape(server.domain)}.</p>{notice}"
            f"<form id=\"login\" method=\"post\" action=\"{oidc_provider.ISSUER_PATH}/authorize\">"
            f"{hidden}<input type=\"hidden\" name=\"csrf_token\" value=\"{html.escape(csrf)}\">"
            f"<label for=\"username\">Username</label> <input id=\"username\" name=\"username\" "
            f"autocomplete=\"username\" value=\"{html.escape(username)}\" required> "
            f"<label for=\"password\">Password</label> <input id=\"password\" name=\"password\" "
            f"type=\"password\" autocomplete=\"current-password\" required> "
            f"<button type=\"submit\">Sign in</button></form>")
    return _page(status, server.display_name, body, cookie=csrf)


@router.get("/.well-known/openid-configuration")
async def discovery(request: Request) -> JSONResponse:
    try:
        server = await _server(request)
    except ProtocolError as error:
        return JSONResponse({"error": error.error, "error_description": error.description},
                            status_code=error.status)
    return JSONResponse(oidc_provider.discovery_document(server))


@router.get("/jwks")
async def jwks(request: Request) -> JSONResponse:
    try:
        server = await _server(request)
        return JSONResponse(oidc_provider.key_set(server, _service(request).secret_box))
    except ProtocolError as error:
        return JSONResponse({"error": error.error, "error_description": error.description},
                            status_code=error.status)


@router.get("/authorize")
async def authorize_page(request: Request) -> Response:
    """The login form for a valid authorization request (a fresh CSRF cookie with it)."""
    try:
        server = await _server(request)
        authorization = oidc_provider.check_request(server, _query(request))
    except ProtocolError as error:
        return _error_page(error)
    return _login_page(server, authorization, new_secret())


@router.post("/authorize")
async def authorize_login(request: Request) -> Response:
    """The login form submitted: checked, throttled, PAM asked; a code on success."""
    service = _service(request)
    try:
        server = await _server(request)
        form = await _form(request)
        cookie = request.cookies.get(CSRF_COOKIE) or ""
        sent = form.get("csrf_token") or ""
        if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
            raise ProtocolError("access_denied", "This sign-in form expired or was not sent "
                                "by this site; start the sign-in again.", 403)
        authorization = oidc_provider.check_request(server, form)
    except ProtocolError as error:
        return _error_page(error)
    account = (form.get("username") or "").strip()
    password = form.get("password") or ""
    address = request.client.host if request.client else None

    def attempt() -> str | LoginRefused:
        refused = oidc_provider.check_account(account)
        if refused is not None and refused.status != 401:
            return refused
        with reading(service.sessions) as session:
            throttled = oidc_provider.check_throttle(session, server, account, address)
        if throttled is not None:
            return throttled
        if refused is None and pam.authenticate(server.pam_service, account, password):
            with transaction(service.sessions) as session:
                oidc_provider.record_success(session, server, account)
                return oidc_provider.issue_code(session, server, authorization, account)
        with transaction(service.sessions) as session:
            oidc_provider.record_failure(session, server, account, address)
        return LoginRefused("Wrong username or password.", 401)

    try:
        outcome = await work.in_thread(request, attempt)
    except pam.PamUnavailableError as error:
        return _page(503, "Sign-in unavailable", f"<p id=\"message\">{html.escape(str(error))}</p>")
    if isinstance(outcome, LoginRefused):
        return _login_page(server, authorization, new_secret(), outcome.status, outcome.message,
                           username=account[:64])
    response = Response(status_code=303, headers={"Location": outcome, **_PAGE_HEADERS})
    response.delete_cookie(CSRF_COOKIE, path=oidc_provider.ISSUER_PATH, secure=True,
                           httponly=True, samesite="strict")
    return response


def _token_error(error: TokenError) -> JSONResponse:
    headers = dict(_JSON_HEADERS)
    if error.status == 401:
        headers["WWW-Authenticate"] = ('Basic realm="oidc"' if error.error == "invalid_client"
                                       else 'Bearer error="invalid_token"')
    return JSONResponse({"error": error.error, "error_description": error.description},
                        status_code=error.status, headers=headers)


def _basic(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise TokenError("invalid_client", "Malformed Basic credentials", 401) from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise TokenError("invalid_client", "Malformed Basic credentials", 401)
    # RFC 6749 §2.3.1: each part was form-urlencoded before Basic encoding.
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


@router.post("/token")
async def token(request: Request) -> JSONResponse:
    service = _service(request)
    try:
        server = await _server(request)
        try:
            form = await _form(request)
        except ProtocolError as error:
            raise TokenError("invalid_request", error.description) from None
        oidc_provider.authenticate_client(server, _basic(request), form)

        def redeem() -> dict[str, Any] | TokenError:
            # A refused code is still spent: the error is returned, so its deletion commits.
            with transaction(service.sessions) as session:
                return oidc_provider.redeem(session, server, service.secret_box, form)

        outcome = await work.in_thread(request, redeem)
        if isinstance(outcome, TokenError):
            raise outcome
    except ProtocolError as error:
        return _token_error(TokenError("invalid_request", error.description, error.status))
    except TokenError as error:
        return _token_error(error)
    return JSONResponse(outcome, headers=_JSON_HEADERS)


@router.get("/userinfo")
async def userinfo(request: Request) -> JSONResponse:
    return await _userinfo(request)


@router.post("/userinfo")
async def userinfo_by_post(request: Request) -> JSONResponse:
    return await _userinfo(request)


async def _userinfo(request: Request) -> JSONResponse:
    try:
        server = await _server(request)
        return JSONResponse(oidc_provider.userinfo(server, _service(request).secret_box,
                                                   bearer_token(request)),
                            headers=_JSON_HEADERS)
    except ProtocolError as error:
        return _token_error(TokenError("invalid_request", error.description, error.status))
    except TokenError as error:
        return _token_error(error)
