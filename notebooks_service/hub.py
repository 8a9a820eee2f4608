"""The only place that speaks the JupyterHub REST API.

Every REST call goes through ``HubClient.api_request``: its own bounded
connection pool, one retry policy, and the time budget of the request being
served (``request_deadline``), which covers retries, backoff and waits for a
connection or a server's lock. Safe calls (GET, DELETE) are retried with
exponential backoff on connection errors and 5xx; every call honours a 429's
``Retry-After``. Reads of a user's model are shared by concurrent callers and
cached briefly; this service's own starts and stops forget them at once.

Progress streams never use the REST pool: each one is a connection of its own
that closes as soon as its reader lets go (see ``progress.py``).
"""

import asyncio
import contextlib
import json
import logging
import random
import time
import weakref
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse
from traitlets import Float, Integer, Unicode
from traitlets.config import LoggingConfigurable

from .deadline import acquire_within, out_of_time, time_left
from .errors import HubError, HubUnavailable, InvalidRequest, NotFound, ServerBusy, SpawnFailed
from .hubstream import HubProgress
from .hubusers import ActiveServers, ScopeChecks, UserModels
from .log import redact
from .metrics import HUB_REQUESTS, hub_endpoint
from .quotas import RunningServer

log = logging.getLogger(__name__)

JSON = "application/json"
# methods whose repetition cannot do harm, so we may retry them blindly
_SAFE_METHODS = {"GET", "HEAD", "DELETE"}
_RETRYABLE_STATUS = {500, 502, 503, 504}
# what a request raises when no HTTP answer came (tornado's 599 is HTTPClientError: timeout, refused)
_TRANSPORT_ERRORS = (OSError, asyncio.TimeoutError, HTTPClientError)


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


class HubClient(HubProgress, LoggingConfigurable):
    """A client for the Hub REST API, authenticated with the service's token."""

    api_url = Unicode(help="The Hub's REST API, e.g. http://hub:8081/hub/api (set by the application).")
    api_token = Unicode(help="The service's Hub API token (set by the application). Never logged.")

    request_timeout = Float(
        10, help="Seconds to wait for one Hub API answer (one attempt; the request's time budget caps it too)."
    ).tag(config=True)
    max_retries = Integer(4, help="Retries of a safe Hub API call after a 5xx, 429 or connection error.").tag(
        config=True
    )
    concurrency = Integer(
        10,
        help="""Hub REST calls in flight at once from this process: the size of the REST
        connection pool. Progress streams have connections of their own and never take from it.""",
    ).tag(config=True)
    user_cache_seconds = Float(
        1.0,
        help="""How long a user's model read from the Hub is reused, so that polling pages and
        clients cost one Hub call per interval. This service's own starts and stops forget it at
        once, and a model with a server starting or stopping is not kept (it changes by itself:
        pollers see 'ready' as soon as the Hub does). 0 turns the cache off (concurrent reads are
        still shared).""",
    ).tag(config=True)
    usage_cache_seconds = Float(
        3.0,
        help="""How long the list of every active server on the Hub (what quotas count, and the
        start forms and GET /workspaces show as usage) is reused. This service's own starts and
        stops forget it at once; the Hub-side guard counts afresh at every spawn regardless.""",
    ).tag(config=True)
    backoff_base = Float(0.5, help="First retry delay in seconds; doubled per retry, with jitter.").tag(config=True)
    backoff_max = Float(10, help="Longest delay between two retries.").tag(config=True)
    access_check_seconds = Float(
        300,
        help="""How long the Hub's answer to "does this user hold the service's access scope"
        (asked for identity-provider JWT callers, see ``user_holds_scope``) is reused. A role
        the Hub takes away stops JWT access within this time; Hub-token callers are checked
        by HubOAuth on every token lookup instead.""",
    ).tag(config=True)
    hub_version_seconds = Float(
        300,
        help="""How long the Hub's version (it decides the shape of a start request: JupyterHub 6
        takes display_name and user_options, 5.x takes user_options as the whole body) is trusted
        before it is read again. It is also read again whenever the Hub refuses a start, and the
        start is sent once more if the Hub's major version changed (a rollback, an upgrade).""",
    ).tag(config=True)
    stream_idle_timeout = Float(
        30,
        help="Seconds without a byte (the Hub sends keepalives every 8 s) before a progress stream counts as broken.",
    ).tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.api_url = self.api_url.rstrip("/")
        self._http: AsyncHTTPClient | None = None
        self._slots: asyncio.Semaphore | None = None
        self._server_locks: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self._user_models = UserModels(self._read_user, lambda: self.user_cache_seconds)
        self._scope_checks = ScopeChecks(self)
        self._active = ActiveServers(self)
        self.changes = 0  # starts and stops of this service so far
        self._hub_version: tuple[tuple[int, ...], float] | None = None  # (version, until when it is trusted)

    # -- transport --------------------------------------------------------

    @property
    def http(self) -> AsyncHTTPClient:
        """This client's own connection pool (never tornado's shared instance), made in the running loop."""
        if self._http is None:
            self._http = AsyncHTTPClient(force_instance=True, max_clients=self.concurrency)
            self._slots = asyncio.Semaphore(self.concurrency)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def _headers(self, accept: str = JSON) -> dict[str, str]:
        return {"Authorization": f"token {self.api_token}", "Accept": accept}

    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2**attempt)
        return delay * (0.5 + random.random() / 2)

    def _time_left(self) -> float:
        left = time_left()
        return self.request_timeout if left is None else min(self.request_timeout, left)

    async def _fetch(self, method: str, url: str, body: Any, accept: str) -> HTTPResponse:
        http = self.http
        # wait for a free connection only as long as the request may still take
        if not await acquire_within(self._slots, self._time_left()):
            raise out_of_time()
        try:
            timeout = self._time_left()
            if timeout <= 0:
                raise out_of_time()
            request = HTTPRequest(
                url,
                method=method,
                headers={**self._headers(accept), "Content-Type": "application/json"},
                body=None if body is None else json.dumps(body),
                request_timeout=timeout,
                connect_timeout=timeout,
                allow_nonstandard_methods=True,  # DELETE with a body
                follow_redirects=False,
            )
            response = await http.fetch(request, raise_error=False)
        finally:
            self._slots.release()
        # tornado's HTTPClientError of a non-2xx answer refers back to its response: a cycle that
        # keeps the answer's buffers until the cyclic GC. We read the code and body, never .error.
        response.error = None
        return response

    async def api_request(self, method: str, path: str, body: Any = None, *, accept: str = JSON) -> HubResponse:
        """Call the Hub API; retry what is safe to retry; never raise on an HTTP status.

        Raises HubUnavailable (503) when the Hub cannot be reached or does not
        answer within the request's time budget.
        """
        url = self.api_url + path
        safe = method in _SAFE_METHODS
        if body is None and method in {"POST", "PUT", "PATCH"}:
            body = {}
        attempt = 0
        endpoint = hub_endpoint(path)
        while True:
            began = time.monotonic()
            try:
                response = await self._fetch(method, url, body, accept)
            except _TRANSPORT_ERRORS as e:
                HUB_REQUESTS.labels(method, endpoint, "error").observe(time.monotonic() - began)
                log.warning("Hub API %s %s failed: %s", method, path, e)
                if safe and attempt < self.max_retries and await self._wait_before_retry(attempt):
                    attempt += 1
                    continue
                raise HubUnavailable("The Hub is not reachable right now; please try again in a moment.") from e

            HUB_REQUESTS.labels(method, endpoint, str(response.code)).observe(time.monotonic() - began)
            result = HubResponse(response.code, _parse_body(response), response.headers)
            if attempt < self.max_retries:
                if response.code == 429:
                    delay = min(_retry_after(response, default=self._backoff(attempt)), self.backoff_max * 3)
                    log.info("Hub API asks us to wait %.1fs (%s %s)", delay, method, path)
                    if await self._wait_before_retry(attempt, delay):
                        attempt += 1
                        continue
                elif safe and response.code in _RETRYABLE_STATUS:
                    log.warning("Hub API %s %s: %s, retrying", method, path, response.code)
                    if await self._wait_before_retry(attempt):
                        attempt += 1
                        continue
            log.debug("Hub API %s %s: %s", method, path, response.code)
            return result

    async def _wait_before_retry(self, attempt: int, delay: float | None = None) -> bool:
        """Sleep before the next try; False (at once) if the request's budget would run out first."""
        delay = self._backoff(attempt) if delay is None else delay
        limit = time_left()
        if limit is not None and delay >= limit:
            return False
        await asyncio.sleep(delay)
        return True

    def unexpected_answer(self, what: str, response: HubResponse) -> HubError:
        """An error for a Hub answer we did not expect, logged for the operator."""
        if response.code >= 500:
            # a 5xx's text is the Hub's own trouble (OAuthenticator 17.4 puts an ID token in it): not ours to pass on
            log.error("Hub API %s: unexpected %s (its text is in the Hub's log, not here)", what, response.code)
        else:
            log.error("Hub API %s: unexpected %s: %s", what, response.code, redact(response.message))
        if response.code == 403:
            return HubError(
                "The notebooks service is not permitted to do this on the Hub; "
                "ask an operator to check the service's role."
            )
        if response.code == 429:
            return ServerBusy("The Hub is busy; please try again shortly.", 503, retry_after=10)
        if response.code in (502, 503, 504):  # a proxy in front of the Hub, saying the Hub is not there
            return HubUnavailable("The Hub is not answering right now; please try again in a moment.")
        return HubError(f"The Hub answered {response.code} to {what}; ask an operator to check the Hub's log.")

    # -- the Hub's API, as this service needs it --------------------------

    async def hub_version(self, *, fresh: bool = False) -> tuple[int, ...]:
        """The Hub's (major, minor), read again after ``hub_version_seconds`` or when ``fresh``."""
        known = self._hub_version
        if fresh or known is None or known[1] <= time.monotonic():
            response = await self.api_request("GET", "/")
            if response.code != 200:
                raise self.unexpected_answer("a version request", response)
            version = str(response.body.get("version", "0"))
            parsed = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
            if known is not None and known[0] != parsed:
                log.warning("The Hub's version changed: %s -> %s", _dotted(known[0]), _dotted(parsed))
            self._hub_version = known = (parsed, time.monotonic() + self.hub_version_seconds)
        return known[0]

    async def check_ready(self, timeout: float) -> None:
        """Raise HubUnavailable/HubError unless the Hub answers its API within ``timeout`` (one try).

        A connection of its own, outside the REST pool: a probe must tell "the Hub is down"
        from "this process is busy", and never wait behind, or take a slot from, users' calls.
        """
        probe = AsyncHTTPClient(force_instance=True, max_clients=1)
        try:
            request = HTTPRequest(
                self.api_url + "/",
                headers=self._headers(),
                request_timeout=timeout,
                connect_timeout=timeout,
                follow_redirects=False,
            )
            response = await probe.fetch(request, raise_error=False)
        except _TRANSPORT_ERRORS as e:
            raise HubUnavailable(f"The Hub is not reachable: {e}") from None
        finally:
            probe.close()
        if response.code != 200:
            raise HubError(f"The Hub answered {response.code}.")

    async def get_user(self, name: str, *, fresh: bool = False) -> dict[str, Any]:
        """The Hub's model of user ``name``: groups, active ``servers`` and ``stopped_servers``. Read-only.

        Concurrent callers share one Hub call; its answer is reused for
        ``user_cache_seconds`` unless ``fresh`` (hubusers.py).
        """
        return await self._user_models.get(name, fresh=fresh)

    async def _read_user(self, name: str) -> dict[str, Any]:
        # stopped servers too: a failed start stays in the Hub and takes a named-server slot
        response = await self.api_request("GET", f"/users/{_quote(name)}?include_stopped_servers=1")
        if response.code == 404:
            raise NotFound(f"No such Hub user: {name!r}")
        if response.code != 200:
            raise self.unexpected_answer("a user request", response)
        return _split_stopped(response.body)

    async def user_holds_scope(self, name: str, scope: str) -> bool:
        """Whether the Hub grants user ``name`` ``scope``, by the Hub's own role resolution; the
        answer is kept for ``access_check_seconds`` (hubusers.ScopeChecks says how it is asked)."""
        return await self._scope_checks.holds(name, scope)

    def forget_user(self, name: str, *, servers_changed: bool = True) -> None:
        """Drop what is cached of ``name``, and with ``servers_changed`` (a start, a stop) what quotas
        counted too (hubusers.QuotaUsage); a read in flight still answers its callers, not the cache."""
        self._user_models.forget(name)
        if servers_changed:
            self._active.forget()
            self.changes += 1

    async def running_servers(self, *, fresh: bool = False) -> list[RunningServer]:
        """Every active workspace server on the Hub, as quotas count them (hubusers.ActiveServers)."""
        return await self._active.get(fresh=fresh)

    async def get_server(self, user: str, server_name: str, *, fresh: bool = False) -> dict[str, Any] | None:
        """The model of one active (running or pending) server, or None."""
        model = await self.get_user(user, fresh=fresh)
        return (model.get("servers") or {}).get(server_name)

    def server_lock(self, user: str, server_name: str) -> asyncio.Lock:
        """The lock serialising operations on one server within this process."""
        key = (user, server_name)
        lock = self._server_locks.get(key)
        if lock is None:
            lock = self._server_locks[key] = asyncio.Lock()
        return lock

    @contextlib.asynccontextmanager
    async def _locked(self, user: str, server_name: str):
        """Hold the server's lock; a 409 if another operation holds it past the request's budget."""
        lock = self.server_lock(user, server_name)
        if not await acquire_within(lock, time_left()):
            raise ServerBusy("Another start or stop of this server is in progress; try again shortly.")
        try:
            yield
        finally:
            lock.release()

    async def start_server(
        self, user: str, server_name: str, display_name: str, user_options: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """Start a named server, or return it if it already runs or starts.

        Returns the server model (``ready`` says whether it is up) and whether
        this call started it. The Hub's answer to the start says whether it runs
        or stops already, so no read comes first.
        """
        async with self._locked(user, server_name):
            try:
                return await self._start(user, server_name, display_name, user_options)
            finally:
                self.forget_user(user)

    async def _start(
        self, user: str, server_name: str, display_name: str, user_options: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        version = await self.hub_version()
        try:
            return await self._request_start(user, server_name, display_name, user_options, version)
        except (SpawnFailed, InvalidRequest):
            # a Hub rolled back (or upgraded) since we read its version refuses the body's shape: look again
            now = await self.hub_version(fresh=True)
            if _wraps_user_options(now) == _wraps_user_options(version):
                raise
            log.warning("Starting %s/%s again in the shape JupyterHub %s takes", user, server_name, _dotted(now))
            return await self._request_start(user, server_name, display_name, user_options, now)

    async def _request_start(
        self, user: str, server_name: str, display_name: str, user_options: dict[str, Any], version: tuple[int, ...]
    ) -> tuple[dict[str, Any], bool]:
        if _wraps_user_options(version):
            body = {"display_name": display_name, "user_options": user_options}
        else:
            body = user_options  # before 6.0 the whole body is user_options
        path = f"/users/{_quote(user)}/servers/{_quote(server_name)}"
        response = await self.api_request("POST", path, body)
        # a 4xx's message is the Hub's word to the user; a 5xx's is the Hub's trouble, never passed on
        message = redact(response.message) if response.code < 500 else ""
        started = True
        if response.code in (201, 202):
            pass
        elif response.code == 400 and "already running" in message:
            started = False  # started before: the state below is the answer
        # (a start already pending is a 202, as a new one is: the caller knows which from the model it read)
        elif response.code == 400 and "pending stop" in message:
            raise ServerBusy("This server is stopping; start it again once it has stopped.")
        elif response.code == 400 and "maximum" in message:
            raise InvalidRequest(f"The Hub refused to start the server: {message}" + await self._slots_hint(user))
        elif response.code == 400:
            raise InvalidRequest(f"The Hub refused to start the server: {message}")
        elif response.code >= 500:
            # the Hub may answer 5xx while the spawn goes on (e.g. slow_spawn_timeout):
            # the server's state, not this answer, says whether it launched
            log.warning("Hub answered %s to start %s/%s; reading its state", response.code, user, server_name)
        else:
            raise self.unexpected_answer("a start request", response)

        server = await self.get_server(user, server_name, fresh=True)
        if server is None:
            # accepted, then gone: the spawn failed at once; the Hub remembers why
            reason = await self.last_spawn_failure(user, server_name) or message
            if reason:
                raise SpawnFailed(f"The server failed to start: {reason}")
            raise SpawnFailed(
                f"The server failed to start: the Hub answered {response.code} and it is not running. If you "
                "logged in long ago, log out and log in again (the Hub may have failed to renew your login); "
                "if that does not help, ask an operator to check the Hub's log."
            )
        return server, started

    async def _slots_hint(self, user: str) -> str:
        """Which stopped servers take the user's named-server slots, if any."""
        stopped = (await self.get_user(user, fresh=True)).get("stopped_servers") or {}
        if not stopped:
            return ""
        names = sorted(s.get("display_name") or n for n, s in stopped.items())
        return f" Stopped servers still count: remove one first ({', '.join(names)})."

    async def stop_server(self, user: str, server_name: str, *, remove: bool = True) -> bool:
        """Stop (and remove, unless told not to) a named server. True once stopped, False while still stopping.

        Stopping a server that does not exist is not an error: it is stopped.
        """
        async with self._locked(user, server_name):
            try:
                path = f"/users/{_quote(user)}/servers/{_quote(server_name)}"
                response = await self.api_request("DELETE", path, {"remove": remove})
            finally:
                self.forget_user(user)
            if response.code in (204, 404):
                return True
            if response.code == 202:
                return False
            if response.code == 400:
                raise ServerBusy(f"The Hub cannot stop this server now: {response.message}")
            raise self.unexpected_answer("a stop request", response)

    async def wait_until_stopped(self, user: str, server_name: str, every: float = 0.5) -> None:
        """Poll the Hub until the server is no longer active; ServerBusy once the request's budget is spent."""
        while await self.get_server(user, server_name, fresh=True) is not None:
            left = time_left()
            if left is not None and left <= every:
                raise ServerBusy("The server is still stopping; try again in a moment.")
            await asyncio.sleep(every)

    async def record_activity(self, user: str, server_name: str, when: str) -> None:
        """Tell the Hub the server was used at ``when`` (ISO 8601), as the server itself does: the
        idle culler reads it (the Hub keeps the latest it was told). Needs ``users:activity``."""
        body = {"servers": {server_name: {"last_activity": when}}}
        try:
            response = await self.api_request("POST", f"/users/{_quote(user)}/activity", body)
        finally:
            self.forget_user(user, servers_changed=False)  # what runs is the same
        if response.code in (200, 204):
            return
        if response.code == 400 and "No such server" in response.message:
            raise NotFound("This server is not running.")
        raise self.unexpected_answer("an activity report", response)


def _wraps_user_options(version: tuple[int, ...]) -> bool:
    """JupyterHub 6 takes ``{"display_name", "user_options"}`` to start a server; 5.x the options alone."""
    return version >= (6,)


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def _split_stopped(user_model: dict[str, Any]) -> dict[str, Any]:
    """The model with ``servers`` active only (as without include_stopped_servers) and the stopped
    named servers in ``stopped_servers`` (the default server, name '', takes no named-server slot)."""
    servers = user_model.get("servers") or {}
    return {
        **user_model,
        "servers": {n: s for n, s in servers.items() if not s.get("stopped")},
        "stopped_servers": {n: s for n, s in servers.items() if s.get("stopped") and n},
    }


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
