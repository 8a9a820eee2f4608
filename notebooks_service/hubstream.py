"""The Hub's progress stream of a starting server: server-sent events over a connection of its own.

Never through the REST pool (``hub.HubClient``): a stream lasts as long as a
start, and thousands of watchers must not starve users' calls. Closing the
iterator (or cancelling its reader) closes the connection at once.
"""

import asyncio
import json
import logging
import ssl
from collections.abc import AsyncIterator
from urllib.parse import quote, urlsplit

from tornado import httputil
from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters
from tornado.iostream import StreamClosedError
from tornado.tcpclient import TCPClient

from .errors import HubError, HubUnavailable
from .log import redact

log = logging.getLogger(__name__)


async def progress_stream(
    url: str, headers: dict[str, str], *, connect_timeout: float, idle_timeout: float, what: str
) -> AsyncIterator[dict]:
    """The events of the stream at ``url``, as they arrive; ends with the Hub's last event.

    ``idle_timeout``: seconds without a byte (the Hub sends keepalives every 8 s)
    before the stream counts as broken. ``what`` names it in logs (user/server).
    """
    parts = urlsplit(url)
    https = parts.scheme == "https"
    try:
        stream = await TCPClient().connect(
            parts.hostname,
            parts.port or (443 if https else 80),
            ssl_options=ssl.create_default_context() if https else None,
            timeout=connect_timeout,
        )
    except (OSError, StreamClosedError, asyncio.TimeoutError) as e:
        log.warning("Cannot open the Hub's progress stream of %s: %s", what, e)
        raise HubUnavailable("Cannot follow the server's start: the Hub is not reachable.") from None
    reader = _StreamReader()
    try:
        connection = HTTP1Connection(stream, True, HTTP1ConnectionParameters(no_keep_alive=True))
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.write_headers(
            httputil.RequestStartLine("GET", target, "HTTP/1.1"),
            httputil.HTTPHeaders({"Host": parts.netloc, "Connection": "close", **headers}),
        )
        connection.finish()
        asyncio.ensure_future(connection.read_response(reader)).add_done_callback(retrieve)
        parser = EventStreamParser()
        while True:
            try:
                chunk = await asyncio.wait_for(reader.chunks.get(), idle_timeout)
            except asyncio.TimeoutError:
                chunk = None
            if chunk is None:
                if reader.finished:
                    return
                log.warning("Hub progress stream of %s broke", what)
                raise HubUnavailable("Lost the Hub's progress stream; reload to follow the server again.")
            if reader.code != 200:
                raise HubError(f"The Hub answered {reader.code} to a progress request.")
            for event in parser.feed(chunk):
                yield event
    finally:
        stream.close()


class _StreamReader(httputil.HTTPMessageDelegate):
    """Hands a streamed response's body to a queue as it arrives; None marks its end."""

    def __init__(self):
        self.chunks: asyncio.Queue = asyncio.Queue()
        self.code: int | None = None
        self.finished = False

    def headers_received(self, start_line, headers) -> None:
        self.code = start_line.code

    def data_received(self, chunk: bytes) -> None:
        self.chunks.put_nowait(chunk)

    def finish(self) -> None:
        self.finished = True
        self.chunks.put_nowait(None)

    def on_connection_close(self) -> None:
        self.chunks.put_nowait(None)


class EventStreamParser:
    """Splits a text/event-stream into the JSON objects of its ``data:`` fields."""

    def __init__(self):
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[dict]:
        self._buffer += chunk.replace(b"\r\n", b"\n")
        *messages, self._buffer = self._buffer.split(b"\n\n")
        events = []
        for message in messages:
            data = b"\n".join(line[5:].strip() for line in message.split(b"\n") if line.startswith(b"data:"))
            if data:
                try:
                    events.append(json.loads(data))
                except ValueError:
                    log.warning("Ignoring a progress event that is not JSON")
        return events


def retrieve(future: asyncio.Future) -> None:
    """Mark a background future's outcome as seen (no 'exception was never retrieved')."""
    if not future.cancelled():
        future.exception()


class HubProgress:
    """HubClient's calls about a start's progress (mixed into ``hub.HubClient``, whose REST calls they use)."""

    def _progress_path(self, user: str, server_name: str) -> str:
        return f"/users/{quote(user, safe='')}/servers/{quote(server_name, safe='')}/progress"

    def progress_events(self, user: str, server_name: str) -> AsyncIterator[dict]:
        """The Hub's progress events for a starting server, as they arrive (hubstream.py: a
        connection of its own, outside the REST pool, closed as soon as its reader lets go)."""
        return progress_stream(
            self.api_url + self._progress_path(user, server_name),
            self._headers("text/event-stream"),
            connect_timeout=self.request_timeout,
            idle_timeout=self.stream_idle_timeout,
            what=f"{user}/{server_name}",
        )

    async def last_spawn_failure(self, user: str, server_name: str) -> str | None:
        """Why the last start of a server that is not running failed, if the Hub remembers."""
        response = await self.api_request("GET", self._progress_path(user, server_name))
        if response.code != 200:
            return None
        events = EventStreamParser().feed(response.body.encode() if isinstance(response.body, str) else b"")
        last = events[-1] if events else {}
        if not (last.get("failed") and last.get("message")):
            return None
        # the Hub says "Spawn failed: <why>"; the pages say that a start failed already
        return redact(str(last["message"]).removeprefix("Spawn failed: "))
