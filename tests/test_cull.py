"""The demo's jupyterhub-idle-culler (the version z2jh ships, with z2jh's role) against the real Hub.

After the culler stops a server, the service tells the truth (gone: 404, listed
as stopped) and starts it again cleanly.
"""

import asyncio
import datetime
import time

import pytest

from conftest import Tokens, admin_request, running_hub, stop_all_servers
from service_client import ServiceClient

pytestmark = pytest.mark.hub_version  # the second pass of `make test` runs it on z2jh 4.4.0's Hub too

IDLE_SECONDS = 5  # short, so the test is quick; long enough to see the server ready first


@pytest.fixture(scope="module")
def cull_hub(tmp_path_factory):
    env = {"NOTEBOOKS_DEMO_CULL_TIMEOUT": str(IDLE_SECONDS), "NOTEBOOKS_DEMO_CULL_EVERY": "1"}
    with running_hub(tmp_path_factory.mktemp("cull-hub"), env=env) as hub:
        yield hub


@pytest.fixture
def alice(cull_hub):
    client = ServiceClient(cull_hub, Tokens(cull_hub)["alice"])
    yield client
    client.close()
    stop_all_servers(cull_hub, "alice")


def parse(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


async def gone(client: ServiceClient, path: str, timeout: float = 60) -> dict:
    """Poll until the service says the server is not running; its answer."""
    deadline = time.monotonic() + timeout
    while True:
        code, body = await client.json("GET", path)
        if code == 404:
            return body
        assert code == 200, body
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} still there after {timeout}s: {body}")
        await asyncio.sleep(0.5)


async def test_a_culled_server_is_reported_gone_and_starts_again(cull_hub, alice):
    code, body = await alice.json("POST", "alpha/minimal")
    assert code in (201, 202), body
    first = await alice.wait_ready("alpha/minimal")

    # the culler stops it once idle: the service says so, as the Hub does
    body = await gone(alice, "alpha/minimal")
    assert body == {"status": 404, "message": "You have no server for alpha/minimal."}
    _, model = admin_request(cull_hub, "GET", "/users/alice")
    assert "alpha-minimal" not in model["servers"]  # stopped, not pending or running
    code, listing = await alice.json("GET", "")
    [entry] = [s for s in listing if s["name"] == "alpha-minimal"]
    assert entry["stopped"] and not entry["ready"]  # kept by the Hub (z2jh's default), as the list says

    # and it starts again cleanly, at the same address
    code, body = await alice.json("POST", "alpha/minimal")
    assert code in (201, 202), body
    again = await alice.wait_ready("alpha/minimal")
    assert again["url"] == first["url"]


async def test_a_kept_server_outlives_the_cull_cycle_and_an_untouched_one_does_not(cull_hub, alice):
    for path in ("alpha/minimal", "beta/minimal"):
        code, body = await alice.json("POST", path)
        assert code in (201, 202), body
    kept = await alice.wait_ready("beta/minimal")
    await alice.wait_ready("alpha/minimal")
    assert kept["culls_at"]  # the service knows the culler's timeout (the demo passes it on)

    async def keep_until(done) -> None:
        """'Keep running' once a second (as a person would press it) until ``done()`` answers."""
        deadline = time.monotonic() + 60
        while not await done():
            code, body = await alice.json("POST", "beta/minimal/-/activity")
            assert code == 204, body
            assert time.monotonic() < deadline, "the untouched server was never culled"
            await asyncio.sleep(1)

    async def untouched_is_gone() -> bool:
        return (await alice.json("GET", "alpha/minimal"))[0] == 404

    await keep_until(untouched_is_gone)
    # the kept one started as early, and has now lived past several culls of its idle time
    began = time.monotonic()

    async def two_timeouts_later() -> bool:
        return time.monotonic() - began > IDLE_SECONDS + 2

    await keep_until(two_timeouts_later)
    code, model = await alice.json("GET", "beta/minimal")
    assert code == 200 and model["ready"] and model["started"] == kept["started"]
    assert parse(model["culls_at"]) > parse(kept["culls_at"])  # moved on with each keep
    code, listing = await alice.json("GET", "")
    assert {s["name"]: s["stopped"] for s in listing} == {"alpha-minimal": True, "beta-minimal": False}

    # left alone, it goes the same way: the keeping was what kept it
    body = await gone(alice, "beta/minimal")
    assert body["message"] == "You have no server for beta/minimal."
