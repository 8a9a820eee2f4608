"""The Hub killed in the middle of a launch and started again, with the service running on its own.

Meanwhile the service answers a clear 503 (and its readiness says so); once the
Hub is back it recovers without a restart: the interrupted start is reported
gone, and starting again works.
"""

import asyncio
import os
import secrets
import signal
import time
from types import SimpleNamespace

import pytest
import requests

from notebooks_service.demo.app import free_port

from conftest import Tokens, running_hub, set_spawn_delay
from service_client import ServiceClient
from service_processes import start_replica, wait_healthy

pytestmark = pytest.mark.hub_version  # the second pass of `make test` runs it on z2jh 4.4.0's Hub too


async def test_a_hub_killed_mid_launch_then_restarted(tmp_path):
    hub_api_port, service_port = free_port(), free_port()
    token, cookie_secret = secrets.token_hex(32), secrets.token_hex(32)
    service = start_replica(service_port, hub_api_port, token, cookie_secret, tmp_path / "service.log")
    direct = f"http://127.0.0.1:{service_port}/services/notebooks/"
    try:
        wait_healthy(direct + "health", service)
        env = {"NOTEBOOKS_TEST_BALANCER_URL": f"http://127.0.0.1:{service_port}", "NOTEBOOKS_TEST_SERVICE_TOKEN": token}
        with running_hub(
            tmp_path / "hub", extra_config="hub_replicas_config.py", hub_port=hub_api_port, env=env
        ) as hub:
            # straight to the service: the Hub's proxy goes down with it
            alice = ServiceClient(SimpleNamespace(service_url=direct), Tokens(hub)["alice"])
            set_spawn_delay(hub, 60)
            code, body = await alice.json("POST", "alpha/minimal")
            assert code == 202 and body["pending"] == "spawn"

            hub.remember_descendants()
            os.kill(hub.process.pid, signal.SIGKILL)
            hub.process.wait()
            hub.stop_orphans()  # its proxy and culler: what a Hub pod's restart would take with it

            code, body = await alice.json("GET", "alpha/minimal")
            assert code == 503, body
            assert body["message"] == "The Hub is not reachable right now; please try again in a moment."
            assert requests.get(direct + "ready", timeout=30).status_code == 503
            assert requests.get(direct + "health", timeout=30).status_code == 200  # alive: no restart needed

            set_spawn_delay(hub, None)
            hub.start()
            hub.wait_ready(timeout=90)
            assert service.poll() is None  # the same service process

            deadline = time.monotonic() + 60
            while True:  # the service recovers on its own
                code, body = await alice.json("GET", "alpha/minimal")
                if code != 503:
                    break
                assert time.monotonic() < deadline, body
                await asyncio.sleep(0.5)
            # the interrupted start is gone (the Hub forgot it with its process), and says so
            assert code == 404, body
            code, body = await alice.json("POST", "alpha/minimal")
            assert code in (201, 202), body
            assert (await alice.wait_ready("alpha/minimal"))["ready"]
            assert requests.get(direct + "ready", timeout=30).status_code == 200
            alice.close()
    finally:
        service.terminate()
        service.wait(30)
