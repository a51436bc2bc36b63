"""Signing in through an upstream OpenID Connect provider: a second live Isthmus.

The downstream registers the upstream with `isthmus idp add-oidc` (its issuer and
its private CA); a person then goes downstream authorize -> login page -> "Sign in
with Upstream Lab" -> the upstream's login and consent -> the downstream callback
-> consent -> code, which the official SDK redeems. Error cases must end on a 4xx
page and create no identity.
"""

from __future__ import annotations

import html
import json
import uuid
from pathlib import Path

import globus_sdk
import pytest

from tests.browser import Sites, parse_form, query_of
from tests.conftest import SUB_DOMAIN, UPSTREAM_LOCAL_DOMAIN, UpstreamPair, User, _new_user
from tests.e2e.helpers import (
    client_token_auth,
    finish_downstream,
    pair_sites,
    pointed_at,
    through_upstream,
)
from tests.live import ISTHMUS, LiveServer, free_port, start_server

WEB_REDIRECT = "https://app.example.org/callback"
VIEW_IDENTITY_SET = "urn:globus:auth:scope:auth.globus.org:view_identity_set"
SCOPES = f"openid profile email {VIEW_IDENTITY_SET}"
BUTTON = "Sign in with Upstream Lab"


def downstream_app(pair: UpstreamPair) -> globus_sdk.ConfidentialAppAuthClient:
    created = pair.downstream.create_client(f"app-{uuid.uuid4().hex[:6]}",
                                            "confidential_client", WEB_REDIRECT)
    with pointed_at(pair.downstream):
        app = globus_sdk.ConfidentialAppAuthClient(created["id"], created["secret"])
        app.oauth2_start_flow(WEB_REDIRECT, requested_scopes=SCOPES)
    return app


def authorize_url(pair: UpstreamPair, app: globus_sdk.ConfidentialAppAuthClient) -> str:
    with pointed_at(pair.downstream):
        return str(app.oauth2_get_authorize_url())


def upstream_callback(
    pair: UpstreamPair, sites: Sites, url: str, user: User, *, button: str = BUTTON,
    decision: str = "allow",
) -> str:
    """From the downstream authorize URL to the callback the upstream sends back."""
    page = sites.open(url)
    assert page.status_code == 200, page.text[:2000]
    assert button in page.text
    return through_upstream(pair, sites, url, page, button, user, decision=decision)


def exchange(
    pair: UpstreamPair, app: globus_sdk.ConfidentialAppAuthClient, location: str
) -> globus_sdk.OAuthTokenResponse:
    assert location.startswith(WEB_REDIRECT + "?"), location
    with pointed_at(pair.downstream):
        return app.oauth2_exchange_code_for_tokens(query_of(location)["code"])


def user_auth(pair: UpstreamPair, tokens: globus_sdk.OAuthTokenResponse) -> globus_sdk.AuthClient:
    token = tokens.by_resource_server["auth.globus.org"]["access_token"]
    with pointed_at(pair.downstream):
        return globus_sdk.AuthClient(authorizer=globus_sdk.AccessTokenAuthorizer(token))


def downstream_identities(pair: UpstreamPair, username: str) -> list[dict[str, object]]:
    auth = client_token_auth(pair.downstream)
    with pointed_at(pair.downstream):
        return list(auth.get_identities(usernames=username)["identities"])


def email_of(user: User) -> str:
    return user.username.split("@")[0] + "@example.org"


def test_sign_in_through_an_upstream_isthmus(upstream_pair: UpstreamPair) -> None:
    pair = upstream_pair
    person = _new_user(pair.upstream, "uma")
    app = downstream_app(pair)
    sites = pair_sites(pair)
    url = authorize_url(pair, app)

    callback = upstream_callback(pair, sites, url, person)
    tokens = exchange(pair, app, finish_downstream(sites, callback))

    # `sub` mapping: the upstream's subject (its identity id) in the provider's domain.
    expected = f"{person.id}@{SUB_DOMAIN}"
    assert tokens.decode_id_token()["preferred_username"] == expected
    auth = user_auth(pair, tokens)
    with pointed_at(pair.downstream):
        info = auth.userinfo()
        assert info["preferred_username"] == expected
        assert info["identity_provider"] == pair.provider_id
        assert info["identity_provider_display_name"] == "Upstream Lab"
        # Name and email come from the upstream's ID token.
        assert info["email"] == email_of(person)
        assert info["name"] == "Uma"
        assert [member["username"] for member in info["identity_set"]] == [expected]
        (identity,) = auth.get_identities(usernames=expected)["identities"]
        assert identity["id"] == info["sub"]
        assert identity["identity_provider"] == pair.provider_id
        assert identity["status"] == "used"
        (provider,) = auth.get_identity_providers(domains=[SUB_DOMAIN])["identity_providers"]
        assert provider["id"] == pair.provider_id
        assert provider["short_name"] == "upstream"
        assert provider["name"] == "Upstream Lab"

    # The downstream session now holds the login: the same browser gets a code at once.
    again = sites.open(url)
    assert again.status_code == 303
    assert exchange(pair, app, again.headers["Location"]).decode_id_token()["sub"] == info["sub"]

    # A fresh browser signs in through the upstream again, and is the same identity.
    fresh = pair_sites(pair)
    location = finish_downstream(fresh, upstream_callback(pair, fresh, url, person))
    assert exchange(pair, app, location).decode_id_token()["sub"] == info["sub"]


def test_preferred_username_claim_keeps_the_upstream_username(
    upstream_pair: UpstreamPair,
) -> None:
    pair = upstream_pair
    person = _new_user(pair.upstream, "noor")
    assert person.username.endswith("@" + UPSTREAM_LOCAL_DOMAIN)
    app = downstream_app(pair)
    sites = pair_sites(pair)
    callback = upstream_callback(pair, sites, authorize_url(pair, app), person,
                                 button="Sign in with Upstream Named")
    tokens = exchange(pair, app, finish_downstream(sites, callback))
    with pointed_at(pair.downstream):
        info = user_auth(pair, tokens).userinfo()
    assert info["preferred_username"] == person.username
    assert info["identity_provider"] == pair.named_provider_id
    # A different identity from the one the `sub` provider makes for the same person.
    assert downstream_identities(pair, f"{person.id}@{SUB_DOMAIN}") == []


def test_a_provisioned_identity_is_taken_over_at_first_sign_in(
    upstream_pair: UpstreamPair,
) -> None:
    pair = upstream_pair
    person = _new_user(pair.upstream, "pia")
    expected = f"{person.id}@{SUB_DOMAIN}"
    auth = client_token_auth(pair.downstream)
    with pointed_at(pair.downstream):
        (provisioned,) = auth.get_identities(usernames=expected, provision=True)["identities"]
    assert provisioned["status"] == "unused"
    assert provisioned["identity_provider"] == pair.provider_id

    app = downstream_app(pair)
    sites = pair_sites(pair)
    callback = upstream_callback(pair, sites, authorize_url(pair, app), person)
    tokens = exchange(pair, app, finish_downstream(sites, callback))
    # The same id: whatever was granted to the provisioned identity now applies.
    assert tokens.decode_id_token()["sub"] == provisioned["id"]
    (identity,) = downstream_identities(pair, expected)
    assert identity["status"] == "used"
    assert identity["name"] == "Pia"


def test_a_tampered_state_is_refused_and_creates_nothing(upstream_pair: UpstreamPair) -> None:
    pair = upstream_pair
    person = _new_user(pair.upstream, "tess")
    app = downstream_app(pair)
    sites = pair_sites(pair)
    callback = upstream_callback(pair, sites, authorize_url(pair, app), person)
    state = query_of(callback)["state"]
    tampered = callback.replace(f"state={state}", f"state={state[:-4]}AAAA")
    assert tampered != callback

    refused = sites.open(tampered)
    assert refused.status_code == 400
    assert "unknown, expired or already used" in refused.text
    assert downstream_identities(pair, f"{person.id}@{SUB_DOMAIN}") == []

    # The genuine answer was not used up by the forgery.
    location = finish_downstream(sites, callback)
    assert exchange(pair, app, location).decode_id_token()["preferred_username"] == (
        f"{person.id}@{SUB_DOMAIN}")


def test_a_replayed_callback_is_refused(upstream_pair: UpstreamPair) -> None:
    pair = upstream_pair
    person = _new_user(pair.upstream, "rex")
    app = downstream_app(pair)
    sites = pair_sites(pair)
    callback = upstream_callback(pair, sites, authorize_url(pair, app), person)
    exchange(pair, app, finish_downstream(sites, callback))

    replayed = sites.open(callback)
    assert replayed.status_code == 400
    assert "already used" in replayed.text


def test_a_callback_opened_in_another_browser_is_refused(upstream_pair: UpstreamPair) -> None:
    """Login CSRF: an attacker's callback URL, opened by a victim, signs nobody in."""
    pair = upstream_pair
    person = _new_user(pair.upstream, "mallory")
    app = downstream_app(pair)
    attacker = pair_sites(pair)
    callback = upstream_callback(pair, attacker, authorize_url(pair, app), person)

    victim = pair_sites(pair)
    refused = victim.open(callback)
    assert refused.status_code == 400
    assert "another browser" in refused.text
    assert "isthmus_session" not in victim.browser(callback).http.cookies
    assert downstream_identities(pair, f"{person.id}@{SUB_DOMAIN}") == []


def test_upstream_access_denied(upstream_pair: UpstreamPair) -> None:
    pair = upstream_pair
    person = _new_user(pair.upstream, "dee")
    app = downstream_app(pair)
    sites = pair_sites(pair)
    callback = upstream_callback(pair, sites, authorize_url(pair, app), person, decision="deny")
    assert query_of(callback)["error"] == "access_denied"

    page = sites.open(callback)
    assert page.status_code == 403
    assert "Upstream Lab did not sign you in: access_denied" in page.text
    assert downstream_identities(pair, f"{person.id}@{SUB_DOMAIN}") == []


def test_a_wrong_client_secret_at_the_upstream(upstream_pair: UpstreamPair) -> None:
    pair = upstream_pair
    pair.add_provider("wrong-secret", "--domain", "wrong.example",
                                    secret="not-the-secret")
    try:
        person = _new_user(pair.upstream, "wes")
        app = downstream_app(pair)
        sites = pair_sites(pair)
        callback = upstream_callback(pair, sites, authorize_url(pair, app), person,
                                     button="Sign in with wrong-secret")
        page = sites.open(callback)
        assert page.status_code == 400
        assert "rejected this server's client credentials" in html.unescape(page.text)
        assert "not-the-secret" not in page.text
        assert downstream_identities(pair, f"{person.id}@wrong.example") == []
        assert "not-the-secret" not in pair.downstream.log()
    finally:
        pair.downstream.run("idp", "delete", "wrong-secret")


def test_an_unreachable_issuer(upstream_pair: UpstreamPair, tmp_path: Path) -> None:
    pair = upstream_pair
    ghost = start_server(tmp_path / "ghost")
    try:
        client = ghost.create_client("downstream", "confidential_client", pair.callback)
        pair.downstream.run(
            "idp", "add-oidc", "ghost", "--issuer", ghost.base_url, "--client-id", client["id"],
            "--client-secret-stdin", "--domain", "ghost.example", "--ca-file", ghost.ca_file,
            stdin=client["secret"] + "\n",
        )
    finally:
        ghost.stop()
    try:
        app = downstream_app(pair)
        sites = pair_sites(pair)
        url = authorize_url(pair, app)
        page = sites.open(url)
        refused = sites.press(url, page.text, "Sign in with ghost")
        assert refused.status_code == 400
        assert "could not be reached" in refused.text
    finally:
        pair.downstream.run("idp", "delete", "ghost")


def test_a_deleted_provider_keeps_its_identities_and_can_return(
    upstream_pair: UpstreamPair,
) -> None:
    pair = upstream_pair
    pair.add_provider("retiring", "--domain", "retiring.example",
                      "--display-name", "Retiring Lab")
    person = _new_user(pair.upstream, "ria")
    app = downstream_app(pair)
    sites = pair_sites(pair)
    url = authorize_url(pair, app)
    callback = upstream_callback(pair, sites, url, person, button="Sign in with Retiring Lab")
    first = exchange(pair, app, finish_downstream(sites, callback)).decode_id_token()["sub"]

    deleted = pair.downstream.run("idp", "delete", "retiring")
    assert "1 identities are kept" in deleted
    listed = {row["name"]: row for row in
              pair.downstream.run_json("idp", "list")["identity_providers"]}
    assert listed["retiring"]["status"] == "retired"
    assert "Sign in with Retiring Lab" not in pair_sites(pair).open(url).text

    pair.add_provider("retiring", "--domain", "retiring.example",
                      "--display-name", "Retiring Lab")
    fresh = pair_sites(pair)
    callback = upstream_callback(pair, fresh, url, person, button="Sign in with Retiring Lab")
    assert exchange(pair, app, finish_downstream(fresh, callback)).decode_id_token()[
        "sub"] == first
    pair.downstream.run("idp", "delete", "retiring")


# --- the administrative commands -------------------------------------------------------


def isthmus(data_dir: Path, *args: str, stdin: str = "") -> tuple[int, str, str]:
    import subprocess

    done = subprocess.run([ISTHMUS, *args, "--data-dir", str(data_dir)], input=stdin,
                          capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


def test_idp_commands_keep_the_secret_sealed(
    upstream_pair: UpstreamPair, tmp_path: Path
) -> None:
    upstream = upstream_pair.upstream
    data_dir = tmp_path / "offline"
    secret = f"sealed-{uuid.uuid4().hex}"
    add = ["idp", "add-oidc", "campus", "--issuer", upstream.base_url, "--client-id",
           "campus-client", "--client-secret-stdin", "--domain", "Campus.Example.org",
           "--domain", "alumni.example.org", "--ca-file", upstream.ca_file]
    status, out, err = isthmus(data_dir, *add, "--json", stdin=secret + "\n")
    assert status == 0, err
    added = json.loads(out)
    assert added["name"] == "campus"
    assert added["domains"] == ["campus.example.org", "alumni.example.org"]
    # Stored as the discovery document spells the issuer (no trailing slash).
    assert added["issuer"] == upstream.base_url.rstrip("/")
    assert added["username_claim"] == "sub"
    assert added["private_ca"] is True
    assert added["redirect_uri"].endswith("/v2/web/oidc/callback")
    assert secret not in out + err

    status, out, err = isthmus(data_dir, "idp", "list")
    assert status == 0, err
    assert "campus\tactive\t" + upstream.base_url.rstrip("/") in out
    status, listed, _ = isthmus(data_dir, "idp", "list", "--json")
    (row,) = json.loads(listed)["identity_providers"]
    assert row["client_id"] == "campus-client"
    assert secret not in out + listed
    # Sealed at rest: neither the database (nor its journal) nor any other file holds it.
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path

    # Refusals: the same name, a domain another provider owns (the local one too).
    status, _, err = isthmus(data_dir, *add, stdin=secret + "\n")
    assert status != 0 and "already exists" in err
    clash = ["idp", "add-oidc", "other", "--issuer", upstream.base_url, "--client-id", "x",
             "--client-secret-stdin", "--ca-file", upstream.ca_file, "--domain"]
    status, _, err = isthmus(data_dir, *clash, "alumni.example.org", stdin="s\n")
    assert status != 0 and "belongs to the identity provider campus" in err
    status, _, err = isthmus(data_dir, *clash, "isthmus.local", stdin="s\n")
    assert status != 0 and "belongs to the identity provider local" in err

    status, out, err = isthmus(data_dir, "idp", "delete", "campus")
    assert status == 0, err
    status, out, _ = isthmus(data_dir, "idp", "list")
    assert "No upstream identity providers." in out
    status, _, err = isthmus(data_dir, "idp", "delete", "campus")
    assert status != 0 and "No upstream identity provider named campus" in err


def test_idp_add_checks_the_issuer_first(upstream_pair: UpstreamPair, tmp_path: Path) -> None:
    upstream = upstream_pair.upstream
    data_dir = tmp_path / "offline"
    base = ["idp", "add-oidc", "nowhere", "--client-id", "c", "--client-secret-stdin",
            "--domain", "nowhere.example"]
    status, _, err = isthmus(data_dir, *base, "--issuer", f"https://127.0.0.1:{free_port()}",
                             stdin="s\n")
    assert status != 0 and "could not be reached" in err
    # Without the upstream's CA its certificate is not trusted.
    status, _, err = isthmus(data_dir, *base, "--issuer", upstream.base_url, stdin="s\n")
    assert status != 0 and "could not be reached" in err
    status, _, err = isthmus(data_dir, *base, "--issuer", "http://idp.example.org",
                             stdin="s\n")
    assert status != 0 and "https://" in err
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    status, _, err = isthmus(data_dir, *base, "--issuer", upstream.base_url,
                             "--ca-file", str(not_pem), stdin="s\n")
    assert status != 0 and "no PEM certificate" in err
    status, out, _ = isthmus(data_dir, "idp", "list", "--json")
    assert json.loads(out)["identity_providers"] == []


def test_login_page_without_providers_has_no_upstream_buttons(
    server: LiveServer,
) -> None:
    with pointed_at(server):
        app = globus_sdk.NativeAppAuthClient("61338d24-54d5-408f-a10d-66c06b59f6d2")
        app.oauth2_start_flow(requested_scopes="openid")
        url = app.oauth2_get_authorize_url()
    page = Sites((server.base_url, server.ca_file)).open(url)
    assert page.status_code == 200
    assert "Sign in with" not in page.text
    assert "password" in parse_form(page.text).fields


@pytest.mark.parametrize("field", ["provider", "purpose", "csrf_token"])
def test_start_refuses_bad_forms(upstream_pair: UpstreamPair, field: str) -> None:
    pair = upstream_pair
    app = downstream_app(pair)
    sites = pair_sites(pair)
    url = authorize_url(pair, app)
    page = sites.open(url)
    values = {"provider": "not-a-uuid", "purpose": "elsewhere", "csrf_token": "forged" * 5}
    refused = sites.press(url, page.text, BUTTON, **{field: values[field]})
    # A forged form is refused before any page logic, as every form is: a 403 page.
    assert refused.status_code == (403 if field == "csrf_token" else 400)
    assert refused.headers["Content-Type"].startswith("text/html")
    assert "This request cannot be completed" in refused.text
