"""Drives Auth's login and consent pages over HTTP, as a browser would."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, quote, urljoin, urlsplit

import requests


@dataclass
class Form:
    action: str
    id: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    buttons: dict[str, str] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    # A named button's text -> (name, value), for pressing a button by what it says.
    button_texts: dict[str, tuple[str, str]] = field(default_factory=dict)


class _FormParser(HTMLParser):
    """Forms as a browser would submit them: inputs, selects (the selected or first
    option) and textareas, with each button's name, value and text; and the links."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._in_label = False
        self._select: str | None = None
        self._select_chosen = False
        self._textarea: str | None = None
        self.labels: list[str] = []
        self._button: tuple[str, str] | None = None
        self._button_text: list[str] = []
        self.links: dict[str, str] = {}  # a link's text -> its href
        self._link: str | None = None
        self._link_text: list[str] = []

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
            self._button = (attributes["name"], attributes.get("value", ""))
            self._button_text = []
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
        elif tag == "a" and "href" in attributes:
            self._link, self._link_text = attributes["href"], []

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._in_label = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "button" and self._button is not None:
            self.forms[-1].button_texts[" ".join("".join(self._button_text).split())] = (
                self._button)
            self._button = None
        elif tag == "a" and self._link is not None:
            self.links[" ".join("".join(self._link_text).split())] = self._link
            self._link = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None and self.forms:
            self.forms[-1].fields[self._textarea] += data
        if self._in_label and data.strip():
            self.labels.append(data.strip())
        if self._button is not None:
            self._button_text.append(data)
        if self._link is not None:
            self._link_text.append(data)


def _parsed(html: str) -> _FormParser:
    parser = _FormParser()
    parser.feed(html)
    return parser


def parse_forms(html: str) -> list[Form]:
    parser = _parsed(html)
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


def form_with(html: str, **fields: str) -> Form:
    """The form on the page whose hidden fields have these values (e.g. ``action="start"``)."""
    for form in parse_forms(html):
        if all(form.fields.get(key) == value for key, value in fields.items()):
            return form
    raise AssertionError(f"no form with {fields} on the page:\n{html[:3000]}")


def text_of(html: str, element_id: str) -> str:
    """The text inside the element with this id (no nested markup)."""
    start = html.index(f'id="{element_id}"')
    start = html.index(">", start) + 1
    return html[start:html.index("<", start)].strip()


def parse_links(html: str) -> dict[str, str]:
    """The page's links, by their text."""
    return _parsed(html).links


def form_with_button(html: str, text: str) -> tuple[Form, dict[str, str]]:
    """The form holding the button that says `text`, and the value that pressing it sends."""
    for form in parse_forms(html):
        if text in form.button_texts:
            name, value = form.button_texts[text]
            return form, {name: value}
    raise AssertionError(f"no button {text!r} on the page:\n{html[:3000]}")


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
        *, decision: str = "allow", second_factor: Callable[[], str] | None = None,
    ) -> str:
        """Go through login, the second factor and consent as needed; return the final
        redirect Location. ``second_factor`` gives the code when one is asked for."""
        response = self.open(authorize_url)
        url = authorize_url
        logins = 0
        for _ in range(5):
            if response.status_code in (302, 303):
                return str(response.headers["Location"])
            self.last_page = response.text
            assert response.status_code == 200, response.text[:2000]
            form = parse_form(response.text)
            if "password" in form.fields:
                assert username is not None and password is not None, "login was required"
                # A login page after a login means the session still misses something.
                assert logins == 0, f"login asked for again:\n{response.text[:3000]}"
                logins += 1
                response = self.submit(url, form, username=username, password=password)
            elif "code" in form.fields:
                assert second_factor is not None, "a second factor was asked for"
                response = self.submit(url, form, code=second_factor())
            elif "decision" in form.buttons.values():
                response = self.submit(url, form, decision=decision)
            else:
                raise AssertionError(f"unexpected page:\n{response.text[:2000]}")
        raise AssertionError("too many pages before a redirect")

    def sign_in(
        self, base_url: str, page: str, username: str, password: str,
        second_factor: Callable[[], str] | None = None,
    ) -> requests.Response:
        """Log in to one of the site's own pages (``page`` below the base URL) and open it."""
        url = f"{base_url}v2/web/login?next={quote(page, safe='')}"
        login = self.open(url)
        assert login.status_code == 200, login.text[:2000]
        response = self.submit(url, parse_form(login.text), username=username,
                               password=password)
        if response.status_code == 200 and "code" in parse_form(response.text).fields:
            assert second_factor is not None, "a second factor was asked for"
            response = self.submit(url, parse_form(response.text), code=second_factor())
        assert response.status_code == 303, response.text[:2000]
        assert response.headers["Location"] == base_url + page
        return self.open(base_url + page)

    def press(self, url: str, html: str, text: str, **values: str) -> requests.Response:
        """Press the button that says `text` on the page at `url`."""
        form, pressed = form_with_button(html, text)
        return self.submit(url, form, **{**pressed, **values})

    def code_from_page(self, location: str) -> str:
        """Follow the redirect to /v2/web/auth-code and read the code shown there."""
        page = self.http.get(location, timeout=30)
        assert page.status_code == 200
        start = page.text.index('id="auth-code">') + len('id="auth-code">')
        return page.text[start:page.text.index("</code>", start)].strip()


def query_of(location: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Sites:
    """One person's browser across several servers on this machine.

    Each server gets its own `Browser` (cookie jar and CA): cookies ignore ports,
    so two servers on 127.0.0.1 would otherwise overwrite each other's session
    cookie, which different host names in a real deployment never do.
    """

    def __init__(self, *servers: tuple[str, str]) -> None:
        self.browsers = {origin(base_url): Browser(ca_file) for base_url, ca_file in servers}

    def browser(self, url: str) -> Browser:
        return self.browsers[origin(url)]

    def knows(self, url: str) -> bool:
        return origin(url) in self.browsers

    def open(self, url: str) -> requests.Response:
        return self.browser(url).open(url)

    def submit(self, url: str, form: Form, **values: str) -> requests.Response:
        return self.browser(url).submit(url, form, **values)

    def press(self, url: str, html: str, text: str, **values: str) -> requests.Response:
        return self.browser(url).press(url, html, text, **values)

    def follow(self, response: requests.Response, url: str) -> tuple[requests.Response, str]:
        """Follow redirects among these servers; stop at a page, or a redirect elsewhere."""
        for _ in range(10):
            if response.status_code not in (302, 303):
                return response, url
            location = urljoin(url, response.headers["Location"])
            if not self.knows(location):
                return response, url
            url = location
            response = self.open(url)
        raise AssertionError("too many redirects")
