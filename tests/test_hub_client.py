"""HubClient's retry policy and answer mapping, against a scripted fake Hub over real HTTP.

The real Hub cannot be made to answer 503 or 429 on demand; this small server can.
"""

import asyncio
import gc
import json
import logging
import os

import pytest
from tornado import web
from tornado.httpclient import HTTPClientError, HTTPResponse
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from notebooks_service.deadline import time_budget
from notebooks_service.errors import HubError, HubUnavailable, InvalidRequest, ServerBusy, SpawnFailed
from notebooks_service.hub import HubClient


class FakeHub:
    """Answers each (method, path) from a queue of (status, body, headers); records every call."""

    def __init__(self):
        self.script: dict[tuple[str, str], list] = {}
        self.calls: list[tuple[str, str, object]] = []
        self.url = ""
        self.release = asyncio.Event()  # a scripted answer of None status waits for this ("a hung Hub")
        self.closed_streams = 0
        self.last: dict[tuple[str, str], tuple] = {}

    def answer(self, method: str, path: str, *responses):
        self.script.setdefault((method, path), []).extend(responses)

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p, _ in self.calls if (m, p) == (method, path))


def user_model(servers=None):
    return {"name": "alice", "groups": [], "servers": servers or {}}


def server_model(ready=True, pending=None):
    return {"name": "alpha-python", "ready": ready, "pending": pending, "url": "/user/alice/alpha-python/"}


@pytest.fixture
async def fake_hub():
    hub = FakeHub()

    class Handler(web.RequestHandler):
        async def _answer(self, *args):
            path = self.request.path.removeprefix("/hub/api")
            key = (self.request.method, path)
            body = json.loads(self.request.body) if self.request.body else None
            hub.calls.append((*key, body))
            queue = hub.script.get(key)
            if not queue:
                if key == ("GET", "/") and key in hub.last:
                    queue = [hub.last[key]]  # the Hub's version stays what it last said
                else:
                    raise web.HTTPError(418, f"unscripted call {key}")  # fails the test loudly
            status, payload, *rest = hub.last[key] = queue.pop(0)
            if status is None:  # hang until released, like a stopped (SIGSTOP) Hub
                await hub.release.wait()
                status = 200
            headers = rest[0] if rest else {}
            self.set_status(status)
            for k, v in headers.items():
                self.set_header(k, v)
            if payload is not None:
                self.finish(json.dumps(payload))

        get = post = delete = _answer

    class ProgressHandler(web.RequestHandler):
        """An endless progress stream: one event, then silence until the reader leaves."""

        async def get(self, *args):
            if self.request.headers.get("Accept") != "text/event-stream":
                raise web.HTTPError(418, "unscripted progress read")  # as unscripted calls are
            self.closed = asyncio.Event()
            self.set_header("Content-Type", "text/event-stream")
            self.write('data: {"progress": 10, "message": "working"}\n\n')
            await self.flush()
            await self.closed.wait()

        def on_connection_close(self):
            hub.closed_streams += 1
            self.closed.set()

    sock, port = bind_unused_port()
    server = HTTPServer(
        web.Application([(r"/hub/api/users/[^/]+/servers/[^/]+/progress", ProgressHandler), (r"/hub/api.*", Handler)])
    )
    server.add_sockets([sock])
    hub.url = f"http://127.0.0.1:{port}/hub/api"
    yield hub
    server.stop()


def client_for(hub: FakeHub, **kw) -> HubClient:
    kw.setdefault("backoff_base", 0.01)
    return HubClient(api_url=hub.url, api_token="service-token", **kw)


async def test_safe_calls_are_retried_on_5xx(fake_hub):
    fake_hub.answer("GET", "/users/alice", (503, {"message": "busy"}), (502, None), (200, user_model()))
    model = await client_for(fake_hub).get_user("alice")
    assert model["name"] == "alice"
    assert fake_hub.count("GET", "/users/alice") == 3


async def test_retries_stop_after_max_retries(fake_hub):
    fake_hub.answer("GET", "/users/alice", *[(500, None)] * 5)
    with pytest.raises(HubError) as e:
        await client_for(fake_hub, max_retries=2).get_user("alice")
    assert e.value.status_code == 502
    assert fake_hub.count("GET", "/users/alice") == 3


async def test_429_retry_after_is_honoured(fake_hub):
    fake_hub.answer("GET", "/users/alice", (429, None, {"Retry-After": "0"}), (200, user_model()))
    assert (await client_for(fake_hub).get_user("alice"))["name"] == "alice"
    assert fake_hub.count("GET", "/users/alice") == 2


async def test_unreachable_hub_is_503():
    client = HubClient(api_url="http://127.0.0.1:1/hub/api", api_token="t", max_retries=1, backoff_base=0.01)
    with pytest.raises(HubUnavailable) as e:
        await client.get_user("alice")
    assert e.value.status_code == 503 and "not reachable" in e.value.message


async def test_start_is_not_retried_and_a_5xx_means_read_the_state(fake_hub):
    # JupyterHub 6.1 answers 500 when a spawn outlives slow_spawn_timeout, yet the spawn goes on
    fake_hub.answer("GET", "/", (200, {"version": "6.1.1"}))
    fake_hub.answer("GET", "/users/alice", (200, user_model({"alpha-python": server_model(False, "spawn")})))
    fake_hub.answer("POST", "/users/alice/servers/alpha-python", (500, {"message": "InvalidStateError"}))
    server, started = await client_for(fake_hub).start_server(
        "alice", "alpha-python", "alpha/python", {"workspace": "alpha"}
    )
    assert server["pending"] == "spawn" and started
    assert fake_hub.count("POST", "/users/alice/servers/alpha-python") == 1
    body = [b for m, p, b in fake_hub.calls if m == "POST"][0]
    assert body == {"display_name": "alpha/python", "user_options": {"workspace": "alpha"}}


async def test_start_on_jupyterhub_5_sends_user_options_as_the_body(fake_hub):
    fake_hub.answer("GET", "/", (200, {"version": "5.3.0"}))
    fake_hub.answer("GET", "/users/alice", (200, user_model({"alpha-python": server_model()})))
    fake_hub.answer("POST", "/users/alice/servers/alpha-python", (201, None))
    await client_for(fake_hub).start_server("alice", "alpha-python", "alpha/python", {"workspace": "alpha"})
    body = [b for m, p, b in fake_hub.calls if m == "POST"][0]
    assert body == {"workspace": "alpha"}


async def test_start_that_vanishes_is_a_clear_502(fake_hub):
    fake_hub.answer("GET", "/", (200, {"version": "6.1.1"}))
    fake_hub.answer("GET", "/users/alice", (200, user_model()), (200, user_model()))
    fake_hub.answer("POST", "/users/alice/servers/alpha-python", (202, None))
    with pytest.raises(HubError) as e:
        await client_for(fake_hub).start_server("alice", "alpha-python", "alpha/python", {})
    assert "failed to start" in e.value.message
    assert isinstance(e.value, SpawnFailed)


async def test_start_while_stopping_is_409(fake_hub):
    fake_hub.answer("GET", "/", (200, {"version": "6.1.1"}))
    fake_hub.answer(
        "POST", "/users/alice/servers/alpha-python", (400, {"message": "alice:alpha-python is pending stop"})
    )
    with pytest.raises(ServerBusy) as e:
        await client_for(fake_hub).start_server("alice", "alpha-python", "alpha/python", {})
    assert e.value.status_code == 409 and "stopping" in e.value.message
    assert fake_hub.count("GET", "/users/alice") == 0  # the Hub's answer said it all


@pytest.mark.parametrize(
    "hub_answer, error",
    [
        ((400, {"message": "alice:alpha-python is pending stop"}), ServerBusy),
        ((400, {"message": "User alice already has the maximum of 2 named servers."}), InvalidRequest),
        ((403, {"message": "Action is not authorized"}), HubError),
    ],
)
async def test_hub_refusals_map_to_our_errors(fake_hub, hub_answer, error):
    fake_hub.answer("GET", "/", (200, {"version": "6.1.1"}))
    fake_hub.answer("GET", "/users/alice", (200, user_model()))
    fake_hub.answer("POST", "/users/alice/servers/alpha-python", hub_answer)
    with pytest.raises(error) as e:
        await client_for(fake_hub).start_server("alice", "alpha-python", "alpha/python", {})
    assert e.value.message  # says something a person can act on


async def test_already_running_is_not_an_error(fake_hub):
    fake_hub.answer("GET", "/", (200, {"version": "6.1.1"}))
    fake_hub.answer("GET", "/users/alice", (200, user_model({"alpha-python": server_model()})))
    fake_hub.answer(
        "POST", "/users/alice/servers/alpha-python", (400, {"message": "alice:alpha-python is already running"})
    )
    server, started = await client_for(fake_hub).start_server("alice", "alpha-python", "alpha/python", {})
    assert server["ready"] is True and not started


@pytest.mark.parametrize("status, stopped", [(204, True), (404, True), (202, False)])
async def test_stop_is_idempotent(fake_hub, status, stopped):
    fake_hub.answer("DELETE", "/users/alice/servers/alpha-python", (status, None))
    assert await client_for(fake_hub).stop_server("alice", "alpha-python") is stopped
    assert fake_hub.calls[-1][2] == {"remove": True}


async def test_a_refused_request_leaves_no_cycle_for_the_garbage_collector(fake_hub):
    # each of the Hub's 404s (a stopped server, an unknown user) used to leave its response in a
    # reference cycle with tornado's HTTPClientError, buffers and all, until the next full collection
    fake_hub.answer("DELETE", "/users/alice/servers/alpha-python", *[(404, None)] * 3)
    client = client_for(fake_hub)
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(3):
            assert await client.stop_server("alice", "alpha-python") is True
        gc.collect()
        left = [o for o in gc.garbage if isinstance(o, (HTTPResponse, HTTPClientError))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left == []


async def test_operations_on_one_server_are_serialised(fake_hub):
    fake_hub.answer("GET", "/", (200, {"version": "6.1.1"}))
    running = user_model({"alpha-python": server_model()})
    fake_hub.answer("GET", "/users/alice", (200, running), (200, running))
    fake_hub.answer(
        "POST",
        "/users/alice/servers/alpha-python",
        (201, None),
        (400, {"message": "alice:alpha-python is already running"}),
    )
    client = client_for(fake_hub)
    first, second = await asyncio.gather(
        client.start_server("alice", "alpha-python", "alpha/python", {}),
        client.start_server("alice", "alpha-python", "alpha/python", {}),
    )
    assert first[0] == second[0] and (first[1], second[1]) == (True, False)
    # the second start waited for the first to finish before it asked the Hub
    calls = [(m, p) for m, p, _ in fake_hub.calls if p != "/"]
    assert calls == [("POST", "/users/alice/servers/alpha-python"), ("GET", "/users/alice")] * 2


async def test_concurrent_reads_of_a_user_share_one_hub_call(fake_hub):
    fake_hub.answer("GET", "/users/alice", (200, user_model()))
    client = client_for(fake_hub)
    models = await asyncio.gather(*[client.get_user("alice") for _ in range(20)])
    assert all(m["name"] == "alice" for m in models)
    assert fake_hub.count("GET", "/users/alice") == 1


async def test_repeated_reads_within_the_cache_time_cost_one_call(fake_hub):
    fake_hub.answer("GET", "/users/alice", *[(200, user_model())] * 3)
    client = client_for(fake_hub, user_cache_seconds=60)
    for _ in range(5):
        await client.get_user("alice")
    assert fake_hub.count("GET", "/users/alice") == 1
    uncached = client_for(fake_hub, user_cache_seconds=0)
    await uncached.get_user("alice")
    await uncached.get_user("alice")
    assert fake_hub.count("GET", "/users/alice") == 3


async def test_a_stop_forgets_the_cached_user(fake_hub):
    running = user_model({"alpha-python": server_model()})
    fake_hub.answer("GET", "/users/alice", (200, running), (200, user_model()))
    fake_hub.answer("DELETE", "/users/alice/servers/alpha-python", (204, None))
    client = client_for(fake_hub, user_cache_seconds=60)
    assert "alpha-python" in (await client.get_user("alice"))["servers"]
    await client.stop_server("alice", "alpha-python")
    assert (await client.get_user("alice"))["servers"] == {}  # read again, not the cached copy


async def test_a_read_in_flight_during_a_stop_does_not_refill_the_cache(fake_hub):
    running = user_model({"alpha-python": server_model()})
    fake_hub.answer("GET", "/users/alice", (None, running), (200, user_model()))
    fake_hub.answer("DELETE", "/users/alice/servers/alpha-python", (204, None))
    client = client_for(fake_hub, user_cache_seconds=60)
    early = asyncio.ensure_future(client.get_user("alice"))  # hangs at the Hub
    await wait_until(lambda: fake_hub.count("GET", "/users/alice") == 1)
    await client.stop_server("alice", "alpha-python")
    fake_hub.release.set()
    assert "alpha-python" in (await early)["servers"]  # its answer predates the stop
    assert (await client.get_user("alice"))["servers"] == {}  # but it was not cached


async def test_a_hung_hub_answers_503_within_the_budget(fake_hub):
    fake_hub.answer("GET", "/users/alice", *[(None, user_model())] * 6)
    client = client_for(fake_hub, request_timeout=60)
    with time_budget(0.5), pytest.raises(HubUnavailable) as e:
        await client.get_user("alice")
    assert e.value.status_code == 503 and e.value.retry_after
    assert "in time" in e.value.message or "not reachable" in e.value.message


async def test_a_request_waits_for_a_busy_server_only_within_its_budget(fake_hub):
    client = client_for(fake_hub)
    async with client._locked("alice", "alpha-python"):  # another start holds the server
        with time_budget(0.2), pytest.raises(ServerBusy) as e:
            await client.stop_server("alice", "alpha-python")
    assert e.value.status_code == 409 and e.value.retry_after
    assert not client.server_lock("alice", "alpha-python").locked()  # nothing leaked
    assert fake_hub.count("DELETE", "/users/alice/servers/alpha-python") == 0


async def test_the_connection_pool_is_bounded_and_its_waits_too(fake_hub):
    fake_hub.answer("GET", "/users/alice", (None, user_model()))
    fake_hub.answer("GET", "/users/bob", (200, user_model()))
    client = client_for(fake_hub, concurrency=1, request_timeout=60)
    hung = asyncio.ensure_future(client.get_user("alice"))
    await wait_until(lambda: fake_hub.count("GET", "/users/alice") == 1)
    with time_budget(0.3), pytest.raises(HubUnavailable):
        await client.get_user("bob")  # the one connection is taken
    assert fake_hub.count("GET", "/users/bob") == 0
    fake_hub.release.set()
    await hung
    assert (await client.get_user("bob"))["name"] == "alice"  # the pool is free again


async def test_closing_a_progress_stream_closes_its_connection(fake_hub):
    client = client_for(fake_hub)
    events = client.progress_events("alice", "alpha-python")
    assert (await events.__anext__())["message"] == "working"
    await events.aclose()
    await wait_until(lambda: fake_hub.closed_streams == 1)


async def wait_until(predicate, timeout: float = 10):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_a_user_with_a_server_starting_is_read_fresh_each_time(fake_hub):
    starting = user_model({"alpha-python": server_model(False, "spawn")})
    fake_hub.answer("GET", "/users/alice", (200, starting), (200, user_model({"alpha-python": server_model()})))
    client = client_for(fake_hub, user_cache_seconds=60)
    assert (await client.get_user("alice"))["servers"]["alpha-python"]["pending"] == "spawn"
    assert (await client.get_user("alice"))["servers"]["alpha-python"]["ready"] is True  # not the cached 'starting'


async def test_a_start_of_a_server_already_starting_returns_it(fake_hub):
    fake_hub.answer("GET", "/", (200, {"version": "6.1.1"}))
    fake_hub.answer("GET", "/users/alice", (200, user_model({"alpha-python": server_model(False, "spawn")})))
    # the Hub answers 202 to a start already pending, as to a new one (apihandlers/users.py)
    fake_hub.answer("POST", "/users/alice/servers/alpha-python", (202, None))
    server, _ = await client_for(fake_hub).start_server("alice", "alpha-python", "alpha/python", {})
    assert server["pending"] == "spawn"  # which of the two it was, the caller's model of the user says


async def test_a_full_set_of_named_servers_names_the_stopped_ones_to_remove(fake_hub):
    fake_hub.answer("GET", "/", (200, {"version": "6.1.1"}))
    failed = {**server_model(False), "stopped": True, "display_name": "beta/python"}
    fake_hub.answer("GET", "/users/alice", (200, user_model({"beta-python": failed})))
    fake_hub.answer(
        "POST",
        "/users/alice/servers/alpha-python",
        (
            400,
            {
                "message": "User alice already has the maximum of 1 named servers.  One must be deleted before a new server can be created"
            },
        ),
    )
    with pytest.raises(InvalidRequest, match=r"Stopped servers still count: remove one first \(beta/python\)"):
        await client_for(fake_hub).start_server("alice", "alpha-python", "alpha/python", {})


async def test_stopped_servers_are_kept_apart_from_active_ones(fake_hub):
    failed = {**server_model(False), "stopped": True}
    fake_hub.answer("GET", "/users/alice", (200, user_model({"beta-python": failed, "alpha-python": server_model()})))
    model = await client_for(fake_hub).get_user("alice")
    assert list(model["servers"]) == ["alpha-python"] and list(model["stopped_servers"]) == ["beta-python"]


async def test_a_hub_rolled_back_to_5_gets_a_5_start_body_without_a_restart(fake_hub):
    fake_hub.answer("GET", "/", (200, {"version": "6.1.1"}), (200, {"version": "5.5.4"}))
    # the 6.x body reaches a 5.5 Hub as user_options: the guard refuses it, the spawn fails at once
    fake_hub.answer("POST", "/users/alice/servers/alpha-python", (202, None), (202, None))
    fake_hub.answer(
        "GET",
        "/users/alice",
        (200, user_model()),
        (200, user_model({"alpha-python": server_model(False, "spawn")})),
    )
    server, started = await client_for(fake_hub).start_server(
        "alice", "alpha-python", "alpha/python", {"workspace": "alpha", "image": "python"}
    )
    assert started and server["pending"] == "spawn"
    bodies = [b for m, p, b in fake_hub.calls if m == "POST"]
    assert bodies == [
        {"display_name": "alpha/python", "user_options": {"workspace": "alpha", "image": "python"}},
        {"workspace": "alpha", "image": "python"},
    ]


async def test_a_refused_start_on_an_unchanged_hub_is_not_sent_twice(fake_hub):
    fake_hub.answer("GET", "/", (200, {"version": "6.1.1"}), (200, {"version": "6.1.1"}))
    fake_hub.answer("POST", "/users/alice/servers/alpha-python", (400, {"message": "bad options"}))
    with pytest.raises(InvalidRequest, match="bad options"):
        await client_for(fake_hub).start_server("alice", "alpha-python", "alpha/python", {})
    assert fake_hub.count("POST", "/users/alice/servers/alpha-python") == 1
    assert fake_hub.count("GET", "/") == 2  # read again on the refusal


async def test_the_hubs_version_is_read_again_after_a_while(fake_hub):
    fake_hub.answer("GET", "/", (200, {"version": "6.1.1"}), (200, {"version": "5.5.4"}))
    client = client_for(fake_hub, hub_version_seconds=0.2)
    assert await client.hub_version() == (6, 1)
    assert await client.hub_version() == (6, 1)  # trusted for a while: one call
    assert fake_hub.count("GET", "/") == 1

    async def rolled_back():
        while await client.hub_version() != (5, 5):
            await asyncio.sleep(0.05)

    await asyncio.wait_for(rolled_back(), 10)
    assert fake_hub.count("GET", "/") == 2


JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MX0.c2lnbmF0dXJlLW5vdC1yZWFs"


async def test_a_hub_5xx_text_is_never_passed_on_nor_logged(fake_hub, caplog):
    # OAuthenticator 17.4's refresh_user with an expired ID token (oauthenticator#793)
    said = f"Unable to decode id token: {JWT}: Signature has expired"
    fake_hub.answer("GET", "/", (200, {"version": "6.1.1"}))
    fake_hub.answer("POST", "/users/alice/servers/alpha-python", (500, {"status": 500, "message": said}))
    fake_hub.answer("GET", "/users/alice", (200, user_model()))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SpawnFailed) as e:
        await client_for(fake_hub).start_server("alice", "alpha-python", "alpha/python", {})
    assert JWT not in e.value.message and "decode" not in e.value.message
    assert "answered 500" in e.value.message and "log in again" in e.value.message
    assert JWT not in caplog.text and "decode" not in caplog.text
    # any other 5xx we did not expect: our words, and the Hub's text stays out of our log
    fake_hub.answer("GET", "/users/bob", *[(500, {"message": said})] * 5)
    with pytest.raises(HubError) as e:
        await client_for(fake_hub, max_retries=0).get_user("bob")
    assert JWT not in e.value.message and "Hub's log" in e.value.message
    assert JWT not in caplog.text


async def test_the_readiness_probe_takes_no_slot_of_a_full_pool(fake_hub):
    fake_hub.answer("GET", "/users/alice", (None, user_model()))  # hangs, holding the pool's one connection
    fake_hub.answer("GET", "/", (200, {"version": "6.1.1"}))
    client = client_for(fake_hub, concurrency=1, request_timeout=60)
    hung = asyncio.ensure_future(client.get_user("alice"))
    await wait_until(lambda: fake_hub.count("GET", "/users/alice") == 1)
    await asyncio.wait_for(client.check_ready(timeout=5), 10)  # answered, although users' calls must wait
    fake_hub.release.set()
    await hung


async def test_the_readiness_probe_has_its_own_time_limit(fake_hub):
    fake_hub.answer("GET", "/", (None, {"version": "6.1.1"}))  # a Hub that accepts and never answers
    client = client_for(fake_hub)
    with pytest.raises(HubUnavailable, match="not reachable"):
        await asyncio.wait_for(client.check_ready(timeout=0.3), 10)
    fake_hub.release.set()


@pytest.mark.hub_version
async def test_lists_are_read_to_their_end_where_the_hub_pages_them_shorter_than_asked(tmp_path):
    """With api_page_max_limit 1, every page of the active users holds one: a short page is not the
    last one, ``_pagination.next`` says. Both users' servers are counted, and both shares listed."""
    from notebooks_service.hubshares import HubShares

    from conftest import ADMIN_TOKEN, admin_request, running_hub, start_body, wait_for

    config = tmp_path / "one_per_page.py"
    config.write_text(
        f"load_subconfig({os.path.join(os.path.dirname(__file__), 'hub_test_config.py')!r})\n"
        "get_config().JupyterHub.api_page_max_limit = 1\n"
    )
    with running_hub(tmp_path / "hub", extra_config=str(config)) as hub:
        for user in ("alice", "bob"):
            code, body = admin_request(
                hub,
                "POST",
                f"/users/{user}/servers/alpha-minimal",
                start_body(hub, {"workspace": "alpha", "image": "minimal"}),
            )
            assert code in (201, 202), body
        for user in ("alice", "bob"):
            wait_for(
                lambda u=user: admin_request(hub, "GET", f"/users/{u}")[1]["servers"]["alpha-minimal"]["ready"],
                message=f"{user}'s server to be ready",
            )
        assert admin_request(hub, "POST", "/groups/readers")[0] in (201, 409)
        for whom in ({"user": "bob"}, {"group": "readers"}):
            code, body = admin_request(hub, "POST", "/shares/alice/alpha-minimal", whom)
            assert code == 200, body
        client = HubClient(api_url=f"{hub.url}/hub/api", api_token=ADMIN_TOKEN)
        try:
            running = await client.running_servers(fresh=True)
            assert sorted(s.user for s in running) == ["alice", "bob"]
            shares = await HubShares(client).of_server("alice", "alpha-minimal")
            assert sorted((s.get("user") or s.get("group"))["name"] for s in shares) == ["bob", "readers"]
        finally:
            client.close()
