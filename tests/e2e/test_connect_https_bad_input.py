"""Property-based robustness of HTTPS/WebDAV data access: no request may make it answer 5xx.

As `test_connect_bad_input` does for the Manager API: Hypothesis sends requests for the
files of a live collection with every method the data routes know (and some they do not),
paths with nasty characters and segments spliced in, and headers (Range, preconditions,
Depth, Destination, Overwrite, digests, tokens) drawn from valid and broken values. Every
refusal must be a short JSON document (``code``, ``message``), or the WebDAV error document
where RFC 4918 names one. ``ISTHMUS_FUZZ_EXAMPLES`` bounds the examples per method group.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import User, _new_user
from tests.e2e.data_helpers import DataSite, curl, start_data_site
from tests.e2e.test_no_server_errors import FUZZ, NASTY, header_text

METHOD_GROUPS = {
    "read": ("GET", "HEAD", "OPTIONS"),
    "write": ("PUT", "DELETE", "MKCOL"),
    "webdav": ("PROPFIND", "PROPPATCH", "MOVE", "COPY"),
    "unknown": ("PATCH", "POST", "LOCK", "TRACE"),
}
SEGMENTS = ["..", "%2e%2e", "%2E%2E%2F", ".", "~", "%00", "%ff", "%2F", "a" * 300, "日本",
            "%C3%A9", "%", "%zz", "", "file.txt", "dir", "missing"]
SHA = "sha-256=:" + base64.b64encode(hashlib.sha256(b"x").digest()).decode() + ":"


@dataclass(frozen=True)
class Fuzzed:
    site: DataSite
    user: User
    token: str

    @property
    def home(self) -> str:
        return "/" + quote(self.user.username)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    for site in start_data_site(tmp_path_factory.mktemp("isthmus-https-fuzz")):
        user = _new_user(site.server, "fuzz")
        token = site.token(user)
        home = site.home_url(user)
        assert curl(site.server, token, "-X", "MKCOL", home + "/dir").status == 201
        assert curl(site.server, token, "-T", "/etc/hostname", home + "/file.txt").status == 201
        yield Fuzzed(site, user, token)


def header_values(fuzzed: Fuzzed) -> dict[str, st.SearchStrategy[str]]:
    base = fuzzed.site.url
    return {
        "Range": st.sampled_from(["bytes=0-1", "bytes=-1", "bytes=5-", "bytes=9-1",
                                  "bytes=0-1,3-4", "bytes=99999999999999999999-",
                                  "items=1-2", "bytes=-0", "bytes="]) | header_text,
        "If-Range": st.sampled_from(['"x"', "Sun, 06 Nov 1994 08:49:37 GMT"]) | header_text,
        "If-Match": st.sampled_from(["*", '"x"', 'W/"x"', '"a", "b"', '"unterminated'])
        | header_text,
        "If-None-Match": st.sampled_from(["*", '"x"', 'W/"x"']) | header_text,
        "If-Modified-Since": st.sampled_from(["Sun, 06 Nov 1994 08:49:37 GMT",
                                              "Fri, 31 Dec 9999 23:59:59 GMT"]) | header_text,
        "If-Unmodified-Since": st.sampled_from(["Sun, 06 Nov 1994 08:49:37 GMT"])
        | header_text,
        "Depth": st.sampled_from(["0", "1", "infinity", "2", "-1"]) | header_text,
        "Overwrite": st.sampled_from(["T", "F", "t", "maybe"]) | header_text,
        "Destination": st.sampled_from([
            f"{base}{fuzzed.home}/moved", f"{base}{fuzzed.home}/dir/inner",
            f"{base}{fuzzed.home}/missing/x", f"{base}/", f"{base}/../x",
            f"{base}{fuzzed.home}/%00", f"{base}{fuzzed.home}/%ff",
            "https://elsewhere.example/data/x", "/data/not-a-uuid/x", "relative/path", "",
            f"{base}{fuzzed.home}",
        ]) | header_text,
        "Want-Repr-Digest": st.sampled_from(["sha-256=1", "md5=3, adler=1", "sha=11",
                                             "unknown=5", "sha-256", "=", "sha-256=0"])
        | header_text,
        "Repr-Digest": st.sampled_from([SHA, "sha-256=:AAAA:", "md5=1", "adler=:x:"])
        | header_text,
        "Content-Digest": st.sampled_from([SHA, "sha-512=:AA==:"]) | header_text,
        "Content-Range": st.sampled_from(["bytes 0-1/2", "bytes */2"]) | header_text,
        "Content-Type": st.sampled_from(["application/xml", "text/plain"]) | header_text,
        "Authorization": st.sampled_from([
            "", "Bearer", f"Bearer {fuzzed.token}x", "Basic Zm9vOmJhcg==",
            "Bearer " + "a" * 600]),
    }


def draw_path(data: st.DataObject, fuzzed: Fuzzed) -> str:
    start = data.draw(st.sampled_from([fuzzed.home, fuzzed.home + "/file.txt",
                                       fuzzed.home + "/dir", "", "/~", "/other"]),
                      label="start")
    segments = data.draw(st.lists(st.sampled_from(SEGMENTS) | st.sampled_from(NASTY).map(
        lambda nasty: quote(nasty, safe="")), max_size=3), label="segments")
    return start + "".join("/" + segment for segment in segments)


def draw_body(data: st.DataObject) -> bytes:
    return data.draw(st.sampled_from([
        b"", b"content", b"<not xml",
        b'<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>',
        b'<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/><x:y xmlns:x="u"/></D:prop>'
        b"</D:propfind>",
        b'<!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>', b"\xff\xfe\x00",
    ]) | st.binary(max_size=200), label="body")


def check(method: str, url: str, headers: dict[str, str], response: requests.Response) -> None:
    where = f"{method} {url[:300]} headers={headers}"
    assert response.status_code < 500, f"{response.status_code} for {where}: {response.text}"
    if method == "HEAD" or response.status_code < 400:
        return
    sent = urlsplit(response.request.url or "").path
    if not sent.startswith("/data/"):
        return  # dot segments took the request out of /data (the client resolves them)
    kind = response.headers.get("Content-Type", "")
    if kind.startswith("application/xml"):
        assert response.status_code == 403 and "propfind-finite-depth" in response.text, where
        return
    assert kind.startswith("application/json"), f"{where}: {kind} {response.text[:200]}"
    body = json.loads(response.content)
    assert isinstance(body["code"], str) and isinstance(body["message"], str), where
    assert "Traceback" not in body["message"], where


@pytest.mark.parametrize("group", sorted(METHOD_GROUPS))
def test_no_request_makes_data_access_answer_5xx(fuzzed: Fuzzed, group: str) -> None:
    http = requests.Session()
    http.verify = fuzzed.site.server.ca_file
    http.trust_env = False
    strategies = header_values(fuzzed)

    @FUZZ
    @given(data=st.data())
    def property_(data: st.DataObject) -> None:
        method = data.draw(st.sampled_from(METHOD_GROUPS[group]), label="method")
        url = fuzzed.site.url + draw_path(data, fuzzed)
        if data.draw(st.booleans(), label="query?"):
            url += data.draw(st.sampled_from(["?download", "?download=1&x=%00", "?%ff"]),
                             label="query")
        names = data.draw(st.lists(st.sampled_from(sorted(strategies)), max_size=4,
                                   unique=True), label="headers")
        headers = {"Authorization": f"Bearer {fuzzed.token}"}
        for name in names:
            headers[name] = data.draw(strategies[name], label=name)
        body = draw_body(data)
        response = http.request(method, url, headers=headers, data=body,
                                allow_redirects=False, timeout=30)
        check(method, url, headers, response)

    property_()
