"""Quotas: how much a workspace's running servers (and one user's) may hold at once.

``NotebooksService.workspace_quotas`` limits each workspace (``"*"``: every
workspace not named), ``NotebooksService.user_quota`` each user over all their
workspaces: a number of running servers, and CPUs, memory and GPUs summed over
the running servers' resource classes (a class's limit, else its guarantee).
A server counts from the moment its start is admitted until it has stopped.

The service checks a start against what the Hub lists, to answer with a message
a person can act on; the Hub-side guard checks again inside the Hub, which sees
every spawn, counting and admitting under one lock, so that neither two
concurrent starts nor two replicas of the service can both pass. The code has
no dependency on the service process: the guard imports it too.
"""

import asyncio
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import resources
from .errors import InvalidRequest, ServiceError

#: what a quota may limit
QUOTA_KEYS = ("servers", "cpu", "memory", "gpus")
_BYTES = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?)?B?", re.IGNORECASE)
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


class QuotaExceeded(ServiceError):
    """A start that would take a workspace (or a user) over its quota."""

    status_code = 403


def parse_bytes(value: Any) -> int:
    """Bytes from a number or KubeSpawner's notation ("2G", "512M", "1.5Gi": powers of 1024)."""
    if isinstance(value, bool):
        raise ValueError(f"not an amount of memory: {value!r}")
    if isinstance(value, (int, float)):
        return int(value)
    match = _BYTES.fullmatch(str(value).strip())
    if not match:
        raise ValueError(f"not an amount of memory: {str(value)[:40]!r} (e.g. '32G')")
    number, unit = match.groups()
    return int(float(number) * _UNITS[(unit or "")[:1].upper()])


def format_bytes(value: float) -> str:
    if not value:
        return "0"
    for unit in ("T", "G", "M", "K"):
        if value >= _UNITS[unit]:
            return f"{value / _UNITS[unit]:g} {unit}iB"
    return f"{value:g} bytes"


def normalise_quota(name: str, quota: Any) -> dict[str, float]:
    """A configured quota, checked: {"servers": int, "cpu": number, "memory": bytes, "gpus": int}; raise ValueError."""
    if not isinstance(quota, dict):
        raise ValueError(f"the quota of {name!r} must be a dict of limits ({', '.join(QUOTA_KEYS)})")
    unknown = sorted(set(quota) - set(QUOTA_KEYS))
    if unknown:
        raise ValueError(f"the quota of {name!r} has an unknown limit {unknown[0]!r} (use {', '.join(QUOTA_KEYS)})")
    checked: dict[str, float] = {}
    for key, value in quota.items():
        if value is None:
            continue  # no limit
        limit = parse_bytes(value) if key == "memory" else value
        whole = key in ("servers", "gpus")
        if (
            isinstance(limit, bool)
            or not isinstance(limit, (int, float))
            or limit < 0
            or (whole and limit != int(limit))
        ):
            raise ValueError(f"the quota of {name!r}: {key} must be a {'whole ' if whole else ''}number of 0 or more")
        checked[key] = int(limit) if whole else limit
    return checked


@dataclass(frozen=True)
class Usage:
    """What running servers hold: servers, CPUs, bytes of memory, GPUs."""

    servers: int = 0
    cpu: float = 0
    memory: int = 0
    gpus: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(*(getattr(self, k) + getattr(other, k) for k in QUOTA_KEYS))

    def as_dict(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in QUOTA_KEYS}


def class_usage(resource_class: dict[str, Any] | None) -> Usage:
    """What one server of this class holds (no class: a server, and nothing counted)."""
    c = resource_class or {}
    cpu = c.get("cpu_limit", c.get("cpu_guarantee", 0)) or 0
    memory = c.get("mem_limit", c.get("mem_guarantee", 0)) or 0
    return Usage(servers=1, cpu=cpu, memory=parse_bytes(memory), gpus=c.get("gpus", 0) or 0)


@dataclass(frozen=True)
class RunningServer:
    """One active server of this service, as a quota counts it."""

    user: str
    workspace: str
    image: str
    resource_class: str | None

    @property
    def label(self) -> str:
        return f"{self.user}'s {self.workspace}/{self.image}"


#: the holders a refusal names at most ("... and 12 more")
MAX_NAMED = 5


@dataclass(frozen=True)
class Tally:
    """What some running servers hold together, and the labels of the first few (refusals name them):
    all a quota check needs, whatever the number of servers (the Hub sends it: hubquotas.py)."""

    usage: Usage = Usage()
    named: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"usage": self.usage.as_dict(), "named": list(self.named)}

    @classmethod
    def from_json(cls, data: Any) -> "Tally":
        """A tally as the Hub sent it; ValueError (or KeyError, TypeError) if it is not one."""
        usage = data["usage"]
        amounts = [usage[k] for k in QUOTA_KEYS]
        if not all(isinstance(a, (int, float)) and not isinstance(a, bool) and a >= 0 for a in amounts):
            raise ValueError("not a usage")
        return cls(Usage(*amounts), tuple(str(n)[:200] for n in data["named"][:MAX_NAMED]))


def running_from_models(users: Iterable[dict[str, Any]]) -> list[RunningServer]:
    """The active workspace servers in Hub user models (each with ``servers``)."""
    found = []
    for user in users:
        for server in (user.get("servers") or {}).values():
            options = server.get("user_options") or {}
            workspace, image = options.get("workspace"), options.get("image")
            if isinstance(workspace, str) and isinstance(image, str) and not server.get("stopped"):
                found.append(RunningServer(user["name"], workspace, image, options.get("resource_class")))
    return found


_WORDS = {"servers": ("running server", "running servers"), "gpus": ("GPU", "GPUs"), "cpu": ("CPU", "CPUs")}


def _amount(key: str, value: float) -> str:
    if key == "memory":
        return f"{format_bytes(value)} of memory"
    one, many = _WORDS[key]
    return f"{value:g} {one if value == 1 else many}"


def _names(labels: list[str], total: int) -> str:
    """The holders in words: all of them, or the first few and how many more."""
    if total > len(labels):
        return ", ".join(labels) + f" and {total - len(labels)} more"
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


class Quotas:
    """The configured quotas, and the check of one start against what runs."""

    def __init__(
        self,
        workspace_quotas: dict[str, dict[str, float]],
        user_quota: dict[str, float],
        resource_classes: dict[str, dict[str, Any]],
        images: dict[str, dict[str, Any]] | None = None,
    ):
        self.workspace_quotas = workspace_quotas
        self.user_quota = user_quota
        self.resource_classes = resource_classes
        self.images = images or {}

    @property
    def configured(self) -> bool:
        return bool(self.user_quota) or any(self.workspace_quotas.values())

    def applies(self, workspace: str) -> bool:
        """Whether a start in ``workspace`` is limited at all (else nothing need be counted)."""
        return bool(self.user_quota) or bool(self.for_workspace(workspace))

    def for_workspace(self, workspace: str) -> dict[str, float]:
        """The workspace's limits ({} for none)."""
        return self.workspace_quotas.get(workspace, self.workspace_quotas.get("*", {}))

    def placed_class(self, server: RunningServer) -> str | None:
        """The class ``server`` runs with: the one in its user_options (the guard records the one it
        places); for a server started before the guard recorded it, its image's default, as placed."""
        if server.resource_class or server.image not in self.images:
            return server.resource_class
        try:
            chosen = resources.choose(self.images[server.image], self.resource_classes, None)
        except InvalidRequest:
            return None
        return chosen["name"] if chosen else None

    def usage(self, servers: Iterable[RunningServer]) -> Usage:
        total = Usage()
        for server in servers:
            total += class_usage(self.resource_classes.get(self.placed_class(server) or ""))
        return total

    def tally(self, servers: list[RunningServer]) -> Tally:
        return Tally(self.usage(servers), tuple(s.label for s in servers[:MAX_NAMED]))

    def tallies(
        self, running: list[RunningServer], workspaces: list[str], user: str, excluding: str = ""
    ) -> tuple[dict[str, Tally], Tally]:
        """({workspace: tally}, the user's tally) of ``running``, without the user's own server named
        ``excluding`` (a restart counts itself once): what a quota check of a start reads."""
        from .naming import server_name

        counted = [s for s in running if not (s.user == user and server_name(s.workspace, s.image) == excluding)]
        in_workspaces = {w: self.tally([s for s in counted if s.workspace == w]) for w in workspaces}
        return in_workspaces, self.tally([s for s in counted if s.user == user])

    def check(self, user: str, workspace: str, resource_class: str | None, running: list[RunningServer]) -> None:
        """Raise QuotaExceeded if one more server of ``resource_class`` for ``user`` in ``workspace``
        would go over the workspace's or the user's quota (``running``: every other active server)."""
        in_workspace = self.tally([s for s in running if s.workspace == workspace])
        self.check_tallies(workspace, resource_class, in_workspace, self.tally([s for s in running if s.user == user]))

    def check_tallies(self, workspace: str, resource_class: str | None, in_workspace: Tally, mine: Tally) -> None:
        """``check``, from what the workspace's and the user's other servers hold."""
        wanted = class_usage(self.resource_classes.get(resource_class or ""))
        label = (self.resource_classes.get(resource_class or "") or {}).get("display_name") or resource_class
        problem = _over(self.for_workspace(workspace), in_workspace, wanted, label)
        if problem:
            raise QuotaExceeded(f"Workspace {workspace} allows {problem}")
        problem = _over(self.user_quota, mine, wanted, label)
        if problem:
            raise QuotaExceeded(f"You may have {problem}")


def _over(limits: dict[str, float], holders: Tally, wanted: Usage, label: str | None) -> str | None:
    """The first limit the start would pass, in words (after 'allows ...'), or None."""
    used, count = holders.usage, holders.usage.servers
    for key in QUOTA_KEYS:
        limit = limits.get(key)
        if limit is None or getattr(used, key) + getattr(wanted, key) <= limit:
            continue
        names = _names(list(holders.named), count) if count else ""
        if key == "servers":
            runs = f": {names} {'runs' if count == 1 else 'run'}." if count else "."
            return f"{_amount(key, limit)}{runs} Stop one to start another."
        taken = f"{_amount(key, getattr(used, key))} taken ({names})" if count else "none taken"
        asks = (
            f"{label} needs {_amount(key, getattr(wanted, key))}"
            if label
            else f"it needs {_amount(key, getattr(wanted, key))}"
        )
        return f"{_amount(key, limit)} in running servers: {taken}, and {asks}. Stop one, or choose a smaller size."
    return None


# -- inside the Hub (the Hub-side guard) ----------------------------------------------------------

_admission: "asyncio.Lock | None" = None


def _admission_lock() -> "asyncio.Lock":
    global _admission
    if _admission is None:
        _admission = asyncio.Lock()  # one per Hub process: every spawn of every user is admitted under it
    return _admission


#: rooms held for restarts: (user, server name) -> (what it holds, until when: monotonic)
_held: dict[tuple[str, str], tuple[RunningServer, float]] = {}
#: how long a restart's room is held for its new start at most
HOLD_SECONDS = 120.0


def hold_room(held: RunningServer, server_name: str, seconds: float = HOLD_SECONDS) -> None:
    """Count ``held`` (a server being restarted) as running until its next admission, or ``seconds``:
    so that no other start takes its room between its stop and its start."""
    _held[(held.user, server_name)] = (held, time.monotonic() + seconds)


def hub_running_servers(spawner: Any) -> list[RunningServer]:
    """Every active workspace server the Hub holds but ``spawner``: running, stopping, or starting
    once admitted (a start waiting for admission is not counted yet), and the rooms held for
    restarts (but ``spawner``'s own)."""
    from jupyterhub.app import JupyterHub

    if not JupyterHub.initialized():
        raise QuotaExceeded("Quotas are configured, but the Hub's servers cannot be counted here.", 503)
    found, active = [], set()
    for user in list(JupyterHub.instance().users.values()):
        for other in list(user.spawners.values()):
            if other is spawner or not other.active:
                continue
            if other.pending == "spawn" and not getattr(other, "_quota_admitted", False):
                continue
            options = other.user_options or {}
            workspace, image = options.get("workspace"), options.get("image")
            if isinstance(workspace, str) and isinstance(image, str):
                found.append(RunningServer(user.name, workspace, image, options.get("resource_class")))
                active.add((user.name, other.name))
    now = time.monotonic()
    for key, (held, until) in list(_held.items()):
        if until <= now:
            del _held[key]
        elif key not in active and (spawner is None or key != (spawner.user.name, spawner.name)):
            found.append(held)
    return found


async def admit_in_hub(spawner: Any, quotas: Quotas, workspace: str, resource_class: str | None) -> None:
    """Admit this spawn under the workspace's and the user's quotas, or raise QuotaExceeded.

    Counting and admitting happen under one lock, with nothing awaited between them, so that
    of two concurrent starts against a quota of one, exactly one is admitted. The mark is
    computed afresh on every spawn: JupyterHub keeps the Spawner of a failed start.
    """
    spawner._quota_admitted = False
    if not quotas.applies(workspace):
        _held.pop((spawner.user.name, spawner.name), None)
        return  # counted by others' admissions all the same: it is active, and not pending unadmitted
    async with _admission_lock():
        try:
            quotas.check(spawner.user.name, workspace, resource_class, hub_running_servers(spawner))
            spawner._quota_admitted = True
        finally:
            _held.pop((spawner.user.name, spawner.name), None)  # a restart's room: taken (or given up)
