"""Access that ends on the Hub ends in the shared server too, for what is already open.

Through the real Hub (both passes) and a real JupyterLab (the demo's image configuration, whose
servers ask the Hub again every NOTEBOOKS_ACCESS_RECHECK_SECONDS, 3 s on the test Hubs): bob, with
alpha/minimal shared with him, has a terminal and a kernel open in alice's server and a token the
server has already checked. When alice revokes the share, and (shared again) when bob leaves the
workspace, his connections are closed and his token refused, alice's own terminal stays, and
shared again he gets back in. The figures printed are docs/security.rst's.
"""

import asyncio
import json
import time

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from notebooks_service.demo import WORKSPACE_MEMBERS

from conftest import set_members
from hub_shares import JSON, hub_shares, share

pytestmark = [pytest.mark.hub_version, pytest.mark.usefixtures("clean_servers", "real_servers")]

RECHECK = 3  # hub_test_config.py's NOTEBOOKS_ACCESS_RECHECK_SECONDS
DEADLINE = 30  # generous for a loaded machine; the figures printed are what it took


class InServer:
    """One user's calls into a Jupyter server through the Hub's proxy, with one Hub token."""

    def __init__(self, hub, server_url: str, token: str):
        self.base = hub.url + server_url
        self.headers = {"Authorization": f"token {token}"}
        self.http = AsyncHTTPClient(force_instance=True)

    async def call(self, method: str, path: str, body=None) -> tuple[int, object]:
        response = await self.http.fetch(
            HTTPRequest(self.base + path, method=method, headers=self.headers, body=body, request_timeout=30),
            raise_error=False,
        )
        return response.code, json.loads(response.body) if response.code < 300 and response.body else None

    async def open(self, path: str):
        url = self.base.replace("http", "ws", 1) + path
        return await websocket_connect(HTTPRequest(url, headers=self.headers, request_timeout=30))

    async def terminal(self):
        """A new terminal and a connection to it."""
        code, model = await self.call("POST", "api/terminals", body=b"{}")
        assert code == 200, code
        return await self.open(f"terminals/websocket/{model['name']}"), model["name"]

    async def kernel(self):
        code, model = await self.call("POST", "api/kernels", body=b"{}")
        assert code == 201, code
        return await self.open(f"api/kernels/{model['id']}/channels")

    def close(self):
        self.http.close()


async def closed_within(connection, timeout: float) -> float:
    """Seconds until the server closes ``connection`` (reading whatever it sends meanwhile)."""
    began = time.monotonic()
    while await asyncio.wait_for(connection.read_message(), timeout) is not None:
        pass
    return time.monotonic() - began


async def answers(terminal, text: str, timeout: float = DEADLINE) -> bool:
    """Whether a terminal still runs what is typed into it (its output shows ``text`` echoed)."""
    terminal.write_message(json.dumps(["stdin", f"echo {text}\r"]))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = await asyncio.wait_for(terminal.read_message(), timeout)
        if message is None:
            return False
        if text in message:
            return True
    return False


async def refused_within(bob: InServer, timeout: float) -> float:
    began = time.monotonic()
    while (await bob.call("GET", "api/status"))[0] != 403:
        assert time.monotonic() - began < timeout, "bob's token still let in"
        await asyncio.sleep(0.1)
    return time.monotonic() - began


async def test_revoked_access_closes_open_terminals_and_kernels_and_refuses_cached_tokens(client, hub, tokens):
    alice = client("alice")
    await alice.json("POST", "alpha/minimal")
    server = await alice.wait_ready("alpha/minimal")
    owner, bob = InServer(hub, server["url"], tokens["alice"]), InServer(hub, server["url"], tokens.new("bob"))
    figures = {}
    try:
        assert await bob.call("GET", "api/status") == (403, None)  # not shared yet

        async def bob_is_in():
            """Shared with bob: his token (refused a moment ago) is let in, and he opens a terminal and a kernel."""
            assert (await share(alice, "alpha/minimal", ["bob"]))[0] == 200
            began = time.monotonic()
            while (await bob.call("GET", "api/status"))[0] != 200:
                assert time.monotonic() - began < DEADLINE, "bob not let in"
                await asyncio.sleep(0.1)
            terminal, _ = await bob.terminal()
            assert await answers(terminal, "bob-was-here")
            return terminal, await bob.kernel()

        mine, name = await owner.terminal()

        # 1. the owner revokes the share
        terminal, kernel = await bob_is_in()
        code, state = await alice.json(
            "DELETE", "alpha/minimal/-/shares", body=json.dumps({"users": ["bob"]}), headers=JSON
        )
        assert code == 200 and state["users"] == []
        figures["revoked: terminal closed after"] = await closed_within(terminal, DEADLINE)
        assert terminal.close_code == 1008, terminal.close_code
        figures["revoked: kernel closed after"] = await closed_within(kernel, DEADLINE)
        figures["revoked: token refused after"] = await refused_within(bob, DEADLINE)
        with pytest.raises(HTTPClientError) as refused:  # and he cannot open another
            await bob.open(f"terminals/websocket/{name}")
        assert refused.value.code == 403
        assert await answers(mine, "alice-still-here")  # alice's own terminal was left alone

        # 2. shared again: bob is let in again at once, then leaves the workspace
        terminal, kernel = await bob_is_in()
        set_members(hub, {**WORKSPACE_MEMBERS, "bob": []})
        began = time.monotonic()
        await closed_within(terminal, DEADLINE)
        figures["left: terminal closed after"] = time.monotonic() - began
        await closed_within(kernel, DEADLINE)
        figures["left: token refused after"] = time.monotonic() - began + await refused_within(bob, DEADLINE)
        assert hub_shares(hub, "alice") == []
        assert await answers(mine, "alice-still-here-too")
    finally:
        set_members(hub, None)
        owner.close()
        bob.close()
    print(f"\nrecheck {RECHECK} s (reconciler 3 s): " + ", ".join(f"{k} {v:.1f} s" for k, v in figures.items()))
