"""Prometheus metrics of the service (prometheus_client), in a registry of its own.

Its own registry, not the default one: JupyterHub registers the Hub's metrics
in the default registry when ``jupyterhub.metrics`` is imported, and they would
show here as zeros. Served at ``<prefix>/metrics`` (handlers.service.MetricsHandler) and,
if configured, on ``NotebooksService.metrics_port`` for in-cluster scrapers.
"""

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector, ProcessCollector

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

REQUEST_DURATION = Histogram(
    "notebooks_service_request_duration_seconds",
    "Requests to the service, by route, method and status code, and how long they took",
    ["route", "method", "code"],
    registry=REGISTRY,
)
LAUNCHES = Counter(
    "notebooks_service_launches_total",
    "Server starts asked of the Hub, by image and result (started, already_running, failed)",
    ["image", "result"],
    registry=REGISTRY,
)
LAUNCH_FAILURES = Counter(
    "notebooks_service_launch_failures_total",
    "Server starts that failed, by reason (spawn_failed, hub_error, hub_unavailable, busy)",
    ["reason"],
    registry=REGISTRY,
)
TIME_TO_READY = Histogram(
    "notebooks_service_launch_ready_seconds",
    "From a start this process asked for to this process seeing the server ready",
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, float("inf")),
    registry=REGISTRY,
)
HUB_REQUESTS = Histogram(
    "notebooks_service_hub_request_duration_seconds",
    "Hub REST API calls, by method, endpoint and status code ('error': no answer), and how long they took",
    ["method", "endpoint", "code"],
    registry=REGISTRY,
)
PROGRESS_WATCHERS = Gauge(
    "notebooks_service_progress_streams", "Progress streams open to browsers and clients", registry=REGISTRY
)
PROGRESS_UPSTREAMS = Gauge(
    "notebooks_service_progress_upstreams",
    "Progress streams open to the Hub (one per server followed)",
    registry=REGISTRY,
)
KUBERNETES_ERRORS = Counter(
    "notebooks_service_kubernetes_errors_total",
    "Kubernetes API calls of pod diagnostics that failed, by reason (unreachable, forbidden, error)",
    ["reason"],
    registry=REGISTRY,
)

MEMBERSHIP_CHECKS = Counter(
    "notebooks_service_membership_checks_total",
    "Checks of another user's membership of a workspace (share recipients, kept groups), by outcome: "
    "member, left, or unknown (the Hub or identity provider could not answer: nothing was changed)",
    ["outcome"],
    registry=REGISTRY,
)
SHARES_REVOKED = Counter(
    "notebooks_service_shares_revoked_total",
    "Shares the service removed because their recipient is no longer a member of the workspace",
    registry=REGISTRY,
)
SERVERS_STOPPED_FOR_LEAVING = Counter(
    "notebooks_service_servers_stopped_for_leaving_total",
    "Servers the reconciler stopped because their owner is no longer a member of the workspace",
    registry=REGISTRY,
)

# path segments after these are names, not parts of the endpoint: a share's path names its owner, then
# the server (/shares/<owner>/<server>, /users/<name>/shared/<owner>/<server>)
_NAMED_AFTER = {
    "users": ("{name}",),
    "servers": ("{server}",),
    "tokens": ("{token_id}",),
    "groups": ("{group}",),
    "services": ("{service}",),
    "shares": ("{owner}", "{server}"),
    "shared": ("{owner}", "{server}"),
    "room-holds": ("{name}", "{server}"),
}


def hub_endpoint(path: str) -> str:
    """A Hub API path as a label of few values: ``/users/alice/servers/x?y`` -> ``/users/{name}/servers/{server}``."""
    endpoint: list[str] = []
    names: tuple[str, ...] = ()
    for part in path.split("?", 1)[0].split("/"):
        if names:
            endpoint.append(names[0])
            names = names[1:]
        else:
            endpoint.append(part)
            names = _NAMED_AFTER.get(part, ())
    return "/".join(endpoint)


def route_of(handler) -> str:
    """The route a handler serves (its ``routes.Route``'s label), for labels and logs; else "(no route)"."""
    route = getattr(handler, "route", None)
    return route.label if route is not None else "(no route)"


#: the methods counted by name; any other a client sends is counted as "other" (labels stay bounded)
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    """The request's method as a metric label: one of KNOWN_METHODS, else "other"."""
    return method if method in KNOWN_METHODS else "other"


def observe_request(handler) -> None:
    """Count a finished request (tornado's log_function calls this, with the access log)."""
    REQUEST_DURATION.labels(route_of(handler), method_label(handler.request.method), str(handler.get_status())).observe(
        handler.request.request_time()
    )


class LaunchClock:
    """When this process asked for each server's start, to observe its time to ready once seen."""

    def __init__(self, limit: int = 10000):
        self._started: dict[tuple[str, str], float] = {}
        self._limit = limit

    def started(self, user: str, server_name: str) -> None:
        if len(self._started) >= self._limit:  # starts whose readiness nobody here watched
            self._started.clear()
        self._started[(user, server_name)] = time.monotonic()

    def seen_ready(self, user: str, server_name: str) -> None:
        since = self._started.pop((user, server_name), None)
        if since is not None:
            TIME_TO_READY.observe(time.monotonic() - since)


LAUNCH_CLOCK = LaunchClock()
