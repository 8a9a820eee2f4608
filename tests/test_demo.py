"""`notebooks-service demo` tells the truth: a taken port, a second demo in the same folder, Ctrl-C,
and the servers left at shutdown, each answered with one clear line or a clean state."""

import os
import signal
import socket
import subprocess
import sys
from types import SimpleNamespace

import psutil
import pytest
import requests

from notebooks_service.demo.app import free_port

from conftest import hidden_field, log_in, wait_for

DEMO = [sys.executable, "-m", "notebooks_service", "demo", "--ip", "127.0.0.1"]
WEB_PRESENCE = "http://localhost:8001"
#: what a demo's output must never hold (a shutdown run twice, or cut short)
NOISE = ("Traceback", "Failed to stop", "Task was destroyed", "Exception ignored")


def run_demo(run_dir, port: int, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """A demo that is expected to refuse to start: it must exit by itself (timeout: a hang is a failure)."""
    return subprocess.run(
        [*DEMO, "--port", str(port), "--run-dir", str(run_dir), *args], capture_output=True, text=True, timeout=timeout
    )


class Demo:
    """A demo running in the background, stopped as a terminal's Ctrl-C stops it."""

    def __init__(self, run_dir, port: int, log_path, *args: str):
        self.url = f"http://127.0.0.1:{port}"
        self.service_url = f"{self.url}/services/notebooks/"
        self.log_path = log_path
        with open(log_path, "wb") as log:
            # a process group of its own, as a terminal's foreground job: Ctrl-C goes to the group
            self.process = subprocess.Popen(
                [*DEMO, "--port", str(port), "--run-dir", str(run_dir), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(self._up, timeout=120, interval=0.2, message="the demo to be up")

    def _up(self) -> bool:
        assert self.process.poll() is None, self.output()
        return "notebooks-service demo is up" in self.output()

    def output(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def ctrl_c(self) -> int:
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout=90)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.ctrl_c()


@pytest.fixture
def demo(tmp_path):
    running = Demo(tmp_path / "run", free_port(), tmp_path / "demo.log", "--allow-origin", WEB_PRESENCE)
    yield running
    running.kill()


def test_a_taken_port_is_one_line_naming_it(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_demo(tmp_path / "run", port)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"notebooks-service demo: port {port} on 127.0.0.1 is in use by another program: stop it, or choose "
        f"another port (make demo PORT={port + 1}, or --port {port + 1})."
    )
    assert not os.path.exists(tmp_path / "run" / "jupyterhub.sqlite")  # nothing was started


def test_a_second_demo_in_the_same_folder_names_the_first_and_leaves_it_alone(demo, tmp_path):
    result = run_demo(tmp_path / "run", free_port())
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"notebooks-service demo: a demo is already running in {tmp_path / 'run'}: {demo.service_url} "
        f"(pid {demo.process.pid}). Stop it first (Ctrl-C where it runs), or give this one another folder (--run-dir)."
    )
    assert requests.get(demo.service_url + "health", timeout=10).status_code == 200  # the first is untouched


def test_allow_origin_lets_a_web_presence_call_the_demo(demo):
    preflight = requests.options(
        demo.service_url, headers={"Origin": WEB_PRESENCE, "Access-Control-Request-Method": "POST"}, timeout=10
    )
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == WEB_PRESENCE
    elsewhere = requests.options(
        demo.service_url,
        headers={"Origin": "http://localhost:8002", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert elsewhere.status_code == 403


def test_ctrl_c_stops_once_and_quietly_and_the_next_start_lists_no_stale_servers(demo, tmp_path):
    browser = log_in(SimpleNamespace(url=demo.url, service_url=demo.service_url), "alice")
    headers = {"Accept": "application/json", "X-XSRFToken": hidden_field(browser.get(demo.service_url).text, "_xsrf")}
    assert browser.post(demo.service_url + "alpha/minimal", headers=headers).status_code in (201, 202)
    wait_for(lambda: browser.get(demo.service_url + "alpha/minimal", headers=headers).json()["ready"], timeout=60)
    # the Hub, its proxy, the service, the reconciler, the culler, the object storage and the server
    family = psutil.Process(demo.process.pid).children(recursive=True)
    assert any("object_storage" in " ".join(p.cmdline()) for p in family)
    assert any("jupyterhub-singleuser" in " ".join(p.cmdline()) for p in family)

    assert demo.ctrl_c() == 0
    assert still_running(family) == []  # the demo exits after all of them, never before
    output = demo.output()
    assert not [noise for noise in NOISE if noise in output], output[-4000:]
    assert output.count("initiating shutdown") == 1  # the Hub was asked once

    again = Demo(tmp_path / "run", free_port(), tmp_path / "again.log")
    try:
        browser = log_in(SimpleNamespace(url=again.url, service_url=again.service_url), "alice")
        listed = browser.get(again.service_url, headers={"Accept": "application/json"})
        assert listed.status_code == 200 and listed.json() == []  # no stopped row left from the last run
        # stopped again, right after a start was asked (its server still starting)
        headers["X-XSRFToken"] = hidden_field(browser.get(again.service_url).text, "_xsrf")
        assert browser.post(again.service_url + "alpha/minimal", headers=headers).status_code in (201, 202)
        family = psutil.Process(again.process.pid).children(recursive=True)  # the server's, if it began
        assert again.ctrl_c() == 0
        assert still_running(family) == []
    finally:
        again.kill()


def still_running(processes: list) -> list[str]:
    """The command lines of those of ``processes`` still running (a zombie has stopped)."""
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(" ".join(process.cmdline())[:200])
        except psutil.NoSuchProcess:
            pass
    return alive


def as_hub_admin(browser: requests.Session, url: str, method: str, path: str, body=None) -> requests.Response:
    """The Hub's REST API with a logged-in browser's cookie (and the XSRF token the Hub asks of it)."""
    xsrf = browser.cookies.get("_xsrf", path="/hub/")
    return browser.request(method, f"{url}/hub/api{path}", json=body, headers={"X-XSRFToken": xsrf}, timeout=30)


def test_the_admin_removes_a_member_and_their_server_stops_then_comes_back(demo):
    """The demo's workspaces are Hub groups: its admin removes alice from alpha through the Hub's
    groups API (as the admin page does), her alpha server stops within the demo's check interval
    (10 s) and her list says why; added back, she starts it again."""
    hub = SimpleNamespace(url=demo.url, service_url=demo.service_url)
    alice = log_in(hub, "alice")
    headers = {"Accept": "application/json", "X-XSRFToken": hidden_field(alice.get(demo.service_url).text, "_xsrf")}

    def alpha_server() -> dict | None:
        listed = alice.get(demo.service_url, headers={"Accept": "application/json"}, timeout=30).json()
        return next((s for s in listed if s["name"] == "alpha-minimal"), None)

    assert alice.post(demo.service_url + "alpha/minimal", headers=headers).status_code in (201, 202)
    wait_for(lambda: (alpha_server() or {}).get("ready"), timeout=90, interval=0.5, message="alice's server")
    admin = log_in(hub, "admin")
    removed = as_hub_admin(admin, demo.url, "DELETE", "/groups/alpha/users", {"users": ["alice"]})
    assert removed.status_code == 200 and "alice" not in removed.json()["users"], removed.text

    def stopped_as_a_leavers() -> bool:
        server = alpha_server()
        return bool(server) and server["stopped"] and not server["member"] and server["url"] is None

    wait_for(stopped_as_a_leavers, timeout=40, interval=0.5, message="her alpha server to stop")
    assert "You are no longer a member of alpha" in alice.get(demo.service_url, timeout=30).text

    added = as_hub_admin(admin, demo.url, "POST", "/groups/alpha/users", {"users": ["alice"]})
    assert added.status_code == 200, added.text
    # the service reads her model again within HubClient.user_cache_seconds (1 s)
    wait_for(
        lambda: alice.post(demo.service_url + "alpha/minimal", headers=headers).status_code in (201, 202),
        timeout=10,
        interval=0.5,
        message="her start to be taken",
    )
    wait_for(lambda: (alpha_server() or {}).get("ready"), timeout=90, interval=0.5, message="it to start again")
