"""A crowd, a hung Hub and a shutdown, against the real Hub (issue: stay up for everyone).

Browsers are raw connections here, so that a test can really hang up. The
service reaches the Hub through ``HubMeter``, which shows from outside how many
upstream progress streams it holds.
"""

import asyncio
import json
import os
import re
import signal

import pytest

from notebooks_service.demo.app import SERVICE_CONFIG as DEMO_SERVICE_CONFIG
from notebooks_service.demo.app import free_port

from conftest import ADMIN_TOKEN, set_spawn_delay, wait_for
from hub_meter import HubMeter
from service_processes import start_service

pytestmark = pytest.mark.usefixtures("clean_servers")

_EVENT = re.compile(rb"data: (\{.*?\})\n\n")


class Browser:
    """One raw HTTP connection following a progress stream through the Hub's proxy."""

    def __init__(self, reader, writer, status: int, head: bytes):
        self.reader, self.writer = reader, writer
        self.status = status
        self.head = head
        self.buffer = b""

    @classmethod
    async def open(cls, host: str, port: int, path: str, token: str) -> "Browser":
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: token {token}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        return cls(reader, writer, int(head.split()[1]), head)

    def header(self, name: str) -> str | None:
        match = re.search(rb"(?im)^" + name.encode() + rb":\s*(.*?)\r$", self.head)
        return match.group(1).decode() if match else None

    async def event(self, timeout: float = 30) -> dict | None:
        """The next event, or None once the stream has ended."""
        while not (match := _EVENT.search(self.buffer)):
            chunk = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not chunk:
                return None
            self.buffer += chunk
        self.buffer = self.buffer[match.end() :]
        return json.loads(match.group(1))

    async def events_until_end(self, timeout: float = 30) -> list[dict]:
        events = []
        while (event := await self.event(timeout)) is not None:
            events.append(event)
        return events

    def hang_up(self) -> None:
        self.writer.close()


async def follow(hub, path: str, token: str) -> Browser:
    return await Browser.open(hub.ip, hub.port, f"/services/notebooks/{path}", token)


async def poll(predicate, timeout: float = 10, message: str = "condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {message}"
        await asyncio.sleep(0.05)


async def poll_async(call, done, timeout: float = 10):
    deadline = asyncio.get_running_loop().time() + timeout
    while not done(await call()):
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_one_upstream_for_many_watchers_and_late_joiners_catch_up(client, hub, tokens):
    set_spawn_delay(hub, 60)  # stays pending while we watch
    code, _ = await client("alice").json("POST", "alpha/python")
    assert code == 202
    first = await follow(hub, "alpha/python/-/progress", tokens["alice"])
    assert first.status == 200
    opening = await first.event()
    others = [await follow(hub, "alpha/python/-/progress", tokens["alice"]) for _ in range(4)]
    for browser in others:
        assert await browser.event() == opening  # what the first watcher saw, replayed
    await poll(lambda: hub.meter.open_streams == 1, message="a single upstream stream")
    assert hub.meter.open_streams == 1
    for browser in [first, *others]:
        browser.hang_up()
    # closed when the last browser leaves, not at the Hub's next event (a minute away)
    await poll(lambda: hub.meter.open_streams == 0, timeout=5, message="the upstream to close")


async def test_fifty_streams_leave_room_for_everyone_else_and_the_cap_says_so(client, hub, tokens):
    set_spawn_delay(hub, 60)
    alice = client("alice")
    servers = ["alpha/python", "alpha/minimal", "beta/python"]
    for path in servers:
        code, _ = await alice.json("POST", path)
        assert code == 202
    browsers = []
    try:
        for i in range(50):  # the test Hub's service allows 50 per user
            browser = await follow(hub, f"{servers[i % 3]}/-/progress", tokens["alice"])
            assert browser.status == 200
            assert await browser.event()
            browsers.append(browser)
        # another user is answered at once, with the Hub's answer
        code, servers_of_bob = await client("bob").json("GET", "", request_timeout=10)
        assert code == 200 and servers_of_bob == []
        assert hub.meter.open_streams == 3  # one per server, not one per browser
        # one more is refused clearly, not left hanging
        extra = await follow(hub, "alpha/python/-/progress", tokens["alice"])
        assert extra.status == 429 and int(extra.header("Retry-After")) > 0
        extra.hang_up()
    finally:
        for browser in browsers:
            browser.hang_up()
    await poll(lambda: hub.meter.open_streams == 0, message="every upstream to close")


async def test_a_stopped_hub_gives_503_within_the_budget_and_the_service_recovers(client, hub, tokens):
    alice = client("alice")
    assert (await alice.json("GET", ""))[0] == 200  # alice's login is known to the service
    fresh = client(None)
    fresh.token = tokens.new("bob")  # a login the service has never checked
    os.kill(hub.process.pid, signal.SIGSTOP)
    try:
        for who in (alice, fresh):
            # the test Hub's service has a 5 s budget; a hang would outlast this client's 20 s
            response = await who.request("GET", "", request_timeout=20)
            if response.code == 200 and who is alice:  # from the service's 1 s cache: wait it out
                await poll_async(lambda: alice.request("GET", "", request_timeout=20), lambda r: r.code != 200)
                response = await who.request("GET", "", request_timeout=20)
            assert response.code == 503, response.body
            assert int(response.headers["Retry-After"]) > 0
            assert "Hub" in json.loads(response.body)["message"]
    finally:
        os.kill(hub.process.pid, signal.SIGCONT)

    async def answers():
        return (await alice.json("GET", ""))[0] == 200 and (await fresh.json("GET", ""))[0] == 200

    deadline = asyncio.get_running_loop().time() + 30
    while not await answers():
        assert asyncio.get_running_loop().time() < deadline, "the service did not recover"
        await asyncio.sleep(0.2)
    code, body = await alice.json("GET", "ready")
    assert code == 200 and body["hub"] == "ok"


@pytest.fixture
def external_service(hub, tmp_path):
    """notebooks-service as its own process against the test Hub, through a meter that can delay answers."""
    meter = HubMeter(hub.hub_port)
    port = free_port()
    log_path = tmp_path / "service.log"
    process = start_service(
        port,
        log_path,
        "--config",
        DEMO_SERVICE_CONFIG,
        "--HubClient.user_cache_seconds=0",
        JUPYTERHUB_API_TOKEN=ADMIN_TOKEN,
        JUPYTERHUB_API_URL=meter.url,
    )
    service = type("Service", (), dict(process=process, port=port, meter=meter, log_path=log_path))
    try:
        wait_for(lambda: _answers(port), timeout=30, message="the service to listen")
        yield service
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        meter.close()


def _answers(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/services/notebooks/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


async def test_sigterm_finishes_requests_in_flight_and_tells_streams_to_reconnect(
    client, hub, tokens, external_service
):
    service = external_service
    set_spawn_delay(hub, 60)
    alice = client("alice")
    alice_direct = f"http://127.0.0.1:{service.port}/services/notebooks/"
    assert (await alice.json("POST", alice_direct + "alpha/python"))[0] == 202
    stream = await Browser.open(
        "127.0.0.1", service.port, "/services/notebooks/alpha/python/-/progress", tokens["alice"]
    )
    assert stream.status == 200 and await stream.event()

    service.meter.delay = 2  # the Hub is slow: the next request is in flight for a while
    before = service.meter.count(r"^/hub/api/users/alice$")
    in_flight = asyncio.ensure_future(alice.json("GET", alice_direct))
    await poll(lambda: service.meter.count(r"^/hub/api/users/alice$") > before, message="the request to reach the Hub")
    service.process.send_signal(signal.SIGTERM)

    last = (await stream.events_until_end())[-1]
    assert last["reconnect"] is True and "restarting" in last["message"]
    code, servers = await in_flight
    assert code == 200 and [s["name"] for s in servers] == ["alpha-python"]
    assert service.process.wait(30) == 0
    log = service.log_path.read_text()
    assert "Traceback" not in log and "Stopped" in log
