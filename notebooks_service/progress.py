"""One upstream progress stream per server, fanned out to every watcher.

However many browsers follow one server's start, the service holds a single
Hub progress stream (and a single Kubernetes event watch) for it. A watcher
that joins late first gets the events so far. When the last watcher leaves,
the upstream closes at once. Watchers are capped per user and in total, so a
crowd gets a clear 429/503 instead of starving everyone else.
"""

import asyncio
import contextvars
import logging
from collections import Counter
from typing import Any

from traitlets import Float, Integer
from traitlets.config import LoggingConfigurable

from .diagnostics import NoDiagnostics
from .errors import ServiceError, ServiceUnavailable, TooManyRequests
from .metrics import LAUNCH_CLOCK, PROGRESS_UPSTREAMS, PROGRESS_WATCHERS

log = logging.getLogger(__name__)

#: what Watcher.next() returns when nothing happened for a while (time for a keepalive)
QUIET = object()
_END = object()
# events kept for late joiners; a start has a few dozen at most
_HISTORY_LIMIT = 200


class Watcher:
    """One client following one server's start: the events it has yet to send.

    A list and, while its reader waits, one future: a crowd of watchers is the
    service's largest crowd of objects, and an ``asyncio.Queue`` (four deques,
    an Event) plus a task per wait cost about 4 KB more per watcher.
    """

    __slots__ = ("upstream", "user", "closed", "_pending", "_wakeup")

    def __init__(self, upstream: "Upstream", user: str):
        self.upstream = upstream
        self.user = user
        self.closed = False
        self._pending: list[Any] = []
        self._wakeup: asyncio.Future | None = None

    def push(self, event: Any) -> None:
        if not self.closed:
            self._append(event)

    def _append(self, event: Any) -> None:
        self._pending.append(event)
        if self._wakeup is not None:
            _wake(self._wakeup)

    async def next(self, timeout: float) -> dict[str, Any] | object | None:
        """The next event; QUIET after ``timeout`` seconds of silence; None once the stream has ended."""
        if not self._pending:
            loop = asyncio.get_running_loop()
            self._wakeup = wakeup = loop.create_future()
            quiet = loop.call_later(timeout, _wake, wakeup)
            try:
                await wakeup
            finally:
                quiet.cancel()
                self._wakeup = None
            if not self._pending:
                return QUIET
        event = self._pending.pop(0)
        return None if event is _END else event

    def close(self) -> None:
        """Stop watching (idempotent): the upstream closes when its last watcher leaves."""
        if not self.closed:
            self.closed = True
            self._append(_END)  # wakes a reader still waiting in next()
            self.upstream.detach(self)


def _wake(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


class Upstream:
    """The one upstream of a server: the Hub's progress events merged with its pod's."""

    def __init__(self, fanout: "ProgressFanout", key: tuple[str, str], workspace: str):
        self.fanout = fanout
        self.key = key
        self.workspace = workspace
        self.events: list[dict[str, Any]] = []
        self.watchers: set[Watcher] = set()
        # a context of its own: it outlives the request that opened it, and that request's time budget
        self.task = contextvars.Context().run(asyncio.ensure_future, self._run())
        self.task.add_done_callback(self._ended)

    def attach(self, watcher: Watcher) -> None:
        for event in self.events:  # a late joiner starts with what the others saw
            watcher.push(event)
        self.watchers.add(watcher)

    def detach(self, watcher: Watcher) -> None:
        self.watchers.discard(watcher)
        self.fanout._release(watcher)
        if not self.watchers:
            self.task.cancel()  # closes the Hub stream and the pod watch now

    def _publish(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        del self.events[:-_HISTORY_LIMIT]
        for watcher in list(self.watchers):
            watcher.push(event)

    async def _run(self) -> None:
        """Forward the Hub's events and the pod's, in arrival order, until the Hub's stream ends."""
        user, name = self.key
        queue: asyncio.Queue = asyncio.Queue()

        async def pump(source: str, events) -> None:
            try:
                async for event in events:
                    await queue.put((source, event))
            except ServiceError as e:
                await queue.put(("hub", {"progress": 100, "failed": True, "message": e.message}))
            finally:
                if source == "hub":
                    await queue.put(("hub", None))  # the Hub's stream decides when we are done

        pumps = [
            asyncio.ensure_future(pump("hub", self.fanout.hub.progress_events(user, name))),
            # the pod's events; none while Kubernetes is off (diagnostics.NoDiagnostics)
            asyncio.ensure_future(pump("kubernetes", self.fanout.diagnostics.watch_events(self.workspace, user, name))),
        ]
        progress = 0
        try:
            while True:
                source, event = await queue.get()
                if event is None:
                    break
                if source == "hub":
                    progress = event.get("progress", progress)
                    if event.get("ready"):
                        event = await self._confirmed_ready(event)
                    self._publish({**event, "source": "hub"})
                else:
                    message = f"{event['reason']}: {event['message']}"
                    self._publish({"progress": progress, "message": message, "source": "kubernetes", "event": event})
        finally:
            for task in pumps:
                task.cancel()
            # an async generator is closed (its connection too) only once its task has ended
            await asyncio.gather(*pumps, return_exceptions=True)

    async def _confirmed_ready(self, event: dict[str, Any]) -> dict[str, Any]:
        """The Hub's "ready", if its model agrees; else the stop that overtook the start.

        JupyterHub's progress stream says "ready" when a start is stopped while
        pending: its stop cancels the spawn, waits a second, then stops, and in
        that second the spawner looks ready (server set, nothing pending). A page
        would follow it into a server that is not there. So look again once that
        second is over.
        """
        user, name = self.key
        await asyncio.sleep(self.fanout.ready_confirm_delay)
        try:
            server = await self.fanout.hub.get_server(user, name, fresh=True)
        except ServiceError:
            server = {"ready": True}  # the Hub cannot say now: take its word
        if server and server.get("ready"):
            LAUNCH_CLOCK.seen_ready(user, name)
            return event
        return {
            "progress": 100,
            "failed": True,
            "stopped": True,
            "message": "The server was stopped before it was ready.",
        }

    def _ended(self, task: asyncio.Task) -> None:
        self.fanout._forget(self)
        if not task.cancelled() and task.exception() is not None:
            log.error("Progress relay of %s/%s failed", *self.key, exc_info=task.exception())
        for watcher in list(self.watchers):
            watcher.push(_END)


class ProgressFanout(LoggingConfigurable):
    """Shares one upstream per server among all its watchers, within configured caps."""

    max_watchers = Integer(
        1000,
        help="""Progress streams this process serves at once, over all users. Beyond it a new
        stream gets 503 with Retry-After. Each stream is one open HTTP connection to a browser.""",
    ).tag(config=True)
    max_watchers_per_user = Integer(
        20, help="Progress streams one user may hold at once (browser tabs); beyond it, 429 with Retry-After."
    ).tag(config=True)

    ready_confirm_delay = Float(
        1.5,
        help="""Seconds to wait after the Hub's "ready" before confirming it with the Hub's model
        and passing it on. JupyterHub says "ready" for a start that is being stopped (for one
        second, while it interrupts the spawn); without the wait, pages would follow it into a
        server that is not there. 0: pass the Hub's word on at once.""",
    ).tag(config=True)

    def __init__(self, hub: Any, diagnostics: Any = None, **kwargs):
        super().__init__(**kwargs)
        self.hub = hub
        self.diagnostics = diagnostics or NoDiagnostics()
        self._upstreams: dict[tuple[str, str], Upstream] = {}
        self._per_user: Counter = Counter()  # progress streams being served, by user
        PROGRESS_WATCHERS.set_function(lambda: sum(self._per_user.values()))
        PROGRESS_UPSTREAMS.set_function(lambda: len(self._upstreams))

    def watch(self, user: str, server_name: str, workspace: str) -> Watcher:
        """Follow ``user``'s server ``server_name``; raises 429/503 beyond the caps."""
        if self._per_user[user] >= self.max_watchers_per_user:
            raise TooManyRequests(
                f"You are following {self._per_user[user]} server starts at once, the most allowed: "
                "close a status page and try again."
            )
        if sum(self._per_user.values()) >= self.max_watchers:
            raise ServiceUnavailable("Too many people are following server starts right now; try again shortly.")
        key = (user, server_name)
        upstream = self._upstreams.get(key)
        if upstream is None:
            upstream = self._upstreams[key] = Upstream(self, key, workspace)
        watcher = Watcher(upstream, user)
        upstream.attach(watcher)
        self._per_user[user] += 1
        return watcher

    def _release(self, watcher: Watcher) -> None:
        self._per_user[watcher.user] -= 1
        if self._per_user[watcher.user] <= 0:
            del self._per_user[watcher.user]

    def _forget(self, upstream: Upstream) -> None:
        if self._upstreams.get(upstream.key) is upstream:
            del self._upstreams[upstream.key]

    def shutdown(self, message: str) -> None:
        """Tell every watcher to reconnect (to another replica, or this one once restarted), then end its stream."""
        for upstream in list(self._upstreams.values()):
            last = upstream.events[-1].get("progress", 0) if upstream.events else 0
            for watcher in list(upstream.watchers):
                watcher.push({"progress": last, "reconnect": True, "message": message})
                watcher.push(_END)
