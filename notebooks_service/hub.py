"""The only place that speaks the JupyterHub REST API.

Every call goes through ``HubClient.api_request``: one timeout, one
concurrency limit, one retry policy. Safe calls (GET, DELETE) are retried with
exponential backoff on connection errors and 5xx; every call honours a 429's
``Retry-After``. Start and stop of one server are serialised inside the process.
"""

import asyncio
import json
import logging
import random
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse

from .errors import HubError, HubUnavailable, InvalidRequest, NotFound, ServerBusy, SpawnFailed

log = logging.getLogger(__name__)

# methods whose repetition cannot do harm, so we may retry them blindly
_SAFE_METHODS = {"GET", "HEAD", "DELETE"}
_RETRYABLE_STATUS = {500, 502, 503, 504}


@dataclass
class HubResponse:
    code: int
    body: Any
    headers: Any = None

    @property
    def message(self) -> str:
        """The Hub's error message, if it sent one."""
        if isinstance(self.body, dict):
            return str(self.body.get("message") or self.body.get("error") or "")
        return str(self.body or "")[:1000]  # a page of HTML is no message


def _quote(segment: str) -> str:
    return quote(segment, safe="")


class HubClient:
    """A client for the Hub REST API, authenticated with the service's token."""

    def __init__(
        self,
        api_url: str,
        api_token: str,
        *,
        request_timeout: float = 30,
        max_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 10,
        concurrency: int = 10,
    ):
        self.api_url = api_url.rstrip("/")
        self._token = api_token
        self.request_timeout = request_timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._semaphore = asyncio.Semaphore(concurrency)
        self._server_locks: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self._hub_version: tuple[int, ...] | None = None

    # -- transport --------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2**attempt)
        return delay * (0.5 + random.random() / 2)

    async def _fetch(self, method: str, url: str, body: Any) -> HTTPResponse:
        request = HTTPRequest(
            url,
            method=method,
            headers={
                "Authorization": f"token {self._token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            body=None if body is None else json.dumps(body),
            request_timeout=self.request_timeout,
            connect_timeout=min(10, self.request_timeout),
            allow_nonstandard_methods=True,  # DELETE with a body
            follow_redirects=False,
        )
        async with self._semaphore:
            return await AsyncHTTPClient().fetch(request, raise_error=False)

    async def api_request(self, method: str, path: str, body: Any = None) -> HubResponse:
        """Call the Hub API; retry what is safe to retry; never raise on an HTTP status.

        Raises HubUnavailable when the Hub cannot be reached (after retries for safe methods).
        """
        url = self.api_url + path
        safe = method in _SAFE_METHODS
        if body is None and method in {"POST", "PUT", "PATCH"}:
            body = {}
        attempt = 0
        while True:
            try:
                response = await self._fetch(method, url, body)
            except (OSError, asyncio.TimeoutError, HTTPClientError) as e:
                # HTTPClientError here is tornado's 599: timeout or connection failure
                log.warning("Hub API %s %s failed: %s", method, path, e)
                if safe and attempt < self.max_retries:
                    await asyncio.sleep(self._backoff(attempt))
                    attempt += 1
                    continue
                raise HubUnavailable("The Hub is not reachable right now; please try again in a moment.") from e

            result = HubResponse(response.code, _parse_body(response), response.headers)
            if attempt < self.max_retries:
                if response.code == 429:
                    delay = _retry_after(response, default=self._backoff(attempt))
                    log.info("Hub API asks us to wait %.1fs (%s %s)", delay, method, path)
                    await asyncio.sleep(min(delay, self.backoff_max * 3))
                    attempt += 1
                    continue
                if safe and response.code in _RETRYABLE_STATUS:
                    log.warning("Hub API %s %s: %s, retrying", method, path, response.code)
                    await asyncio.sleep(self._backoff(attempt))
                    attempt += 1
                    continue
            log.debug("Hub API %s %s: %s", method, path, response.code)
            return result

    def _fail(self, what: str, response: HubResponse) -> HubError:
        """An error for a Hub answer we did not expect, logged for the operator."""
        log.error("Hub API %s: unexpected %s: %s", what, response.code, response.message)
        if response.code == 403:
            return HubError(
                "The notebooks service is not permitted to do this on the Hub; "
                "ask an operator to check the service's role."
            )
        if response.code == 429:
            return ServerBusy("The Hub is busy; please try again shortly.", 503, retry_after=10)
        return HubError(f"The Hub answered {response.code} to {what}.")

    # -- the Hub's API, as this service needs it --------------------------

    async def hub_version(self) -> tuple[int, ...]:
        """The Hub's version as a tuple, fetched once."""
        if self._hub_version is None:
            response = await self.api_request("GET", "/")
            if response.code != 200:
                raise self._fail("a version request", response)
            version = str(response.body.get("version", "0"))
            self._hub_version = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
        return self._hub_version

    async def get_user(self, name: str) -> dict[str, Any]:
        """The Hub's model of user ``name``, with groups and active servers."""
        response = await self.api_request("GET", f"/users/{_quote(name)}")
        if response.code == 404:
            raise NotFound(f"No such Hub user: {name!r}")
        if response.code != 200:
            raise self._fail("a user request", response)
        return response.body

    async def get_server(self, user: str, server_name: str) -> dict[str, Any] | None:
        """The model of one active (running or pending) server, or None."""
        model = await self.get_user(user)
        return (model.get("servers") or {}).get(server_name)

    def server_lock(self, user: str, server_name: str) -> asyncio.Lock:
        """The lock serialising operations on one server within this process."""
        key = (user, server_name)
        lock = self._server_locks.get(key)
        if lock is None:
            lock = self._server_locks[key] = asyncio.Lock()
        return lock

    async def start_server(
        self, user: str, server_name: str, display_name: str, user_options: dict[str, Any]
    ) -> dict[str, Any]:
        """Start a named server, or return it if it already runs or starts.

        Returns the server model; ``ready`` says whether it is up.
        """
        async with self.server_lock(user, server_name):
            existing = await self.get_server(user, server_name)
            if existing and existing.get("pending") == "stop":
                raise ServerBusy("This server is stopping; start it again once it has stopped.", retry_after=2)
            if existing:
                return existing

            if await self.hub_version() >= (6,):
                body = {"display_name": display_name, "user_options": user_options}
            else:
                body = user_options  # before 6.0 the whole body is user_options
            path = f"/users/{_quote(user)}/servers/{_quote(server_name)}"
            response = await self.api_request("POST", path, body)
            message = response.message
            if response.code in (201, 202):
                pass
            elif response.code == 400 and "already running" in message:
                pass
            elif response.code == 400 and "pending stop" in message:
                raise ServerBusy("This server is stopping; start it again once it has stopped.", retry_after=2)
            elif response.code == 400:
                raise InvalidRequest(f"The Hub refused to start the server: {message}")
            elif response.code >= 500:
                # the Hub may answer 5xx while the spawn goes on (e.g. slow_spawn_timeout):
                # the server's state, not this answer, says whether it launched
                log.warning("Hub answered %s to start %s/%s; reading its state", response.code, user, server_name)
            else:
                raise self._fail("a start request", response)

            server = await self.get_server(user, server_name)
            if server is None:
                # accepted, then gone: the spawn failed at once; the Hub remembers why
                reason = await self.last_spawn_failure(user, server_name) or message
                raise SpawnFailed(
                    f"The server failed to start: {reason}"
                    if reason
                    else f"The server failed to start (the Hub answered {response.code}); ask an operator to check the Hub's log."
                )
            return server

    async def stop_server(self, user: str, server_name: str) -> bool:
        """Stop and remove a named server. True once stopped, False while still stopping.

        Stopping a server that does not exist is not an error: it is stopped.
        """
        async with self.server_lock(user, server_name):
            path = f"/users/{_quote(user)}/servers/{_quote(server_name)}"
            response = await self.api_request("DELETE", path, {"remove": True})
            if response.code in (204, 404):
                return True
            if response.code == 202:
                return False
            if response.code == 400:
                raise ServerBusy(f"The Hub cannot stop this server now: {response.message}")
            raise self._fail("a stop request", response)

    # -- progress (the Hub's server-sent events) ------------------------------

    def _progress_path(self, user: str, server_name: str) -> str:
        return f"/users/{_quote(user)}/servers/{_quote(server_name)}/progress"

    async def progress_events(self, user: str, server_name: str, *, timeout: float = 900) -> AsyncIterator[dict]:
        """The Hub's progress events for a starting server, as they arrive; ends with its last event."""
        queue: asyncio.Queue = asyncio.Queue()
        parser = EventStreamParser()
        closed = False

        def on_chunk(chunk: bytes) -> None:
            if closed:
                raise RuntimeError("progress reader gone")  # aborts the upstream request
            for event in parser.feed(chunk):
                queue.put_nowait(event)

        request = HTTPRequest(
            self.api_url + self._progress_path(user, server_name),
            headers={"Authorization": f"token {self._token}", "Accept": "text/event-stream"},
            request_timeout=timeout,
            connect_timeout=min(10, self.request_timeout),
            streaming_callback=on_chunk,
        )
        fetch = asyncio.ensure_future(AsyncHTTPClient().fetch(request, raise_error=False))
        fetch.add_done_callback(lambda _: queue.put_nowait(_END))
        try:
            while (event := await queue.get()) is not _END:
                yield event
            if fetch.exception() is not None:
                log.warning("Hub progress stream of %s/%s broke: %s", user, server_name, fetch.exception())
                raise HubUnavailable("Lost the Hub's progress stream; reload to follow the server again.")
        finally:
            closed = True

    async def last_spawn_failure(self, user: str, server_name: str) -> str | None:
        """Why the last start of a server that is not running failed, if the Hub remembers."""
        response = await self.api_request("GET", self._progress_path(user, server_name))
        if response.code != 200:
            return None
        events = EventStreamParser().feed(response.body.encode() if isinstance(response.body, str) else b"")
        last = events[-1] if events else {}
        return last.get("message") if last.get("failed") else None


_END = object()


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


def _parse_body(response: HTTPResponse) -> Any:
    if not response.body:
        return None
    try:
        return json.loads(response.body)
    except ValueError:
        return response.body.decode("utf8", "replace")


def _retry_after(response: HTTPResponse, default: float) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return default
