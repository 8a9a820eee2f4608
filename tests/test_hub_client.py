"""HubClient's retry policy and answer mapping, against a scripted fake Hub over real HTTP.

The real Hub cannot be made to answer 503 or 429 on demand; this small server can.
"""

import asyncio
import json

import pytest
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from notebooks_service.errors import HubError, HubUnavailable, InvalidRequest, ServerBusy, SpawnFailed
from notebooks_service.hub import HubClient


class FakeHub:
    """Answers each (method, path) from a queue of (status, body, headers); records every call."""

    def __init__(self):
        self.script: dict[tuple[str, str], list] = {}
        self.calls: list[tuple[str, str, object]] = []
        self.url = ""

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
        def _answer(self, *args):
            path = self.request.path.removeprefix("/hub/api")
            key = (self.request.method, path)
            body = json.loads(self.request.body) if self.request.body else None
            hub.calls.append((*key, body))
            queue = hub.script.get(key)
            if not queue:
                raise web.HTTPError(418, f"unscripted call {key}")  # fails the test loudly
            status, payload, *rest = queue.pop(0)
            headers = rest[0] if rest else {}
            self.set_status(status)
            for k, v in headers.items():
                self.set_header(k, v)
            if payload is not None:
                self.finish(json.dumps(payload))

        get = post = delete = _answer

    sock, port = bind_unused_port()
    server = HTTPServer(web.Application([(r"/hub/api.*", Handler)]))
    server.add_sockets([sock])
    hub.url = f"http://127.0.0.1:{port}/hub/api"
    yield hub
    server.stop()


def client_for(hub: FakeHub, **kw) -> HubClient:
    kw.setdefault("backoff_base", 0.01)
    return HubClient(hub.url, "service-token", **kw)


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
    client = HubClient("http://127.0.0.1:1/hub/api", "t", max_retries=1, backoff_base=0.01)
    with pytest.raises(HubUnavailable) as e:
        await client.get_user("alice")
    assert e.value.status_code == 503 and "not reachable" in e.value.message


async def test_start_is_not_retried_and_a_5xx_means_read_the_state(fake_hub):
    # JupyterHub 6.1 answers 500 when a spawn outlives slow_spawn_timeout, yet the spawn goes on
    fake_hub.answer("GET", "/", (200, {"version": "6.1.1"}))
    fake_hub.answer(
        "GET", "/users/alice", (200, user_model()), (200, user_model({"alpha-python": server_model(False, "spawn")}))
    )
    fake_hub.answer("POST", "/users/alice/servers/alpha-python", (500, {"message": "InvalidStateError"}))
    server = await client_for(fake_hub).start_server("alice", "alpha-python", "alpha/python", {"workspace": "alpha"})
    assert server["pending"] == "spawn"
    assert fake_hub.count("POST", "/users/alice/servers/alpha-python") == 1
    body = [b for m, p, b in fake_hub.calls if m == "POST"][0]
    assert body == {"display_name": "alpha/python", "user_options": {"workspace": "alpha"}}


async def test_start_on_jupyterhub_5_sends_user_options_as_the_body(fake_hub):
    fake_hub.answer("GET", "/", (200, {"version": "5.3.0"}))
    fake_hub.answer("GET", "/users/alice", (200, user_model()), (200, user_model({"alpha-python": server_model()})))
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
    fake_hub.answer("GET", "/users/alice", (200, user_model({"alpha-python": server_model(False, "stop")})))
    with pytest.raises(ServerBusy) as e:
        await client_for(fake_hub).start_server("alice", "alpha-python", "alpha/python", {})
    assert e.value.status_code == 409 and "stopping" in e.value.message
    assert fake_hub.count("POST", "/users/alice/servers/alpha-python") == 0


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
    fake_hub.answer("GET", "/users/alice", (200, user_model()), (200, user_model({"alpha-python": server_model()})))
    fake_hub.answer(
        "POST", "/users/alice/servers/alpha-python", (400, {"message": "alice:alpha-python is already running"})
    )
    server = await client_for(fake_hub).start_server("alice", "alpha-python", "alpha/python", {})
    assert server["ready"] is True


@pytest.mark.parametrize("status, stopped", [(204, True), (404, True), (202, False)])
async def test_stop_is_idempotent(fake_hub, status, stopped):
    fake_hub.answer("DELETE", "/users/alice/servers/alpha-python", (status, None))
    assert await client_for(fake_hub).stop_server("alice", "alpha-python") is stopped
    assert fake_hub.calls[-1][2] == {"remove": True}


async def test_operations_on_one_server_are_serialised(fake_hub):
    fake_hub.answer("GET", "/", (200, {"version": "6.1.1"}))
    fake_hub.answer(
        "GET",
        "/users/alice",
        (200, user_model()),
        (200, user_model({"alpha-python": server_model()})),
        (200, user_model({"alpha-python": server_model()})),
    )
    fake_hub.answer("POST", "/users/alice/servers/alpha-python", (201, None))
    client = client_for(fake_hub)
    first, second = await asyncio.gather(
        client.start_server("alice", "alpha-python", "alpha/python", {}),
        client.start_server("alice", "alpha-python", "alpha/python", {}),
    )
    assert first == second
    # the second call waited for the first, saw the server, and did not POST again
    assert fake_hub.count("POST", "/users/alice/servers/alpha-python") == 1
