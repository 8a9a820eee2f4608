"""Logging without secrets: tokens, OAuth codes and state never reach a log line.

Text by default; one JSON object per line with ``NotebooksService.log_json``
(python-json-logger, which JupyterHub's event logging already brings).
"""

import ipaddress
import logging
import re

from tornado import web
from tornado.log import access_log

from .metrics import method_label, route_of
from .naming import display_name

# JupyterHub's rule (jupyterhub.log.SCRUB_PARAM_KEYS): a parameter whose name contains any of these
_SECRET_PARAM = re.compile(r"([?&][^=&\s#]*(?:token|auth|key|code|state|xsrf)[^=&\s#]*=)[^&\s#]*", re.IGNORECASE)
# a JWT anywhere: every JOSE header is base64url of '{"...', so it starts with 'eyJ'
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")


def scrub_url(url: str) -> str:
    """The URL with the values of secret query parameters replaced."""
    return _SECRET_PARAM.sub(r"\1[secret]", url or "")


def redact(text: str) -> str:
    """Text from another system (a Hub message, an exception) with anything JWT-shaped masked."""
    return _JWT.sub("[jwt]", text or "")


def scrub(text: str) -> str:
    """A log line without secret query values and without JWTs."""
    return redact(scrub_url(text))


class SecretsFilter(logging.Filter):
    """Scrubs every record on a handler, whoever logged it (tornado, JupyterHub's HubOAuth, us)."""

    # JupyterHub's OAuth callback logs both state values when they differ; ours carries the PKCE verifier
    _STATE_MISMATCH = "oauth state argument %r != cookie %s=%r"

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == self._STATE_MISMATCH:
            record.msg, record.args = "OAuth state argument does not match the state cookie %s", (record.args[1],)
            return True
        message = record.getMessage()
        scrubbed = scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:  # a traceback quotes messages too
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        return True


def client_address(request, trusted_proxies: list) -> str:
    """The client's address: X-Forwarded-For/X-Real-Ip only when the peer is a trusted proxy."""
    peer = request.remote_ip
    if not trusted_proxies or not _in_any(peer, trusted_proxies):
        return peer
    forwarded = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",") if a.strip()]
    # walk back from the nearest hop: the first address not of a trusted proxy is the client
    for address in reversed(forwarded):
        if not _in_any(address, trusted_proxies):
            return address
    return request.headers.get("X-Real-Ip", "").strip() or peer


def _in_any(address: str, networks: list) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


#: what an access log line keeps of a method and a URI a client chose (they may be any size)
MAX_LOGGED_METHOD, MAX_LOGGED_URI = 16, 512


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}...[{len(text) - limit} more]"


def request_summary(handler: web.RequestHandler) -> str:
    request = handler.request
    method = _bounded(request.method, MAX_LOGGED_METHOD)
    return f"{method} {_bounded(scrub_url(request.uri), MAX_LOGGED_URI)} ({request.remote_ip})"


def log_request(handler: web.RequestHandler) -> None:
    """Tornado's access log line, scrubbed; 4xx as warnings, 5xx as errors. JSON logs get its fields."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    latency = 1000 * handler.request.request_time()
    caller = getattr(handler, "_current_user", None)
    kwargs = getattr(handler, "path_kwargs", None) or {}
    fields = {
        "route": route_of(handler),
        "method": method_label(handler.request.method),
        "status": status,
        "latency_ms": round(latency, 1),
        "user": getattr(caller, "name", None),
        "server": display_name(kwargs["workspace"], kwargs["image"])[:200] if "workspace" in kwargs else None,
    }
    access_log.log(level, "%d %s %.1fms", status, request_summary(handler), latency, extra=fields)


def json_log_formatter() -> logging.Formatter:
    """One JSON object per line: time, level, logger, message, and any fields a record carries
    (NotebooksService.log_json). python-json-logger is loaded only where JSON logs are on."""
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        "%(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",  # ISO 8601, UTC
    )
