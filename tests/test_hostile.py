"""Requests a fuzzer may not think of, straight to the service: each a clear 4xx, never a 5xx, nothing started.

(Through the Hub's proxy, configurable-http-proxy 5.3 itself answers 500 to a
path with invalid percent-encoding such as %ff, before the service sees it: see
docs/operations.rst, "Known limits".)
"""

import http.client
import json
import re
import socket
from urllib.parse import urlsplit

import pytest
import requests

from notebooks_service.metrics import KNOWN_METHODS

from conftest import ADMIN_TOKEN, admin_request

# a server route with an image outside the catalogue: every method is answered, and nothing starts
ROUTES = [
    "",
    "user",
    "health",
    "ready",
    "metrics",
    "api/openapi.json",
    "alpha/cobol",
    "alpha/cobol/a.ipynb",
    "alpha/cobol/progress",
    "alpha/cobol/-/progress",
    "alpha/cobol/-/nonsense",
]
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]


@pytest.fixture
def send(hub, tokens):
    """``send(method, raw_path, ...)``: the path exactly as given (no client-side normalising), as bob."""
    target = urlsplit(hub.direct_service_url)

    def request(method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        connection.putrequest(method, target.path + path, skip_accept_encoding=True)
        all_headers = {"Authorization": f"token {tokens['bob']}", "Accept": "application/json", **(headers or {})}
        if body is not None:
            all_headers["Content-Length"] = str(len(body))
        for name, value in all_headers.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        payload = response.read()
        connection.close()
        return response.status, dict(response.getheaders()), payload

    request.direct_service_url, request.token = hub.direct_service_url, tokens["bob"]
    return request


@pytest.fixture(autouse=True)
def nothing_started(hub):
    yield
    _, model = admin_request(hub, "GET", "/users/bob")
    assert model["servers"] == {}, "a hostile request started a server"


@pytest.mark.parametrize(
    "path, status, says",
    [
        ("alpha%2Fbeta/python", 400, "Invalid workspace name"),  # an encoded slash is not a separator
        ("%2E%2E/python", 400, "Invalid workspace name"),
        ("alpha/python/%2E%2E/%2E%2E/etc/passwd", 400, "notebook"),
        ("alpha/python/..%2F..%2Fsecret", 400, "notebook"),
        ("alpha%0A/python", 400, "Invalid workspace name"),
        ("alpha%0D%0ASet-Cookie:%20x=1/python", 400, "Invalid workspace name"),
        ("alpha/python/%ff", 400, "Invalid unicode"),
        ("%ff/python", 400, "Invalid unicode"),
        ("a" * 10000 + "/python", 400, "Invalid workspace name"),
        ("alpha/" + "p" * 10000, 404, "Unknown image"),
    ],
    ids=[
        "slash",
        "dots",
        "traversal",
        "encoded-traversal",
        "lf",
        "crlf",
        "bad-utf8-notebook",
        "bad-utf8",
        "10k-workspace",
        "10k-image",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_odd_paths_are_clear_4xx(send, method, path, status, says):
    code, headers, body = send(method, path)
    if method == "DELETE" and status == 404:
        assert code == 204  # stopping needs no catalogue check: a stop of a server that never was
        return
    if method == "DELETE" and says == "notebook":
        assert code == 405 and "DELETE" not in headers["Allow"]  # a notebook path is never stopped
        return
    assert code == status, body[:300]
    assert headers["Content-Type"] == "application/json"
    message = json.loads(body)["message"]
    assert says in message and len(message) < 500  # a 10k name is not echoed back whole
    assert "Set-Cookie" not in headers


@pytest.mark.parametrize("notebook", ["a%00b.ipynb", "a%0Ab.ipynb", "report%0D.ipynb", "x%7F"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_control_characters_in_a_notebook_path_are_a_400(send, method, notebook):
    code, _, body = send(method, f"alpha/python/{notebook}")
    assert code == 400, body
    assert "no control characters" in json.loads(body)["message"]


@pytest.mark.parametrize("tail", ["%C2%B2", "%D9%A3", "1" * 5001, "-1", "1e3", "", "10001"])
def test_a_tail_that_is_not_a_few_ascii_digits_is_a_400(send, tail):
    code, _, body = send("GET", f"alpha/python/-/logs?tail={tail}")
    assert code == 400, body
    assert "tail must be a number of lines" in json.loads(body)["message"]


def test_a_body_larger_than_the_service_takes_is_413_unread(send):
    code, headers, body = send("POST", "alpha/python", body=b"x" * (64 * 1024 + 1))
    assert code == 413 and b"at most 65536" in body
    assert headers["Connection"] == "close"


def test_an_oversized_body_through_the_hubs_proxy_is_the_413_every_time(hub, tokens):
    """The proxy is still sending when the service answers: the service reads the rest and drops
    it, so the proxy relays the 413 (before: its own 503 page 2 times in 10, after a reset)."""
    headers = {"Authorization": f"token {tokens['bob']}", "Accept": "application/json"}
    for size in [200 * 1024] * 8 + [4 * 1024 * 1024] * 2:
        response = requests.post(hub.service_url + "alpha/python", data=b"x" * size, headers=headers, timeout=60)
        assert response.status_code == 413, (size, response.status_code, response.text[:200])
        assert response.json()["message"] == f"The request body is {size} bytes; this service takes at most 65536."


def test_a_chunked_body_past_the_limit_is_a_413_and_none_of_it_is_kept(send):
    def chunks():
        for _ in range(40):
            yield b"y" * 4096  # 160 KiB in all, no Content-Length

    code, headers, body = send_chunked(send, chunks())
    assert code == 413, body
    assert json.loads(body)["message"] == "The request body is more than 65536 bytes; this service takes at most 65536."


def send_chunked(send, chunks):
    """POST alpha/python as bob with a chunked body (http.client sends Transfer-Encoding: chunked)."""
    target = urlsplit(send.direct_service_url)
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    connection.request(
        "POST",
        target.path + "alpha/python",
        body=chunks,
        headers={"Authorization": f"token {send.token}", "Accept": "application/json"},
        encode_chunked=True,
    )
    response = connection.getresponse()
    try:
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_a_huge_declared_body_is_refused_before_it_is_sent(hub, tokens):
    target = urlsplit(hub.direct_service_url)
    with socket.create_connection((target.hostname, target.port), timeout=30) as s:
        s.sendall(
            f"POST {target.path}alpha/python HTTP/1.1\r\nHost: x\r\nAuthorization: token {tokens['bob']}\r\n"
            "Accept: application/json\r\nContent-Length: 200000000\r\n\r\n".encode()
        )
        answer = s.recv(4096).decode()  # after the headers only: not 200 MB later
    assert answer.startswith("HTTP/1.1 413 ")


@pytest.mark.parametrize("route", ROUTES)
def test_every_method_on_every_route_is_answered_without_a_5xx(send, route):
    for method in METHODS:
        code, headers, _ = send(method, route)
        assert code < 500, (method, route, code)
        # on every answer, errors included: nobody else may frame it, nor guess its type
        assert headers.get("Content-Security-Policy") == "frame-ancestors 'self'", (method, route, code)
        assert headers.get("X-Content-Type-Options") == "nosniff" and headers.get("Referrer-Policy") == "same-origin"
        if code == 405:
            assert headers.get("Allow"), (method, route)
            assert method not in headers["Allow"].split(", ")


def test_the_proxy_passes_encoded_names_to_the_service_as_the_service_reads_them(hub, tokens):
    # what goes through configurable-http-proxy is judged by the service, the same way
    response = requests.get(
        hub.service_url + "alpha%0A/python",
        headers={"Authorization": f"token {tokens['bob']}", "Accept": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400 and "Invalid workspace name" in response.json()["message"]


def test_a_thousand_odd_methods_add_no_metric_label_and_no_long_log_line(send, hub):
    with open(hub.log_path, "rb") as f:
        f.seek(0, 2)
        start = f.tell()
    for i in range(1000):
        odd = f"X{i:04d}" + "Q" * (30_000 if i % 100 == 0 else 200)  # some of 30 KB, all distinct
        code, _, _ = send(odd, "alpha/cobol")
        assert 400 <= code < 500, code
    response = requests.get(
        hub.direct_service_url + "metrics", headers={"Authorization": f"token {ADMIN_TOKEN}"}, timeout=30
    )
    assert response.status_code == 200
    methods = set(re.findall(r'notebooks_service_request_duration_seconds_count\{[^}]*method="([^"]*)"', response.text))
    assert methods <= KNOWN_METHODS | {"other"} and "other" in methods, methods
    assert len(response.content) < 2_000_000  # the page stays the size of what is counted
    with open(hub.log_path, "rb") as f:
        f.seek(start)
        longest = max((len(line) for line in f), default=0)
    assert longest < 4096  # what the access log writes of a method and a path is bounded


# 60,000 bytes, within the body limit, and nested past the JSON parser's depth (a RecursionError)
DEEP = b"[" * 30000 + b"]" * 30000


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "alpha/python"),
        ("POST", "alpha/python/-/restart"),
        ("POST", "alpha/python/-/shares"),
        ("DELETE", "alpha/python/-/shares"),
    ],
)
def test_a_deeply_nested_body_is_a_400_that_says_so(send, method, path):
    code, _, body = send(method, path, body=DEEP, headers={"Content-Type": "application/json"})
    assert (code, json.loads(body)) == (400, {"status": 400, "message": "The request body nests too deeply."})


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "alpha/python"), ("POST", "alpha/python/-/shares"), ("DELETE", "alpha/python/-/shares")],
)
@pytest.mark.parametrize("content_type", ["text/plain", "application/merge-patch+json", None])
def test_a_body_of_another_type_is_a_415_not_an_empty_one(send, method, path, content_type):
    """A JSON body labelled text/plain was read as no body: a DELETE of shares then revoked them all."""
    headers = {"Content-Type": content_type} if content_type else {}
    code, _, body = send(method, path, body=b'{"users": ["alice"]}', headers=headers)
    said = repr(content_type) if content_type else "no Content-Type"
    assert (code, json.loads(body)) == (
        415,
        {
            "status": 415,
            "message": "A request body must be application/json or a form "
            f"(application/x-www-form-urlencoded), not {said}.",
        },
    )


# every route that reads a body, with bodies no client should send: never a 5xx, always the error shape
BODY_ROUTES = [
    ("POST", ""),
    ("POST", "alpha/python"),
    ("POST", "alpha/python/reports/a.ipynb"),
    ("DELETE", "alpha/python"),
    ("POST", "alpha/python/-/restart"),
    ("POST", "alpha/python/-/activity"),
    ("POST", "alpha/python/-/shares"),
    ("DELETE", "alpha/python/-/shares"),
]
ODD_BODIES = {
    "deep": DEEP,
    "deep object": b'{"a":' * 20000 + b"1" + b"}" * 20000,
    "huge string": b'{"users": ["' + b"x" * 60000 + b'"]}',
    "many keys": b"{" + b",".join(b'"k%d": %d' % (i, i) for i in range(6000)) + b"}",
    "null": b"null",
    "a list": b"[]",
    "a string": b'"x"',
    "a huge number": b"1e999999",
    "NaN": b"NaN",
    "cut short": b'{"users": ["bob"',
    "not UTF-8": b'{"users": ["\xff\xfe"]}',
    "a byte-order mark": b'\xef\xbb\xbf{"users": []}',
    "users not a list": b'{"users": {"bob": 1}}',
    "users of numbers": b'{"users": [1, 2]}',
    "a class that is a list": b'{"resource_class": []}',
    "duplicate keys": b'{"workspace": true, "workspace": "yes"}',
}


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
def test_odd_bodies_on_every_body_route_are_clear_4xx(send, method, path):
    wrong = {}
    for name, body in ODD_BODIES.items():
        code, headers, answer = send(method, path, body=body, headers={"Content-Type": "application/json"})
        said = json.loads(answer) if headers.get("Content-Type") == "application/json" and answer else None
        if not (400 <= code < 500 and said and said["status"] == code and 0 < len(said["message"]) < 500):
            wrong[name] = (code, answer[:200])
    assert wrong == {}
