"""`WireHttp` (the httplib2-compatible transport under the Google SDK) against real sockets:
a scripted raw HTTP server on 127.0.0.1 for the wire cases, the fake Directory API for the
SDK and google-auth on top."""

from __future__ import annotations

import gc
import gzip
import http.client
import socket
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import google_auth_httplib2
import httplib2
import orjson
import pytest
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from connectors.google.client import SCOPES, wire_for
from connectors.google.transport import WireHttp
from connectors.testing.google import new_key, service_account_info
from connectors.testing.harness import running_fake
from connectors.testing.tenant import generate

#: one request's head and body as received -> raw bytes to answer, or None to close unanswered;
#: an answer with ``connection: close`` is followed by the server closing the connection
Script = Callable[[bytes, bytes, int], bytes | None]


def _read_request(conn: socket.socket, buf: bytearray) -> tuple[bytes, bytes] | None:
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        rest += conn.recv(65536)
    buf[:] = rest[length:]
    return head, rest[:length]


@contextmanager
def scripted(script: Script) -> Iterator[tuple[str, list[bytes], list[int]]]:
    """A server answering each request with ``script(head, body, n)`` (n counts requests).

    Yields its base URL, the request heads received and the number of connections accepted."""
    lsock = socket.create_server(("127.0.0.1", 0))
    heads: list[bytes] = []
    accepted = [0]

    def serve_conn(conn: socket.socket) -> None:
        buf = bytearray()
        with conn:
            while True:
                try:
                    got = _read_request(conn, buf)
                except OSError:
                    return
                if got is None:
                    return
                heads.append(got[0])
                answer = script(got[0], got[1], len(heads))
                if answer is None:
                    return
                conn.sendall(answer)
                if b"connection: close" in answer.lower():
                    return

    def accept() -> None:
        while True:
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            accepted[0] += 1
            threading.Thread(target=serve_conn, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{lsock.getsockname()[1]}", heads, accepted
    finally:
        lsock.close()


def ok(body: bytes = b'{"a": 1}', *extra: str, status: str = "200 OK") -> bytes:
    lines = [f"HTTP/1.1 {status}", f"content-length: {len(body)}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_status_reason_headers_and_body_come_back_as_httplib2_shapes_them() -> None:
    answer = ok(b'{"x": 2}', "Content-Type: application/json", "X-Seen: a", "X-Seen: b",
                status="201 Created")
    with scripted(lambda h, b, n: answer) as (url, heads, _):
        resp, content = WireHttp(timeout=5).request(url + "/p?q=1", "GET", headers={"X-Mine": "v"})
    assert isinstance(resp, httplib2.Response)
    assert (resp.status, resp.reason, content) == (201, "Created", b'{"x": 2}')
    assert resp["content-type"] == "application/json"
    assert resp["x-seen"] == "a, b"
    assert resp["status"] == "201"
    assert heads[0].startswith(b"GET /p?q=1 HTTP/1.1\r\n")
    assert b"\r\nX-Mine: v" in heads[0] and b"\r\nHost: 127.0.0.1:" in heads[0]


def test_header_with_a_line_break_is_refused_before_sending() -> None:
    with scripted(lambda h, b, n: ok()) as (url, heads, _):
        with pytest.raises(ValueError):
            WireHttp(timeout=5).request(url + "/", headers={"authorization": "Bearer x\r\nX-Evil: 1"})
        assert heads == []


def test_post_body_and_content_length_are_sent() -> None:
    seen: list[bytes] = []

    def script(head: bytes, body: bytes, n: int) -> bytes:
        seen.append(body)
        return ok()

    with scripted(script) as (url, heads, _):
        WireHttp(timeout=5).request(url + "/token", "POST", body="a=1&b=2")
    assert seen == [b"a=1&b=2"]
    assert b"content-length: 7" in heads[0]


def test_chunked_gzip_and_deflate_bodies_are_decoded() -> None:
    raw = b'{"members": []}'
    packed = gzip.compress(raw)
    chunked = (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-encoding: gzip\r\n\r\n"
               + f"{len(packed[:5]):x}\r\n".encode() + packed[:5] + b"\r\n"
               + f"{len(packed[5:]):x}\r\n".encode() + packed[5:] + b"\r\n0\r\n\r\n")
    answers = [chunked, ok(zlib.compress(raw), "content-encoding: deflate")]
    with scripted(lambda h, b, n: answers[n - 1]) as (url, _, accepted):
        http = WireHttp(timeout=5)
        for _ in answers:
            resp, content = http.request(url + "/")
            assert content == raw
            assert "content-encoding" not in resp
        assert accepted[0] == 1  # both on one kept-alive connection


def test_undecodable_gzip_raises_httplib2_error() -> None:
    bad = ok(b"not gzip", "content-encoding: gzip")
    with scripted(lambda h, b, n: bad) as (url, _, _), \
            pytest.raises(httplib2.FailedToDecompressContent):
        WireHttp(timeout=5).request(url + "/")


def test_body_delimited_by_close_is_read_to_the_end() -> None:
    answer = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n{\"all\": true}"

    def script(head: bytes, body: bytes, n: int) -> bytes | None:
        return answer if n == 1 else ok()

    with scripted(script) as (url, _, accepted):
        http = WireHttp(timeout=5)
        assert http.request(url + "/")[1] == b'{"all": true}'
        assert http.request(url + "/")[1] == b'{"a": 1}'
    assert accepted[0] == 2


def test_kept_alive_connection_closed_by_server_is_reopened_once() -> None:
    def script(head: bytes, body: bytes, n: int) -> bytes | None:
        return None if n == 2 else ok()  # the server drops the idle connection

    with scripted(script) as (url, heads, accepted):
        http = WireHttp(timeout=5)
        http.request(url + "/one")
        resp, _ = http.request(url + "/two")
    assert resp.status == 200
    assert len(heads) == 3 and accepted[0] == 2


def test_fresh_connection_closed_without_answer_raises_connection_error() -> None:
    with scripted(lambda h, b, n: None) as (url, _, accepted), \
            pytest.raises(http.client.RemoteDisconnected) as info:
        WireHttp(timeout=5).request(url + "/")
    assert isinstance(info.value, ConnectionError)  # googleapiclient retries these
    assert accepted[0] == 1


def test_answer_cut_short_raises_connection_error() -> None:
    cut = b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\nconnection: close\r\n\r\n{\"a\""
    with scripted(lambda h, b, n: cut) as (url, _, _), pytest.raises(ConnectionError):
        WireHttp(timeout=5).request(url + "/")


def test_garbage_answer_raises_httplib2_error() -> None:
    with scripted(lambda h, b, n: b"SMTP ready\r\n\r\n") as (url, _, _), \
            pytest.raises(httplib2.HttpLib2Error):
        WireHttp(timeout=5).request(url + "/")


def test_silent_server_times_out_with_socket_timeout() -> None:
    lsock = socket.create_server(("127.0.0.1", 0))  # accepts (backlog), never answers
    try:
        with pytest.raises(TimeoutError):
            WireHttp(timeout=0.2).request(f"http://127.0.0.1:{lsock.getsockname()[1]}/")
    finally:
        lsock.close()


def test_refused_connection_and_unknown_host_raise_what_httplib2_raises() -> None:
    lsock = socket.create_server(("127.0.0.1", 0))
    port = lsock.getsockname()[1]
    lsock.close()
    with pytest.raises(ConnectionRefusedError):
        WireHttp(timeout=2).request(f"http://127.0.0.1:{port}/")
    with pytest.raises(httplib2.ServerNotFoundError):
        WireHttp(timeout=2).request("http://no-such-host.invalid/")
    with pytest.raises(httplib2.RelativeURIError):
        WireHttp(timeout=2).request("/relative")


def test_redirects_are_followed_for_get_up_to_the_limit() -> None:
    def script(head: bytes, body: bytes, n: int) -> bytes:
        if head.startswith(b"GET /final"):
            return ok(b"done")
        if head.startswith(b"GET /loop"):
            return ok(b"", "location: /loop", status="302 Found")
        return ok(b"", "location: /final", status="301 Moved Permanently")

    with scripted(script) as (url, _, _):
        http = WireHttp(timeout=5)
        resp, content = http.request(url + "/start")
        assert (resp.status, content) == (200, b"done")
        assert resp.previous is not None and resp.previous.status == 301
        with pytest.raises(httplib2.RedirectLimit):
            http.request(url + "/loop", redirections=2)
        resp, _ = http.request(url + "/start", "POST", body=b"x")
        assert resp.status == 301  # not followed for POST, as httplib2


def test_close_drops_connections_and_the_next_request_reconnects() -> None:
    with scripted(lambda h, b, n: ok()) as (url, _, accepted):
        http = WireHttp(timeout=5)
        http.request(url + "/")
        http.close()
        http.request(url + "/")
    assert accepted[0] == 2


# -- under google-auth and googleapiclient ---------------------------------------------------


def _credentials(url: str, key: object) -> service_account.Credentials:
    info = service_account_info(url + "/token", key)
    return service_account.Credentials.from_service_account_info(
        info, scopes=SCOPES).with_subject("admin@contoso.example")


def test_expired_token_answered_401_is_refreshed_and_the_request_repeated() -> None:
    key = new_key()
    tenant = generate(users=5, groups=1, members_per_group=2, seed=1)
    with running_fake("google", tenant, signing_key=key) as (_, url):
        creds = _credentials(url, key)
        creds.token = "stale-token-the-fake-never-issued"
        creds.expiry = None  # looks valid to google-auth: only the 401 tells
        authed = google_auth_httplib2.AuthorizedHttp(creds, http=WireHttp(timeout=5))
        resp, content = authed.request(
            url + "/admin/directory/v1/users?customer=my_customer&maxResults=10")
    assert resp.status == 200
    assert len(orjson.loads(content)["users"]) == 5
    assert creds.token != "stale-token-the-fake-never-issued"


def test_sdk_error_answers_become_http_error_with_status_and_body() -> None:
    key = new_key()
    tenant = generate(users=5, groups=1, members_per_group=2, seed=1)
    with running_fake("google", tenant, signing_key=key) as (_, url):
        authed = google_auth_httplib2.AuthorizedHttp(_credentials(url, key),
                                                     http=WireHttp(timeout=5))
        api = build("admin", "directory_v1", http=authed, static_discovery=True,
                    cache_discovery=False, client_options={"api_endpoint": url + "/"})
        page = api.users().list(customer="my_customer", maxResults=10).execute()
        with pytest.raises(HttpError) as info:
            api.members().list(groupKey="no-such-group").execute()
    assert len(page["users"]) == 5
    assert info.value.resp.status == 404
    assert b"error" in info.value.content


def test_answers_are_freed_by_reference_counting_not_left_in_cycles() -> None:
    """A snapshot keeps the cyclic collector off its heap while it reads: an answer caught in
    a reference cycle would keep its body until the read ends."""
    with scripted(lambda h, b, n: ok(b"x" * 10_000)) as (url, _, _):
        http = WireHttp(timeout=5)
        http.request(url + "/")
        gc.collect()
        gc.disable()
        try:
            for _ in range(5):
                http.request(url + "/")
            assert gc.collect() == 0
        finally:
            gc.enable()


@pytest.mark.parametrize(
    ("env", "socks", "expected"),
    [
        ({}, True, "wire"),
        ({"HTTPS_PROXY": "http://proxy.example:3128"}, True, "httplib2"),
        ({"HTTPS_PROXY": "http://proxy.example:3128"}, False, "wire"),  # httplib2 would go direct too
        ({"HTTP_PROXY": "http://proxy.example:3128"}, True, "wire"),  # not the base URL's scheme
    ],
)
def test_a_proxy_in_the_environment_keeps_httplib2(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                                    socks: bool, expected: str) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(httplib2, "socks", object() if socks else None)
    http = wire_for("https://admin.googleapis.com", 5.0)
    assert type(http) is (WireHttp if expected == "wire" else httplib2.Http)
