"""Logging without secrets: tokens, OAuth codes and state never reach a log line."""

import logging
import re

from tornado import web
from tornado.log import access_log

_SECRET_PARAM = re.compile(r"([?&](?:token|code|state|_xsrf)=)[^&]*", re.IGNORECASE)


def scrub_url(url: str) -> str:
    """The URL with the values of secret query parameters replaced."""
    return _SECRET_PARAM.sub(r"\1[secret]", url or "")


def request_summary(handler: web.RequestHandler) -> str:
    request = handler.request
    return f"{request.method} {scrub_url(request.uri)} ({request.remote_ip})"


def log_request(handler: web.RequestHandler) -> None:
    """Tornado's access log line, scrubbed; 4xx as warnings, 5xx as errors."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    access_log.log(level, "%d %s %.1fms", status, request_summary(handler), 1000 * handler.request.request_time())
