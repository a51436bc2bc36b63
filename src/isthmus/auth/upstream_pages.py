"""Signing in through an upstream OpenID Connect provider: out to it, and back.

`start` records the sign-in, with where it goes on (`sign_in.Destination`), and
sends the browser to the provider's authorization endpoint; `callback` consumes
that record, redeems the code, verifies the ID token and ends where every
sign-in ends (`login_pages._authenticated`: the second factor of an identity
that has one, then the OAuth request, the site's page, or the link). Calls to
the provider run outside any database transaction, so a slow provider never
holds the write lock.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from isthmus.auth import authorize, oidc_client, sessions, upstream
from isthmus.auth.account_pages import linking_account
from isthmus.auth.api import in_transaction, read_only, service
from isthmus.auth.login_pages import _authenticated, authorize_request
from isthmus.auth.oidc_client import UpstreamError
from isthmus.auth.pages import SESSION_COOKIE, PageResult, _check_csrf, _login_page, respond
from isthmus.auth.sign_in import Destination
from isthmus.auth.upstream import ConfiguredProvider, ReturnedSignIn
from isthmus.core.config import Settings
from isthmus.core.errors import bad_request
from isthmus.core.http import read_form
from isthmus.core.secrets import new_secret

router = APIRouter()

# Binds a sign-in to the browser that started it: the provider sends the browser
# back with `state`, and only a browser holding this cookie may complete it.
# SameSite=Lax: it must come along on the provider's top-level redirect back.
BROWSER_COOKIE = "isthmus_upstream"
COOKIE_SECONDS = int(upstream.SIGN_IN_LIFETIME.total_seconds())


def callback_uri(settings: Settings) -> str:
    return settings.public_url + upstream.CALLBACK_PATH


def _browser_secret(request: Request) -> tuple[str, bool]:
    existing = request.cookies.get(BROWSER_COOKIE)
    if existing and 20 <= len(existing) <= 100:
        return existing, False
    return new_secret(), True


def _provider_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise bad_request("Choose an identity provider to sign in with") from None


def _single(params: Any, name: str) -> str | None:
    values = params.getlist(name)
    if len(values) > 1:
        raise bad_request(f"The identity provider's answer repeats {name}")
    return values[0] if values else None


@router.post("/v2/web/oidc/start")
async def start(request: Request) -> Response:
    form = await read_form(request)
    _check_csrf(request, form)
    auth = service(request)
    settings = auth.settings
    purpose = form.get("purpose", "")
    query = form.get("authorize", "")
    cookie = request.cookies.get(SESSION_COOKIE)
    secret, fresh = _browser_secret(request)

    def prepare(session: Session) -> tuple[ConfiguredProvider, Destination, bool]:
        provider = upstream.configured(session, auth.secret_box, _provider_id(form.get(
            "provider", "")))
        if purpose == "authorize":
            parsed = authorize.parse_request(session, dict(parse_qsl(query)), query, settings)
            return provider, Destination.authorize(query), parsed.prompt_login
        if purpose == "link":
            signed_in = sessions.signed_in(session, cookie)
            if signed_in is None:
                raise bad_request("Sign in to your account before linking another identity")
            # Ask the provider to log in afresh: the identity to link is another one.
            return provider, Destination.link(signed_in[1].account_id), True
        if purpose == "account":
            return provider, Destination.page(form.get("next", ""), settings.site_path), False
        raise bad_request("Unknown sign-in purpose")

    async def produce() -> PageResult:
        provider, going, prompt_login = await read_only(request, prepare)
        discovery = await oidc_client.discover(provider.party)
        started = await in_transaction(request, lambda session: upstream.begin_sign_in(
            session, auth.secret_box, provider.id, secret, going,
        ))
        return PageResult(redirect=oidc_client.authorization_url(
            discovery, provider.party, redirect_uri=callback_uri(settings), state=started.state,
            nonce=started.nonce, code_challenge=started.code_challenge,
            prompt_login=prompt_login,
        ))

    response = await respond(request, produce)
    if fresh and response.status_code == 303:
        response.set_cookie(
            BROWSER_COOKIE, secret, max_age=COOKIE_SECONDS, httponly=True,
            secure=settings.public_url.startswith("https://"), samesite="lax",
            path=(urlsplit(settings.public_url).path or "/") + "v2/web/oidc/",
        )
    return response


@router.get("/" + upstream.CALLBACK_PATH)
async def callback(request: Request) -> Response:
    auth = service(request)
    settings = auth.settings
    params = request.query_params
    cookie = request.cookies.get(SESSION_COOKIE)
    secret = request.cookies.get(BROWSER_COOKIE)

    async def produce() -> PageResult:
        state = _single(params, "state")
        if not state:
            raise bad_request("The identity provider's answer has no state; start the sign-in "
                              "again from the login page.")
        returned = await in_transaction(request, lambda session: upstream.finish_sign_in(
            session, auth.secret_box, state, secret))
        provider = returned.provider
        error = _single(params, "error")
        if error is not None:
            description = _single(params, "error_description")
            raise UpstreamError(
                f"{provider.name} did not sign you in: {error[:100]}"
                + (f" ({description[:300]})" if description else ""),
                status=403 if error == "access_denied" else 400,
            )
        code = _single(params, "code")
        if not code:
            raise UpstreamError(f"{provider.name} sent no authorization code")
        discovery = await oidc_client.discover(provider.party)
        id_token = await oidc_client.redeem_code(
            discovery, provider.party, code=code, redirect_uri=callback_uri(settings),
            code_verifier=returned.code_verifier,
        )
        claims = await oidc_client.verify_id_token(
            discovery, provider.party, id_token, returned.nonce_digest
        )
        return await in_transaction(
            request, lambda session: _signed_in(session, settings, returned, claims, cookie)
        )

    return await respond(request, produce)


def _signed_in(
    session: Session, settings: Settings, returned: ReturnedSignIn, claims: dict[str, Any],
    cookie: str | None,
) -> PageResult:
    provider = returned.provider
    going = returned.destination
    parsed = authorize_request(session, going, settings)
    if parsed is not None:
        # Refused before the identity is made: a login this request cannot use creates nothing.
        known = upstream.find_identity(session, provider.id, claims["sub"])
        if parsed.requirements.wants_identity and (
            known is None or not parsed.requirements.accepts(known.id)
        ):
            return _login_page(session, parsed, status=403, error=(
                f"The identity you signed in with at {provider.name} is not one this request "
                "accepts."))
    elif going.purpose == "link":
        linking_account(session, cookie, going)  # refused before the identity is made
    identity = upstream.sign_in_identity(session, provider, claims)
    return _authenticated(session, going, identity, cookie, settings, request=parsed)
