"""Drives Auth's login and consent pages over HTTP, as a browser would."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import requests


@dataclass
class Form:
    action: str
    id: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    buttons: dict[str, str] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)


class _FormParser(HTMLParser):
    """Forms as a browser would submit them: inputs, selects (the selected or first
    option) and textareas, with each button's name and value."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._in_label = False
        self._select: str | None = None
        self._select_chosen = False
        self._textarea: str | None = None
        self.labels: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        form = self.forms[-1] if self.forms else None
        if tag == "form":
            self.forms.append(Form(action=attributes.get("action", ""),
                                   id=attributes.get("id", "")))
        elif tag == "input" and form and "name" in attributes:
            form.fields[attributes["name"]] = attributes.get("value", "")
        elif tag == "button" and form and "name" in attributes:
            form.buttons[attributes.get("value", "")] = attributes["name"]
        elif tag == "select" and form and "name" in attributes:
            self._select, self._select_chosen = attributes["name"], False
        elif tag == "option" and form and self._select is not None:
            if not self._select_chosen and (self._select not in form.fields
                                            or "selected" in attributes):
                form.fields[self._select] = attributes.get("value", "")
                self._select_chosen = "selected" in attributes
        elif tag == "textarea" and form and "name" in attributes:
            self._textarea = attributes["name"]
            form.fields[self._textarea] = ""
        elif tag == "label":
            self._in_label = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._in_label = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None and self.forms:
            self.forms[-1].fields[self._textarea] += data
        if self._in_label and data.strip():
            self.labels.append(data.strip())


def parse_forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    for form in parser.forms:
        form.labels = parser.labels
    return parser.forms


def parse_form(html: str) -> Form:
    forms = parse_forms(html)
    assert forms, f"no form on the page:\n{html[:2000]}"
    return forms[0]


def find_form(html: str, form_id: str) -> Form:
    """The form with this id on the page."""
    for form in parse_forms(html):
        if form.id == form_id:
            return form
    raise AssertionError(f"no form {form_id!r} on the page:\n{html[:3000]}")


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

    def follow(self, response: requests.Response) -> requests.Response:
        """The page a redirect leads to (one hop)."""
        assert response.status_code in (302, 303), (response.status_code, response.text[:2000])
        return self.open(urljoin(response.url, response.headers["Location"]))

    def submit_form(self, page: requests.Response, form_id: str,
                    **values: str) -> requests.Response:
        """Fill in and submit one form of a page, as a user clicking its button."""
        return self.submit(page.url, find_form(page.text, form_id), **values)

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
