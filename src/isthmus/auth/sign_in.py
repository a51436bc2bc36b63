"""Where a sign-in goes on once the person has shown who they are.

A sign-in may leave and come back (to an upstream provider, or for a second
factor), so what it was for is kept with it as these plain values: continue an
authorize request, open a page of this site, or link the identity to the
account signed in in this browser.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

# authorize: an OAuth request | account: a page of this site | link: join the account
PURPOSES = ("authorize", "account", "link")
ACCOUNT_PAGE = "v2/web/account"
DEVELOPER_PAGE = "v2/web/developer"
LOGIN_PAGE = "v2/web/login"
# Pages of this site a sign-in may return to, as paths below the public base URL:
# never another site, so a crafted link cannot use the login page as a redirector.
_LOCAL_NEXT = re.compile(
    r"v2/(web/(account(/[a-z]+)*|developer)|oauth2/authorize)(\?[^\s#\\]*)?")
# Long enough for an authorize request's query, nested in an account page's own `next`.
MAX_NEXT_LENGTH = 8000


def local_next(value: str, site_path: str = "/") -> str:
    """``value`` if it names a page of this site a sign-in may return to, else ``""``.

    The page may be given below the base URL (``v2/web/developer``) or as the path
    a browser shows (``/v2/web/developer``, after the deployment's `site_path`);
    it is returned in the first form. Only printable ASCII is accepted: a browser
    percent-encodes anything else, so a raw space or control character is an
    attempt to smuggle a header or a second address.
    """
    if value.startswith("/"):
        if not value.startswith(site_path):
            return ""
        value = value[len(site_path):]
    if len(value) > MAX_NEXT_LENGTH or not all(33 <= ord(char) < 127 for char in value):
        return ""
    return value if _LOCAL_NEXT.fullmatch(value) else ""


def login_url(public_url: str, page: str) -> str:
    """The site's sign-in page, returning to `page` (as `local_next` takes it) afterwards."""
    return f"{public_url}{LOGIN_PAGE}?next={quote(page, safe='')}"


@dataclass(frozen=True)
class Destination:
    purpose: str
    # "authorize": the request's query string, as received.
    authorize_query: str | None = None
    # "account": the page to open (always one `local_next` accepts).
    next_path: str | None = None
    # "link": the account the identity joins (None for an identity without one).
    account_id: uuid.UUID | None = None

    @classmethod
    def authorize(cls, query: str) -> Destination:
        return cls("authorize", authorize_query=query)

    @classmethod
    def page(cls, next_value: str, site_path: str = "/") -> Destination:
        """A page of this site; anything else (another site, nothing) is the account page."""
        return cls("account", next_path=local_next(next_value, site_path) or ACCOUNT_PAGE)

    @classmethod
    def link(cls, account_id: uuid.UUID | None) -> Destination:
        return cls("link", account_id=account_id)

    @classmethod
    def kept(
        cls, purpose: str, authorize_query: str | None, next_path: str | None,
        account_id: uuid.UUID | None,
    ) -> Destination:
        """One read back from where it was stored (see `columns`)."""
        if purpose == "authorize":
            return cls.authorize(authorize_query or "")
        if purpose == "link":
            return cls.link(account_id)
        return cls.page(next_path or "")

    def columns(self) -> dict[str, Any]:
        """The values to store, under the column names of the tables that keep them."""
        return {"purpose": self.purpose, "authorize_query": self.authorize_query,
                "next_path": self.next_path, "account_id": self.account_id}
