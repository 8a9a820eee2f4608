"""What the handlers reach: the service's components and the few settings every request is held to.

``NotebooksService.make_components`` builds one ``Components`` at start-up; the
Tornado application carries it as ``settings["components"]`` and handlers read
it as ``self.components``. Each component owns its own configuration (traits);
what is here is only what handlers must see.
"""

import asyncio
import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

import jinja2

if TYPE_CHECKING:  # types only: kube.py loads kubernetes_asyncio, which stays unloaded while diagnostics are off
    from jupyterhub.services.auth import HubOAuth

    from .diagnostics import NoDiagnostics
    from .hub import HubClient
    from .idp import IdentityProvider
    from .kube import KubeDiagnostics, KubeLogs
    from .logs import FollowSlots, LocalLogs
    from .progress import ProgressFanout
    from .servers import Launcher


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
    launcher: "Launcher"
    hub: "HubClient"
    hub_auth: "HubOAuth"
    identity_provider: "IdentityProvider"
    progress: "ProgressFanout"
    diagnostics: Union["KubeDiagnostics", "NoDiagnostics"]
    #: where servers' output is read (None: NotebooksService.server_logs is off)
    server_logs: Union["KubeLogs", "LocalLogs", None]
    log_follows: "FollowSlots"
    templates: jinja2.Environment

    # -- what every request is held to -----------------------------------------
    prefix: str
    hub_prefix: str
    request_budget: float
    readiness_timeout: float
    allow_origins: frozenset[str]
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    security_headers: dict[str, str]
    metrics_scope: str
    start_on_visit: bool

    # -- the process's lifecycle ------------------------------------------------
    in_flight: RequestsInFlight = field(default_factory=RequestsInFlight)
    #: set when SIGTERM arrives: streams end (clients reconnect elsewhere), answers say Connection: close
    draining: asyncio.Event = field(default_factory=asyncio.Event)
