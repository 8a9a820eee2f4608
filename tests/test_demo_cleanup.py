"""When the demo's Hub dies, the demo stops what it left running and frees the port."""

import os
import signal
import socket
import threading

import psutil

from conftest import admin_request, running_hub, set_real_servers, start_body, wait_for


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_a_dead_hubs_proxy_service_and_servers_are_stopped(tmp_path):
    with running_hub(tmp_path / "hub") as hub:
        set_real_servers(hub, True)  # a server process of its own, which a dead Hub leaves behind
        status, _ = admin_request(
            hub,
            "POST",
            "/users/alice/servers/alpha-minimal",
            start_body(hub, {"workspace": "alpha", "image": "minimal"}),
        )
        assert status in (201, 202)

        def ready() -> bool:
            _, model = admin_request(hub, "GET", "/users/alice")
            return bool(model["servers"].get("alpha-minimal", {}).get("ready"))

        wait_for(ready, timeout=60, message="alice's server")
        supervisor = threading.Thread(target=hub.supervise, kwargs={"interval": 0.2})
        supervisor.start()
        children = {p.pid: " ".join(p.cmdline()) for p in psutil.Process(hub.process.pid).children(recursive=True)}
        proxy = next(pid for pid, cmd in children.items() if "configurable-http-proxy" in cmd)
        service = next(pid for pid, cmd in children.items() if "notebooks_service" in cmd)
        server = next(pid for pid, cmd in children.items() if "jupyterhub-singleuser" in cmd)
        storage = next(pid for pid, cmd in children.items() if "object_storage" in cmd)  # the demo's S3
        wait_for(
            lambda: {proxy, service, server, storage} <= set(hub._descendants or {}), message="the demo to note them"
        )

        os.kill(hub.process.pid, signal.SIGKILL)  # no chance to stop anything itself
        supervisor.join(30)
        assert alive(proxy) and alive(server)  # what a dead Hub leaves behind

        stopped = hub.stop_orphans()
        assert {proxy, service, server, storage} <= set(stopped)
        assert not [pid for pid in (proxy, service, server, storage) if alive(pid)]
        assert port_free(hub.port)  # the proxy's public port
