"""Drives Auth's login and consent pages over HTTP, as a browser would."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import requests


@dataclass
class Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: dict[str, str] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._in_label = False
        self.labels: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append(Form(action=attributes.get("action", "")))
        elif tag == "input" and self.forms and "name" in attributes:
            self.forms[-1].fields[attributes["name"]] = attributes.get("value", "")
        elif tag == "button" and self.forms and "name" in attributes:
            self.forms[-1].buttons[attributes.get("value", "")] = attributes["name"]
        elif tag == "label":
            self._in_label = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._in_label = False

    def handle_data(self, data: str) -> None:
        if self._in_label and data.strip():
            self.labels.append(data.strip())


def parse_form(html: str) -> Form:
    parser = _FormParser()
    parser.feed(html)
    assert parser.forms, f"no form on the page:\n{html[:2000]}"
    form = parser.forms[0]
    form.labels = parser.labels
    return form


class Browser:
    """A cookie-keeping HTTP client that knows how to fill Auth's forms."""

    def __init__(self, ca_file: str) -> None:
        self.http = requests.Session()
        self.http.verify = ca_file
        self.http.trust_env = False
        self.last_page = ""

    def open(self, url: str) -> requests.Response:
        return self.http.get(url, allow_redirects=False, timeout=30)

    def submit(self, url: str, form: Form, **values: str) -> requests.Response:
        data = {**form.fields, **values}
        return self.http.post(urljoin(url, form.action), data=data, allow_redirects=False,
                              timeout=30)

    def authorize(
        self, authorize_url: str, username: str | None = None, password: str | None = None,
        *, decision: str = "allow",
    ) -> str:
        """Go through login and consent as needed; return the final redirect Location."""
        response = self.open(authorize_url)
        url = authorize_url
        for _ in range(4):
            if response.status_code in (302, 303):
                return str(response.headers["Location"])
            self.last_page = response.text
            assert response.status_code == 200, response.text[:2000]
            form = parse_form(response.text)
            if "password" in form.fields:
                assert username is not None and password is not None, "login was required"
                response = self.submit(url, form, username=username, password=password)
            elif "decision" in form.buttons.values():
                response = self.submit(url, form, decision=decision)
            else:
                raise AssertionError(f"unexpected page:\n{response.text[:2000]}")
        raise AssertionError("too many pages before a redirect")

    def code_from_page(self, location: str) -> str:
        """Follow the redirect to /v2/web/auth-code and read the code shown there."""
        page = self.http.get(location, timeout=30)
        assert page.status_code == 200
        start = page.text.index('id="auth-code">') + len('id="auth-code">')
        return page.text[start:page.text.index("</code>", start)].strip()


def query_of(location: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}
