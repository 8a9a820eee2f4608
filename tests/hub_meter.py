"""A metering proxy in front of the Hub's API: counts requests and open progress streams.

The service is pointed at it (``NotebooksService.hub_api_url``) so that tests
and benchmarks can see, from outside the service, how many Hub calls it makes
and how many upstream progress streams it holds. It can also hold answers back
(``delay``) to keep requests in flight, and answer some requests itself with an
error (``refuse``), as a Hub under load or behind a failing proxy does. It speaks just enough HTTP/1.1 to find
request boundaries on keep-alive connections; responses pass through as bytes.
"""

import asyncio
import json
import re
import threading
import time
from collections import Counter

_CONTENT_LENGTH = re.compile(rb"^content-length:\s*(\d+)", re.IGNORECASE | re.MULTILINE)


class HubMeter:
    """``HubMeter(hub_port)``; ``.url`` is the API URL to give the service."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.requests: Counter = Counter()  # (method, path) -> count
        self.open_streams = 0  # progress streams open now
        self.bytes_answered = 0  # bytes the Hub sent back, heads included
        self.delay = 0.0  # seconds each request waits before it is forwarded
        self.delays: dict[tuple[str, str], float] = {}  # (method, path pattern) -> seconds those requests wait
        self.refusals: dict[str, int] = {}  # path pattern -> the status answered instead of the Hub
        self.refused: dict[str, list[float]] = {}  # path pattern -> when requests were answered so (monotonic)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hub/api"

    def total(self) -> int:
        return sum(self.requests.values())

    def count(self, path_pattern: str) -> int:
        return sum(n for (_, path), n in self.requests.items() if re.search(path_pattern, path))

    def follow(self, upstream_port: int) -> None:
        """Forward to this port from now on (the Hub's API, chosen after the meter was made)."""
        self.upstream = (self.upstream[0], upstream_port)

    def refuse(self, path_pattern: str, status: int) -> None:
        """Answer every request whose path (without the query) matches with ``status``, until ``allow``;
        ``refused[path_pattern]`` counts them from now."""
        self.refused[path_pattern] = []
        self.refusals[path_pattern] = status

    def allow(self) -> None:
        self.refusals = {}

    def _refusal(self, path: str) -> tuple[str, int] | None:
        for pattern, status in list(self.refusals.items()):
            if re.search(pattern, path):
                return pattern, status
        return None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self, client_reader, client_writer) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            return
        back = asyncio.ensure_future(self._pipe(upstream_reader, client_writer))
        stream = False
        try:
            while True:
                head = await client_reader.readuntil(b"\r\n\r\n")
                method, path = head.split(b" ", 2)[:2]
                key = (method.decode(), path.decode().split("?")[0])
                self.requests[key] += 1
                if not stream and key[1].endswith("/progress") and b"text/event-stream" in head:
                    stream = True
                    self.open_streams += 1
                if self.delay:
                    await asyncio.sleep(self.delay)
                for (method_, pattern), seconds in list(self.delays.items()):
                    if method_ == key[0] and re.search(pattern, key[1]):
                        await asyncio.sleep(seconds)
                length = _CONTENT_LENGTH.search(head)
                body = await client_reader.readexactly(int(length.group(1))) if length else b""
                refusal = self._refusal(key[1])
                if refusal:  # HTTP/1.1 without pipelining: no answer of the Hub's is on its way now
                    self.refused.setdefault(refusal[0], []).append(time.monotonic())
                    answer = json.dumps({"status": refusal[1], "message": "refused by the test"}).encode()
                    client_writer.write(
                        b"HTTP/1.1 %d Refused\r\nContent-Type: application/json\r\nRetry-After: 0\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (refusal[1], len(answer), answer)
                    )
                    await client_writer.drain()
                    continue
                upstream_writer.write(head + body)
                await upstream_writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            if stream:
                self.open_streams -= 1
            upstream_writer.close()
            back.cancel()
            client_writer.close()

    async def _pipe(self, reader, writer) -> None:
        try:
            while chunk := await reader.read(65536):
                self.bytes_answered += len(chunk)
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        async def stop():
            # end the connections' tasks while the loop runs, so none is left to close a dead loop
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop.stop()

        self._loop.call_soon_threadsafe(lambda: self._loop.create_task(stop()))
        self._thread.join(10)
