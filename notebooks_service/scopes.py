"""The Hub scopes the service and the reconciler need, once: which, why, and for which settings.

The demo's roles, the chart's NOTES and the docs' lists are checked against these tables
(tests/test_scopes.py). At start-up the service asks the Hub what its own token holds and logs,
once, each scope it lacks and what fails without it (``check_own_scopes``); the gauge
``notebooks_service_hub_scope_missing{scope}`` says it too.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Gauge

log = logging.getLogger(__name__)

SCOPE_MISSING = Gauge(
    "notebooks_service_hub_scope_missing",
    "1 for each Hub scope the service's token lacks for its configuration (the log says what fails)",
    ["scope"],
)


@dataclass(frozen=True)
class Settings:
    """What decides the scopes: the workspace policy and the features turned on."""

    policy: str = "static"  # static, hub-groups, claims (or a class of one's own)
    quotas: bool = False
    kept_groups: bool = False  # Sharing.manage_workspace_groups (not with hub-groups: its groups are the Hub's)
    bearer_jwt: bool = False  # IdentityProvider.accept_bearer_jwt

    @classmethod
    def of(cls, app: Any) -> "Settings":
        from .sharing import Sharing
        from .workspaces import ClaimsWorkspacePolicy, HubGroupsWorkspacePolicy, StaticWorkspacePolicy

        kinds = [
            (HubGroupsWorkspacePolicy, "hub-groups"),
            (ClaimsWorkspacePolicy, "claims"),
            (StaticWorkspacePolicy, "static"),
        ]
        policy = next((name for kind, name in kinds if issubclass(app.workspace_policy_class, kind)), "other")
        return cls(
            policy=policy,
            quotas=bool(app.user_quota) or any(app.workspace_quotas.values()),
            kept_groups=policy != "hub-groups" and Sharing(parent=app, hub=None, policy=None).manage_workspace_groups,
            bearer_jwt=app.identity_provider.accept_bearer_jwt,
        )


@dataclass(frozen=True)
class Need:
    scope: str
    why: str  # what it is for, in a few words (the docs' and the NOTES' comments)
    when: Callable[[Settings], bool] = lambda s: True


#: both roles, with the claims policy: it reads the identity provider's token in users' auth_state
CLAIMS = Need(
    "admin:auth_state", "the claims policy reads the identity provider's token", lambda s: s.policy == "claims"
)

#: the service's role (hub.loadRoles.notebooks-service)
SERVICE = [
    Need("read:users", "the caller's user model, groups and servers"),
    Need("servers", "start and stop users' named servers"),
    Need("users:activity", '"Keep running": record activity, so the idle culler waits'),
    Need("shares", "share a server with members of its workspace"),
    Need("read:groups:name", "share with the whole workspace: its Hub group", lambda s: s.policy == "hub-groups"),
    Need("admin:groups", "share with the whole workspace: a Hub group it keeps", lambda s: s.kept_groups),
    Need("list:users", "quotas: count everyone's running servers", lambda s: s.quotas),
    CLAIMS,
    Need("tokens", "Bearer JWT callers: whether their user holds the access scope", lambda s: s.bearer_jwt),
]

#: the reconciler's role (hub.loadRoles.notebooks-reconciler)
RECONCILER = [
    Need("list:users", "every active server, paged"),
    Need("read:users", "owners' and recipients' models"),
    Need("servers", "stop a leaver's server (not remove it)"),
    Need("shares", "remove shares of and to leavers"),
    CLAIMS,
    Need("admin:groups", "the kept workspace groups lose their leavers", lambda s: s.kept_groups),
]


def needed(needs: list[Need], settings: Settings) -> list[Need]:
    return [n for n in needs if n.when(settings)]


def scopes(needs: list[Need], settings: Settings) -> list[str]:
    """The scopes a role needs for ``settings``, in the table's order."""
    return [n.scope for n in needed(needs, settings)]


def roles(settings: Settings, service: str, reconciler: str, prefix: str) -> list[dict[str, Any]]:
    """``JupyterHub.load_roles`` entries that give the service and the reconciler what ``settings`` need
    (roles add up: a Hub whose configuration differs from the demo's appends these)."""
    return [
        {"name": f"{prefix}-service", "scopes": scopes(SERVICE, settings), "services": [service]},
        {"name": f"{prefix}-reconciler", "scopes": scopes(RECONCILER, settings), "services": [reconciler]},
    ]


def missing(needs: list[Need], settings: Settings, held: list[str]) -> list[Need]:
    """Those of the needed scopes ``held`` (a token's scopes as the Hub expands them) does not hold."""
    held_set = set(held)
    return [n for n in needed(needs, settings) if n.scope not in held_set]


async def check_own_scopes(hub: Any, settings: Settings, *, attempts: int = 30, interval: float = 10) -> list[Need]:
    """Ask the Hub what the service's own token holds (``GET /hub/api/user``) and log each scope it lacks,
    once; tried again while the Hub does not answer (it may start after the service)."""
    for _ in range(attempts):
        try:
            response = await hub.api_request("GET", "/user")
        except Exception as e:  # the Hub is not up yet, or not reachable: later
            log.debug("Could not ask the Hub for the service's scopes yet: %s", e)
        else:
            if response.code == 200 and isinstance(response.body, dict):
                lacking = missing(SERVICE, settings, list(response.body.get("scopes") or []))
                for need in needed(SERVICE, settings):
                    SCOPE_MISSING.labels(need.scope).set(1 if need in lacking else 0)
                for need in lacking:
                    log.warning(
                        "The service's Hub token lacks the scope %r (%s): that fails until its role grants it "
                        "(docs/deploying.rst, 'Registering with a Hub')",
                        need.scope,
                        need.why,
                    )
                if not lacking:
                    log.info("The service's Hub token holds every scope its configuration needs")
                return lacking
            log.warning("The Hub answered %s when asked for the service's own scopes", response.code)
        await asyncio.sleep(interval)
    return []
