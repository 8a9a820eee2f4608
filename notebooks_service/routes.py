"""The route table, declared once.

``NotebooksService.make_app`` builds Tornado's routes from it, and the JSON API's
OpenAPI document (``api.yml``) is held to it: every route marked ``api`` has
exactly its methods described there, and nothing else is (tests/test_openapi.py).
Paths are written as OpenAPI writes them, under the service's prefix.
"""

import functools
import re
from dataclasses import dataclass

from tornado import web

from .handlers.base import implemented_methods
from .handlers.servers import (
    ServerActivityHandler,
    ServerDetailsHandler,
    ServerHandler,
    ServerListHandler,
    ServerRestartHandler,
    ServerSharesHandler,
    SharedHandler,
    WorkspacesHandler,
)
from .handlers.service import (
    HealthHandler,
    MetricsHandler,
    NotFoundHandler,
    OAuthCallbackHandler,
    OpenAPIHandler,
    OpenMetricsHandler,
    ReadinessHandler,
    UserHandler,
)
from .handlers.streams import ServerLogsHandler, ServerProgressHandler

#: what a path parameter matches; any other matches one path segment
PARAMETER_PATTERNS = {"notebook": ".+", "rest": ".*"}
#: methods the OpenAPI document leaves out: CORS preflights, and HEAD where GET is described
UNDESCRIBED_METHODS = frozenset({"OPTIONS", "HEAD"})
_PARAMETER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Route:
    """One path under the service prefix, the handler that answers it, and the methods it takes."""

    path: str
    handler: type[web.RequestHandler]
    #: the methods this path takes (default: all the handler implements); others are a 405
    only: tuple[str, ...] = ()
    #: part of the JSON API, described in api.yml (False: browser-only, or a catch-all)
    api: bool = True
    #: its name in metrics and logs, if not its path
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or self.path

    @functools.cached_property  # asked on every request (BaseHandler.prepare)
    def methods(self) -> tuple[str, ...]:
        implemented = implemented_methods(self.handler)
        return tuple(m for m in implemented if not self.only or m in self.only or m == "OPTIONS")

    @property
    def described_methods(self) -> set[str]:
        return {m.lower() for m in self.methods if m not in UNDESCRIBED_METHODS}

    def pattern(self, prefix: str) -> str:
        """The Tornado pattern of this path under ``prefix`` (which ends with '/')."""
        parts = _PARAMETER.split(self.path.lstrip("/"))  # literal text and parameter names, in turn
        return re.escape(prefix) + "".join(
            f"(?P<{part}>{PARAMETER_PATTERNS.get(part, '[^/]+')})" if i % 2 else re.escape(part)
            for i, part in enumerate(parts)
        )


ROUTES: tuple[Route, ...] = (
    Route("/", ServerListHandler),
    Route("/health", HealthHandler),
    Route("/ready", ReadinessHandler),
    Route("/user", UserHandler),
    Route("/workspaces", WorkspacesHandler),
    Route("/shared", SharedHandler),
    Route("/metrics", MetricsHandler),
    Route("/api/openapi.json", OpenAPIHandler),
    Route("/oauth_callback", OAuthCallbackHandler, api=False),
    # a server's sub-resources live under '/-/', so that no notebook path can be taken for one
    Route("/{workspace}/{image}/-/progress", ServerProgressHandler),
    Route("/{workspace}/{image}/-/logs", ServerLogsHandler),
    Route("/{workspace}/{image}/-/details", ServerDetailsHandler),
    Route("/{workspace}/{image}/-/restart", ServerRestartHandler),
    Route("/{workspace}/{image}/-/activity", ServerActivityHandler),
    Route("/{workspace}/{image}/-/shares", ServerSharesHandler),
    Route("/{workspace}/{image}/-/{rest}", NotFoundHandler, api=False),
    Route("/{workspace}/{image}", ServerHandler),
    # a DELETE of <server>/<notebook> would stop the server, not delete the notebook
    Route("/{workspace}/{image}/{notebook}", ServerHandler, only=("GET", "POST")),
)


#: NotebooksService.metrics_port's one route, outside the prefix (and the Hub's proxy)
METRICS_PORT_ROUTE = Route("/metrics", OpenMetricsHandler, api=False, name="metrics_port /metrics")


def tornado_routes(prefix: str) -> list[web.URLSpec]:
    """Tornado's routes: the table under ``prefix``, the prefix without its '/', then a 404 for anything else.
    Each handler is given its Route (``initialize(route)``)."""
    routes = [web.url(r.pattern(prefix), r.handler, {"route": r}) for r in ROUTES]
    routes.append(web.url(re.escape(prefix.rstrip("/") or "/"), web.RedirectHandler, {"url": prefix}))
    routes.append(web.url(r".*", NotFoundHandler, {"route": None}))
    return routes


def metrics_port_routes() -> list[web.URLSpec]:
    return [web.url(METRICS_PORT_ROUTE.pattern("/"), OpenMetricsHandler, {"route": METRICS_PORT_ROUTE})]
