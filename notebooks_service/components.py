"""What the handlers reach: the service's components and the few settings every request is held to.

``build_components`` makes one ``Components`` from the application's
configuration at start-up; the Tornado application carries it as
``settings["components"]`` and handlers read it as ``self.components``. Each
component owns its own configuration (traits); what is here is only what
handlers must see.
"""

import asyncio
import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

from .diagnostics import NoDiagnostics
from .hub import HubClient
from .logs import FollowSlots, LocalLogs
from .pages import Pages
from .placement import WorkspacePlacement
from .progress import ProgressFanout
from .servers import Launcher
from .sharing import Sharing

if TYPE_CHECKING:  # types only: kube.py loads kubernetes_asyncio, which stays unloaded while diagnostics are off
    from jupyterhub.services.auth import HubOAuth

    from .app import NotebooksService
    from .idp import IdentityProvider
    from .kube import KubeDiagnostics, KubeLogs


class RequestsInFlight:
    """The requests being served now, so that a shutdown can wait for them."""

    def __init__(self):
        self._handlers: set[Any] = set()
        self._empty = asyncio.Event()
        self._empty.set()

    def __len__(self) -> int:
        return len(self._handlers)

    def add(self, handler: Any) -> None:
        self._handlers.add(handler)
        self._empty.clear()

    def discard(self, handler: Any) -> None:
        self._handlers.discard(handler)
        if not self._handlers:
            self._empty.set()

    async def wait_empty(self, timeout: float) -> bool:
        """True once no request is in flight; False if some still are after ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._empty.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False


@dataclass(frozen=True)
class Components:
    """The service's parts, as handlers see them."""

    # -- components -----------------------------------------------------------
    launcher: Launcher
    hub: HubClient
    hub_auth: "HubOAuth"
    identity_provider: "IdentityProvider"
    progress: ProgressFanout
    diagnostics: Union["KubeDiagnostics", NoDiagnostics]
    #: where servers' output is read (None: NotebooksService.server_logs is off)
    server_logs: Union["KubeLogs", LocalLogs, None]
    log_follows: FollowSlots
    sharing: Sharing
    pages: Pages

    # -- what every request is held to -----------------------------------------
    prefix: str
    hub_prefix: str
    request_budget: float
    readiness_timeout: float
    #: seconds of silence before a stream sends a keepalive comment
    stream_keepalive: float
    allow_origins: frozenset[str]
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    security_headers: dict[str, str]
    metrics_scope: str
    start_on_visit: bool
    #: seconds before the idle culler's stop within which pages warn and offer "Keep running"
    idle_warning: float
    #: the longest a leaver's server runs on (the reconciler's interval and grace): pages say it
    leaver_stops_within: float

    # -- the process's lifecycle ------------------------------------------------
    in_flight: RequestsInFlight = field(default_factory=RequestsInFlight)
    #: set when SIGTERM arrives: streams end (clients reconnect elsewhere), answers say Connection: close
    draining: asyncio.Event = field(default_factory=asyncio.Event)


def make_diagnostics(app: "NotebooksService") -> Union["KubeDiagnostics", NoDiagnostics]:
    """KubeDiagnostics, or its stand-in when diagnostics are off (then kubernetes_asyncio is never imported)."""
    if app.kubernetes == "off":
        return NoDiagnostics()
    from .kube import KubeDiagnostics

    return KubeDiagnostics(
        app.kubernetes,
        kubeconfig=app.kubeconfig or None,
        namespace_template=app.namespace_template,
        request_timeout=app.kube_request_timeout,
    )


def make_server_logs(app: "NotebooksService", kube) -> Union["KubeLogs", LocalLogs, None]:
    """Where servers' output is read from, or None."""
    if app.server_logs == "local":
        if not app.local_logs_dir:
            raise ValueError("NotebooksService.server_logs = 'local' needs NotebooksService.local_logs_dir")
        return LocalLogs(app.local_logs_dir, max_bytes=app.max_log_bytes, max_line_bytes=app.max_log_line_bytes)
    if app.server_logs == "kubernetes":
        if app.kubernetes == "off":
            raise ValueError("NotebooksService.server_logs = 'kubernetes' needs NotebooksService.kubernetes")
        from .kube import KubeLogs

        return KubeLogs(kube, max_bytes=app.max_log_bytes, max_line_bytes=app.max_log_line_bytes)
    return None


def build_components(app: "NotebooksService") -> Components:
    """The service's parts, each configured from its own traits (and this application's)."""
    from .reconciler import leaver_stop_bound  # it imports the application, which imports this

    hub_client = HubClient(parent=app, api_url=app.hub_api_url, api_token=app.hub_api_token)
    diagnostics = make_diagnostics(app)
    launcher = Launcher(
        parent=app,
        hub=hub_client,
        policy=app.make_policy(),
        catalogue=app.images,
        resource_classes=app.resource_classes,
        prefix=app.service_prefix,
        diagnostics=diagnostics,
        quotas=app.make_quotas(),
        idle_timeout=app.idle_timeout,
        placement=WorkspacePlacement(parent=app),
    )
    return Components(
        launcher=launcher,
        hub=hub_client,
        hub_auth=app.make_hub_auth(),
        identity_provider=app.identity_provider,
        progress=ProgressFanout(hub_client, diagnostics, parent=app),
        diagnostics=diagnostics,
        server_logs=make_server_logs(app, diagnostics),
        log_follows=FollowSlots(app.max_log_follows, app.max_log_follows_per_user),
        sharing=Sharing(parent=app, hub=hub_client, policy=launcher.policy),
        pages=Pages(app.template_paths),
        prefix=app.service_prefix,
        hub_prefix=app.hub_prefix,
        request_budget=app.request_budget,
        readiness_timeout=app.readiness_timeout,
        stream_keepalive=app.stream_keepalive,
        allow_origins=frozenset(app.allow_origins),
        trusted_proxies=tuple(ipaddress.ip_network(v, strict=False) for v in app.trusted_proxies),
        security_headers=app.security_headers,
        metrics_scope=app.metrics_scope,
        start_on_visit=app.start_on_visit,
        idle_warning=app.idle_warning,
        leaver_stops_within=leaver_stop_bound(app.config),
    )
