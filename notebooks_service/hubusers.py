"""Users as the Hub knows them: their models (shared by concurrent readers, reused briefly),
and whether they hold a scope.

Polling pages and clients would otherwise cost one Hub call each. ``UserModels``
gives every concurrent reader of one user the same read, and reuses its answer
for ``HubClient.user_cache_seconds``, except while a server of the user starts
or stops (its model changes by itself: pollers see 'ready' as soon as the Hub
does). This service's own starts and stops ``forget`` a user at once.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlencode

from .deadline import out_of_time, time_left
from .errors import HubError, NotFound
from .hubpages import every_item
from .hubstream import retrieve
from .quotas import RunningServer, Tally, running_from_models

if TYPE_CHECKING:
    from .hub import HubClient

log = logging.getLogger(__name__)

#: users whose models are kept at most (expired ones are dropped past it)
MAX_CACHED = 1024
#: (user, scope) answers kept at most
MAX_SCOPE_ANSWERS = 4096


@dataclass
class _Cached:
    model: dict[str, Any]
    expires: float


class UserModels:
    """The cache and the shared reads; ``read(name)`` asks the Hub, ``seconds()`` says how long to keep."""

    def __init__(self, read: Callable[[str], Awaitable[dict[str, Any]]], seconds: Callable[[], float]):
        self._read_from_hub = read
        self._seconds = seconds
        self._cache: dict[str, _Cached] = {}
        self._reads: dict[str, asyncio.Future] = {}

    async def get(self, name: str, *, fresh: bool = False) -> dict[str, Any]:
        cached = self._cache.get(name)
        if fresh:
            self.forget(name)
        elif cached is not None and cached.expires > time.monotonic():
            return cached.model
        read = self._reads.get(name)
        if read is None:
            read = self._reads[name] = asyncio.ensure_future(self._read(name))
            read.add_done_callback(retrieve)
        # a caller that runs out of time leaves the shared read to the others
        try:
            return await asyncio.wait_for(asyncio.shield(read), time_left())
        except asyncio.TimeoutError:
            raise out_of_time() from None

    def forget(self, name: str) -> None:
        """Drop what is kept of ``name``; a read in flight still answers its callers, not the cache."""
        self._cache.pop(name, None)
        self._reads.pop(name, None)

    async def _read(self, name: str) -> dict[str, Any]:
        me = asyncio.current_task()
        try:
            model = await self._read_from_hub(name)
        finally:
            # forget() since this read began unregisters it: its answer may be stale
            current = self._reads.get(name) is me
            if current:
                del self._reads[name]
        seconds = self._seconds()
        if current and seconds > 0 and not in_transition(model):
            self._prune()
            self._cache[name] = _Cached(model, time.monotonic() + seconds)
        return model

    def _prune(self) -> None:
        if len(self._cache) >= MAX_CACHED:
            now = time.monotonic()
            for name in [n for n, c in self._cache.items() if c.expires <= now]:
                del self._cache[name]


def in_transition(user_model: dict[str, Any]) -> bool:
    """True while one of the user's servers starts or stops: its model changes by itself any moment."""
    return any(server.get("pending") for server in (user_model.get("servers") or {}).values())


class ScopeChecks:
    """Whether a user holds a scope (identity-provider JWT callers need the service's access scope).

    JupyterHub has no API for a user's effective scopes, but it refuses to give a
    token a scope its owner lacks. So this asks for a token of the user with
    exactly that scope (which needs this service's role to have the scope
    ``tokens``), revokes it at once, and keeps the answer for
    ``HubClient.access_check_seconds``.
    """

    def __init__(self, hub: "HubClient"):
        self.hub = hub
        self._answers: dict[tuple[str, str], tuple[bool, float]] = {}

    async def holds(self, name: str, scope: str) -> bool:
        key = (name, scope)
        known = self._answers.get(key)
        if known is not None and known[1] > time.monotonic():
            return known[0]
        tokens = f"/users/{quote(name, safe='')}/tokens"
        response = await self.hub.api_request(
            "POST",
            tokens,
            {"scopes": [scope], "expires_in": 60, "note": "notebooks-service: access check, revoked at once"},
        )
        if response.code == 201:
            held = True
            revoked = await self.hub.api_request("DELETE", f"{tokens}/{response.body['id']}")
            if revoked.code not in (204, 404):  # it expires in a minute anyway
                log.warning("Could not revoke the access-check token of %s: %s", name, revoked.code)
        elif response.code == 400 and "Not assigning requested scopes" in response.message:
            held = False
        elif response.code == 404:
            raise NotFound(f"No such Hub user: {name!r}")
        elif response.code == 403:
            log.error(
                "Cannot check %s's access to this service: its Hub role lacks the scope 'tokens', "
                "which identity-provider JWT callers need (see docs/configuration.rst, 'Claims policy')",
                name,
            )
            raise HubError(
                "The notebooks service cannot check your access with the Hub; ask an operator to check the service's role."
            )
        else:
            raise self.hub.unexpected_answer("an access check", response)
        if len(self._answers) >= MAX_SCOPE_ANSWERS:
            self._answers.clear()
        self._answers[key] = (held, time.monotonic() + self.hub.access_check_seconds)
        return held


class ActiveServers:
    """Every active workspace server on the Hub, as quotas count them: one listing of the users
    with an active server (the service's role needs ``list:users``), paged, shared by concurrent
    readers and kept for ``HubClient.usage_cache_seconds``."""

    def __init__(self, hub: "HubClient"):
        self.hub = hub
        self._listing = UserModels(self._read, lambda: hub.usage_cache_seconds)  # one entry: ""

    async def get(self, *, fresh: bool = False) -> list[RunningServer]:
        return (await self._listing.get("", fresh=fresh))["running"]

    async def with_models(self, *, fresh: bool = False) -> tuple[list[RunningServer], dict[str, dict[str, Any]]]:
        """The active servers, and their owners' models as the listing had them (groups, auth_state)."""
        listing = await self._listing.get("", fresh=fresh)
        return listing["running"], listing["users"]

    def forget(self) -> None:
        self._listing.forget("")

    async def _read(self, _: str) -> dict[str, Any]:
        users = await every_item(self.hub, "/users?state=active", "a list of active users")
        return {"running": running_from_models(users), "users": {u["name"]: u for u in users}}


class QuotaUsage:
    """What a quota check counts: a workspace's and a user's tallies, summed by the Hub-side guard
    (hubquotas.py), one small answer whatever the number of users; shared by concurrent readers,
    kept for ``HubClient.usage_cache_seconds`` until this service starts or stops a server. Where
    the Hub has no such endpoint (the guard is not set up there), counted from the active users."""

    def __init__(self, hub: "HubClient", quotas: Any):
        self.hub, self.quotas = hub, quotas
        self._answers = UserModels(self._read, lambda: hub.usage_cache_seconds)
        self._changes = -1  # the hub's count of this service's starts and stops when _answers began
        self._asks_the_hub = True  # until it answers 404

    async def get(
        self, workspaces: list[str], user: str, excluding: str = "", *, fresh: bool = False
    ) -> tuple[dict[str, "Tally"], "Tally"]:
        """({workspace: tally}, the user's tally), leaving out the user's own server ``excluding``."""
        if self._changes != self.hub.changes:  # a start or a stop since: nothing kept is current
            self._answers, self._changes = (
                UserModels(self._read, lambda: self.hub.usage_cache_seconds),
                self.hub.changes,
            )
        query = urlencode([("workspace", w) for w in sorted(set(workspaces))] + [("user", user), ("server", excluding)])
        answer = await self._answers.get(query, fresh=fresh)
        return answer["workspaces"], answer["user"]

    async def hold(self, user: str, server: str, resource_class: str | None) -> bool:
        """Ask the Hub-side guard to count ``user``'s ``server`` (being restarted, at ``resource_class``)
        until it starts again, so that no other start takes its room; False where it cannot."""
        path = f"/notebooks/room-holds/{quote(user, safe='')}/{quote(server, safe='')}"
        response = await self.hub.api_request("POST", path, {"resource_class": resource_class})
        if response.code == 204:
            return True
        if response.code == 404:  # no such endpoint here (see _read), or the server is gone already
            return False
        raise self.hub.unexpected_answer("holding a restart's room", response)

    async def _read(self, query: str) -> dict[str, Any]:
        asked = parse_qs(query, keep_blank_values=True)
        workspaces, user, excluding = asked.get("workspace", []), asked["user"][0], asked["server"][0]
        if self._asks_the_hub:
            response = await self.hub.api_request("GET", f"/notebooks/quota-usage?{query}")
            if response.code == 200:
                try:
                    body = response.body
                    return {
                        "workspaces": {w: Tally.from_json(body["workspaces"][w]) for w in workspaces},
                        "user": Tally.from_json(body["user"]),
                    }
                except (KeyError, TypeError, ValueError):
                    raise HubError("The Hub's count of running servers could not be read.") from None
            if response.code != 404:
                raise self.hub.unexpected_answer("a count of running servers", response)
            log.warning(
                "The Hub has no quota-usage endpoint (the workspace guard is not set up there?): "
                "quotas are counted from the list of every active user, which grows with them"
            )
            self._asks_the_hub = False
        in_workspaces, mine = self.quotas.tallies(await self.hub.running_servers(), workspaces, user, excluding)
        return {"workspaces": in_workspaces, "user": mine}
