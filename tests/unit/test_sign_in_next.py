"""Where a sign-in may return to (`sign_in.local_next`): this site's own pages, nothing else."""

from __future__ import annotations

import pytest

from isthmus.auth.sign_in import ACCOUNT_PAGE, Destination, local_next


@pytest.mark.parametrize(("value", "site_path", "expected"), [
    ("v2/web/developer", "/", "v2/web/developer"),
    ("/v2/web/developer", "/", "v2/web/developer"),
    ("/isthmus/v2/web/developer", "/isthmus/", "v2/web/developer"),
    ("v2/web/account/sessions", "/", "v2/web/account/sessions"),
    ("/v2/web/account/mfa?next=v2%2Fweb%2Faccount", "/",
     "v2/web/account/mfa?next=v2%2Fweb%2Faccount"),
    ("v2/oauth2/authorize?client_id=x&scope=openid", "/",
     "v2/oauth2/authorize?client_id=x&scope=openid"),
])
def test_pages_of_this_site_in_either_form(value: str, site_path: str, expected: str) -> None:
    assert local_next(value, site_path) == expected


@pytest.mark.parametrize(("value", "site_path"), [
    ("", "/"),
    ("https://evil.example/", "/"),
    ("//evil.example/v2/web/developer", "/"),
    ("/\\evil.example", "/"),
    ("http:/evil.example", "/"),
    ("javascript:alert(1)", "/"),
    # Outside the deployment's path prefix.
    ("/v2/web/developer", "/isthmus/"),
    # Pages a sign-in does not return to.
    ("/v2/web/logout", "/"),
    ("v2/web/developer/../../logout", "/"),
    ("v2/api/projects", "/"),
    # Raw whitespace or control characters: a browser would have percent-encoded them.
    ("/v2/web/developer\r\nSet-Cookie: x=1", "/"),
    ("v2/web/developer?a=\x00", "/"),
    ("v2/web/developer?a=\x7f", "/"),
    ("v2/web/developer?a=é", "/"),
    ("v2/web/developer#fragment", "/"),
    ("v2/web/developer?" + "a" * 8000, "/"),
])
def test_anything_else_is_refused(value: str, site_path: str) -> None:
    assert local_next(value, site_path) == ""
    assert Destination.page(value, site_path).next_path == ACCOUNT_PAGE
