"""A start (or a restart) under the quotas, as the service admits it.

The Hub-side guard is the authority (quotas.admit_in_hub: every spawn, counted inside the
Hub under one lock). The service counts first, to answer with a message a person can act
on: this replica's starts under one quota go one at a time (a lock per workspace and per
user, waited for within the request's budget), each against the Hub's tally of what runs
(hubusers.QuotaUsage); and a restart holds its room in the Hub from its stop to its start,
so that nobody's start takes it in between.
"""

import asyncio
import contextlib
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from .deadline import acquire_within, time_left
from .errors import ServiceError, ServiceUnavailable, SpawnFailed
from .hubusers import QuotaUsage
from .quotas import Quotas

Start = Callable[[Any, dict[str, Any]], Awaitable[dict[str, Any]]]


class Admission:
    """The quota check of this service's starts and restarts, and what the quotas hold now (``usage``)."""

    def __init__(self, hub: Any, quotas: Quotas):
        self.quotas = quotas
        self.usage = QuotaUsage(hub, quotas)
        self._locks: weakref.WeakValueDictionary = weakref.WeakValueDictionary()

    async def start(self, request: Any, options: dict[str, Any], start: Start) -> dict[str, Any]:
        """``start(request, options)`` once the quotas that apply (if any) have room for it."""
        if not self.quotas.applies(request.workspace):
            return await start(request, options)
        async with self._locked(request):
            await self.check(request, options, fresh=True)
            try:
                return await start(request, options)
            except SpawnFailed:
                # another replica's start may have taken the room a moment before, and the Hub-side
                # guard refused this one: then say so as a refusal (403), not as a broken start
                await self.check(request, options, fresh=True)
                raise

    async def restart(
        self, request: Any, options: dict[str, Any], stop: Callable[[Any], Awaitable[Any]], start: Start
    ) -> dict[str, Any]:
        """``stop(request)`` then ``start``, the room kept in between; refused before the stop if the
        class it starts with does not fit."""
        async with self._locked(request):
            await self.check(request, options, fresh=True)
            if self.quotas.applies(request.workspace):
                await self.usage.hold(request.user["name"], request.name, options.get("resource_class"))
            request = await stop(request)
            try:
                return await start(request, options)
            except ServiceError as e:
                raise ServiceError(
                    f"Your server was stopped to restart it, but did not start again: {e.message}", e.status_code
                ) from None

    async def check(self, request: Any, options: dict[str, Any], *, fresh: bool = False) -> None:
        """Refuse (403) a start that would pass the workspace's or the user's quota, saying what runs."""
        if not self.quotas.applies(request.workspace):
            return
        # the others': this server itself (restarted) is left out
        in_workspace, mine = await self.usage.get(
            [request.workspace], request.user["name"], excluding=request.name, fresh=fresh
        )
        resource_class = options.get("resource_class")
        self.quotas.check_tallies(request.workspace, resource_class, in_workspace[request.workspace], mine)

    @contextlib.asynccontextmanager
    async def _locked(self, request: Any):
        """The locks of the quotas a start counts against: its workspace's, and its user's."""
        keys = []
        if self.quotas.for_workspace(request.workspace):
            keys.append(("workspace", request.workspace))
        if self.quotas.user_quota:
            keys.append(("user", request.user["name"]))
        async with contextlib.AsyncExitStack() as held:
            for kind, name in sorted(keys):  # one order for everyone: no two starts wait on each other
                lock = self._locks.get((kind, name))
                if lock is None:
                    lock = self._locks[(kind, name)] = asyncio.Lock()
                if not await acquire_within(lock, time_left()):  # within the request's budget
                    where = f"workspace {name}" if kind == "workspace" else "your servers"
                    raise ServiceUnavailable(
                        f"Other starts in {where} are being counted against the quota; try again in a moment.",
                        retry_after=5,
                    )
                held.callback(lock.release)
            yield
