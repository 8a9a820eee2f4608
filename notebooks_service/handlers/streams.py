"""Server-sent events of one server: its start's progress, and its output followed."""

import asyncio
import json
import re
from typing import Any

from tornado.iostream import StreamClosedError
from tornado.log import app_log

from ..errors import InvalidRequest, NotFound
from ..progress import QUIET
from .base import BaseHandler, user_message

_DIGITS = re.compile(r"[0-9]{1,6}")


class ServerProgressHandler(BaseHandler):
    """``<prefix>/<workspace>/<image>/-/progress``: the start's progress as server-sent events.

    Follows the caller's server through the progress fan-out: the Hub's
    progress events, merged with the pod's Kubernetes events when diagnostics
    are on. Each event is JSON with ``progress`` (0-100) and ``message``; the
    last has ``ready`` or ``failed``, or ``reconnect`` when the service shuts down.
    """

    watcher = None

    def wants_json(self) -> bool:
        return True  # a stream client cannot follow a login redirect: errors are JSON

    async def get(self, workspace: str, image: str) -> None:
        request = await self.launcher.check(self, workspace, image)
        server = request.server
        if server is None:
            failure = await self.launcher.last_failure(request)
            events = [{"progress": 100, "failed": True, "message": failure or "The server is not running."}]
        elif server.get("ready"):
            events = [{"progress": 100, "ready": True, "message": "Server ready", "url": server["url"]}]
        else:
            events = None
            # before any header is sent: over the caps, this is a plain 429/503 error
            self.watcher = self.components.progress.watch(request.user["name"], request.name, workspace)

        self.begin_event_stream()
        try:
            if events is not None:
                for event in events:
                    await self.send_event(event)
            else:
                await self.relay()
            self.finish()
        except StreamClosedError:
            pass  # the browser went away
        finally:
            if self.watcher is not None:
                self.watcher.close()

    async def send_event(self, event: dict[str, Any]) -> None:
        self.write(f"data: {json.dumps(event)}\n\n")
        await self.flush()

    async def relay(self) -> None:
        """Forward the server's events until its start ends, the browser leaves or the service stops."""
        while (event := await self.watcher.next(self.components.stream_keepalive)) is not None:
            if event is QUIET:
                self.write(": keepalive\n\n")  # keeps proxies from closing a quiet stream
                await self.flush()
            else:
                await self.send_event(event)

    def on_connection_close(self) -> None:
        # the browser left: let go of the upstream now, not at the next event
        if self.watcher is not None:
            self.watcher.close()
        self.components.in_flight.discard(self)


class ServerLogsHandler(BaseHandler):
    """``<prefix>/<workspace>/<image>/-/logs``: the caller's server's output.

    JSON lines (``{"line": ...}``) by default, ``text/plain`` when asked
    (``Accept`` or ``?format=text``), the last ``?tail=N`` lines (1000), the
    crashed container's with ``?previous=1`` (Kubernetes), followed as
    server-sent events with ``Accept: text/event-stream`` or ``?follow=1``.
    A browser (``Accept: text/html``) gets a page to read, which follows the log live.
    """

    max_tail = 10000
    first_line_wait = 2  # seconds a follow waits for its first line (or error) before its stream begins
    _left: asyncio.Event | None = None

    def wants_page(self) -> bool:
        """A person's browser: a page of the log, never a file to download (clients ask for data)."""
        asked = ("follow", "format")
        return "text/html" in self.request.headers.get("Accept", "") and not any(
            self.get_query_argument(a, "") for a in asked
        )

    def wants_json(self) -> bool:
        return not self.wants_page()  # errors, too, are JSON for clients and pages for people

    def _flag(self, name: str) -> bool:
        return self.get_query_argument(name, "").lower() in ("1", "true", "yes")

    def _tail(self) -> int:
        value = self.get_query_argument("tail", "1000")
        # ASCII digits only ('²'.isdigit() is true) and few of them (int() of 5000 digits is refused)
        if not _DIGITS.fullmatch(value) or int(value) > self.max_tail:
            raise InvalidRequest(f"tail must be a number of lines from 0 to {self.max_tail}.")
        return int(value)

    async def get(self, workspace: str, image: str) -> None:
        tail, previous = self._tail(), self._flag("previous")
        request = await self.launcher.check(self, workspace, image)
        user, name = request.user, request.name
        source = self.components.server_logs
        if source is None:
            raise NotFound("Server logs are not available here (NotebooksService.server_logs is off).")
        accept = self.request.headers.get("Accept", "")
        if self._flag("follow") or "text/event-stream" in accept:
            with self.components.log_follows.taken(user["name"]):
                await self._follow(source.follow(workspace, user["name"], name, tail=tail))
            return
        lines = await source.lines(workspace, user["name"], name, tail=tail, previous=previous)
        if self.wants_page():
            status_url = self.launcher.status_url(workspace, image)
            self.render_template(
                "logs.html",
                workspace=workspace,
                image=request.image,
                running=request.server is not None,
                previous=previous,
                tail=tail,
                text=self._last_that_fit(lines, lambda line: line + "\n"),
                logs_url=status_url + "/-/logs",
                server_url=self.launcher.details_url(workspace, image) if request.server is not None else status_url,
            )
            return
        if self.get_query_argument("format", "") == "text" or accept.startswith("text/plain"):
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish(self._last_that_fit(lines, lambda line: line + "\n"))
        else:
            self.set_header("Content-Type", "application/x-ndjson")
            self.finish(self._last_that_fit(lines, lambda line: json.dumps({"line": line}) + "\n"))

    def _last_that_fit(self, lines: list[str], encode) -> str:
        """As many of the last lines, encoded, as fit in max_log_bytes (JSON escapes can grow a line)."""
        room, kept = self.components.server_logs.max_bytes, []
        for line in reversed(lines):
            encoded = encode(line)
            room -= len(encoded.encode())
            if room < 0:
                break
            kept.append(encoded)
        return "".join(reversed(kept))

    async def _follow(self, lines) -> None:
        """Send the log's lines as events until it ends, the reader leaves, or the service shuts down."""
        self._left = asyncio.Event()
        queue: asyncio.Queue = asyncio.Queue(maxsize=1)  # at most one (cut) line waits here

        async def pump() -> None:
            try:
                async for line in lines:
                    await queue.put(line)
                await queue.put(None)
            except Exception as e:  # handed to the writer: a plain error before the stream begins
                await queue.put(e)

        task = asyncio.ensure_future(pump())
        try:
            # a missing pod or file is known at once: then a plain error, before any header
            item = await self._next(queue, self.first_line_wait)
            if isinstance(item, Exception):
                raise item
            self.begin_event_stream()
            while item is not None:
                if item is QUIET:
                    self.write(": keepalive\n\n")
                elif isinstance(item, Exception):
                    app_log.warning("A followed server log ended: %s", user_message(item) or type(item).__name__)
                    self.write(f"data: {json.dumps({'error': user_message(item) or 'The log ended.'})}\n\n")
                    break
                else:
                    self.write(f"data: {json.dumps({'line': item})}\n\n")
                await self.flush()
                item = await self._next(queue, self.components.stream_keepalive)
            self.finish()
        except StreamClosedError:
            pass  # the reader went away
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _next(self, queue: asyncio.Queue, timeout: float) -> Any:
        """The queue's next item; QUIET after ``timeout`` seconds of silence; None as soon as the
        reader leaves or the service shuts down (the reader reconnects), so its slot is freed."""
        waits = [asyncio.ensure_future(self._left.wait()), asyncio.ensure_future(self.components.draining.wait())]
        getting = asyncio.ensure_future(queue.get())
        done, _ = await asyncio.wait([getting, *waits], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
        if getting in done:
            return getting.result()
        getting.cancel()  # safe: a cancelled get takes nothing from the queue
        return None if done else QUIET

    def on_connection_close(self) -> None:
        if self._left is not None:
            self._left.set()
        self.components.in_flight.discard(self)
