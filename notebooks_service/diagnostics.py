"""Pod diagnostics while Kubernetes is off: a stand-in with ``kube.KubeDiagnostics``' methods.

Callers ask the diagnostics they were given and never check whether Kubernetes
is on; this one answers with the Hub's view only, and imports nothing heavy.
"""

from collections.abc import AsyncIterator
from typing import Any

KUBERNETES_OFF = {
    "kubernetes": "off",
    "message": "Kubernetes diagnostics are off: this is the Hub's view only.",
    "details": {},
}


class NoDiagnostics:
    """What ``KubeDiagnostics`` says, when there is no Kubernetes to ask."""

    enabled = False  # (pages leave out what only a cluster knows, such as image references)

    async def status(self, workspace: str, user: str, server_name: str) -> dict[str, Any]:
        return dict(KUBERNETES_OFF)

    async def past_events(self, workspace: str, user: str, server_name: str) -> list[dict[str, Any]]:
        return []

    async def watch_events(self, workspace: str, user: str, server_name: str) -> AsyncIterator[dict]:
        return
        yield  # an async generator that ends at once

    async def close(self) -> None:
        pass
