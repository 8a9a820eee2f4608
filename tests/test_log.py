"""Logs without secrets, and client addresses believed only from trusted proxies."""

import ipaddress
import logging

import pytest
import requests
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from notebooks_service.log import SecretsFilter, client_address

from conftest import wait_for


def record(msg: str, *args) -> logging.LogRecord:
    return logging.LogRecord("tornado.application", logging.WARNING, __file__, 1, msg, args, None)


def test_jupyterhubs_state_mismatch_warning_loses_the_states():
    r = record(
        "oauth state argument %r != cookie %s=%r", "STATE-FROM-URL", "service-notebooks-oauth-state", "STATE-IN-COOKIE"
    )
    assert SecretsFilter().filter(r) is True
    message = r.getMessage()
    assert "STATE-FROM-URL" not in message and "STATE-IN-COOKIE" not in message
    assert "service-notebooks-oauth-state" in message  # which cookie, for the operator


def test_secret_query_values_are_scrubbed_from_any_record():
    r = record("403 GET %s (%s)", "/services/notebooks/oauth_callback?code=C0DE&state=ST4TE&next=/x", "10.0.0.1")
    SecretsFilter().filter(r)
    assert (
        r.getMessage() == "403 GET /services/notebooks/oauth_callback?code=[secret]&state=[secret]&next=/x (10.0.0.1)"
    )


JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MX0.c2lnbmF0dXJlLW5vdC1yZWFs"


def test_parameters_are_scrubbed_by_jupyterhubs_rule():
    r = record("GET %s", "/x?access_token=A1&id_token=I1&api_key=K1&authorization=Z1&refresh_token=R1&next=/y")
    SecretsFilter().filter(r)
    message = r.getMessage()
    assert not any(secret in message for secret in ("A1", "I1", "K1", "Z1", "R1")), message
    assert message.endswith("&next=/y")


def test_jwt_shaped_strings_are_masked_anywhere_in_a_line_and_its_traceback():
    r = record("Hub said: Unable to decode id token: %s: Signature has expired", JWT)
    SecretsFilter().filter(r)
    assert JWT not in r.getMessage() and "[jwt]" in r.getMessage()
    try:
        raise RuntimeError(f"refresh failed for {JWT}")
    except RuntimeError:
        import sys

        failing = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    SecretsFilter().filter(failing)
    assert JWT not in logging.Formatter().format(failing)


def request_from(peer: str, **headers) -> HTTPServerRequest:
    request = HTTPServerRequest(
        start_line=RequestStartLine("GET", "/", "HTTP/1.1"), headers=HTTPHeaders({"Host": "notebooks", **headers})
    )
    request.remote_ip = peer
    return request


PROXIES = [ipaddress.ip_network("10.0.0.0/8")]


def test_forwarded_addresses_from_anyone_else_are_ignored():
    assert client_address(request_from("203.0.113.9", **{"X-Real-Ip": "1.2.3.4"}), PROXIES) == "203.0.113.9"
    assert client_address(request_from("203.0.113.9", **{"X-Forwarded-For": "1.2.3.4"}), PROXIES) == "203.0.113.9"
    assert client_address(request_from("10.1.2.3", **{"X-Forwarded-For": "1.2.3.4"}), []) == "10.1.2.3"


def test_a_trusted_proxy_names_the_client():
    # a client may send its own X-Forwarded-For: only the hops our proxies appended count
    forwarded = {"X-Forwarded-For": "6.6.6.6, 198.51.100.7, 10.0.0.5"}
    assert client_address(request_from("10.1.2.3", **forwarded), PROXIES) == "198.51.100.7"
    assert client_address(request_from("10.1.2.3", **{"X-Real-Ip": "198.51.100.7"}), PROXIES) == "198.51.100.7"


@pytest.mark.hub_version
def test_a_failed_oauth_callback_leaves_no_code_or_state_in_the_log(hub):
    url = hub.service_url + "oauth_callback?code=SECRETCODE0123&state=SECRETSTATE4567"
    response = requests.get(url, cookies={"service-notebooks-oauth-state": "SECRETCOOKIE89"}, allow_redirects=False)
    assert response.status_code in (400, 403)

    def logged():
        with open(hub.log_path, errors="replace") as f:
            text = f.read()
        return text if "oauth_callback?code=[secret]" in text else None

    log = wait_for(logged, timeout=10, message="the callback in the log")
    for secret in ("SECRETCODE0123", "SECRETSTATE4567", "SECRETCOOKIE89"):
        assert secret not in log
