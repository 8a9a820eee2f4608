"""Thin Tornado handlers: parse, call the launcher (or another component), render.

- ``base``: authentication, CORS, negotiation, errors, security headers, event streams;
- ``servers``: the list of the caller's servers, and one server (show, start, stop);
- ``streams``: a server's progress and its output, as server-sent events;
- ``service``: the service's own endpoints (user, probes, metrics, OpenAPI, login callback).
"""

from .base import BaseHandler
from .servers import ServerHandler, ServerListHandler
from .service import (
    HealthHandler,
    MetricsHandler,
    NotFoundHandler,
    OAuthCallbackHandler,
    OpenAPIHandler,
    OpenMetricsHandler,
    ReadinessHandler,
    UserHandler,
)
from .streams import ServerLogsHandler, ServerProgressHandler

__all__ = [
    "BaseHandler",
    "HealthHandler",
    "MetricsHandler",
    "NotFoundHandler",
    "OAuthCallbackHandler",
    "OpenAPIHandler",
    "OpenMetricsHandler",
    "ReadinessHandler",
    "ServerHandler",
    "ServerListHandler",
    "ServerLogsHandler",
    "ServerProgressHandler",
    "UserHandler",
]
