"""The ports the demo and the test Hubs hand their parts (notebooks_service/demo/ports.py), and the
Hub start that tries once more when one was taken between choice and bind."""

import os
import socket
import subprocess
import sys

import pytest

from notebooks_service.demo import ports
from notebooks_service.demo.app import DemoHub

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def registry(tmp_path, monkeypatch):
    path = tmp_path / "ports"
    monkeypatch.setenv(ports.REGISTRY_ENV, str(path))
    return path


def test_without_a_registry_ports_come_from_the_kernel_and_never_twice(monkeypatch):
    monkeypatch.delenv(ports.REGISTRY_ENV, raising=False)
    handed = [ports.free_port() for _ in range(200)]
    assert len(set(handed)) == len(handed)


def test_processes_sharing_a_registry_never_get_the_same_port(registry):
    first, last = ports.port_range()
    ask = "from notebooks_service.demo.ports import free_port\nfor _ in range(150): print(free_port())"
    askers = [subprocess.Popen([sys.executable, "-c", ask], stdout=subprocess.PIPE, text=True) for _ in range(4)]
    handed = [int(p) for a in askers for p in a.communicate(timeout=60)[0].split()]
    assert all(a.returncode == 0 for a in askers)
    assert len(handed) == 600 == len(set(handed))
    assert all(first <= p <= last for p in handed)
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        assert last < int(f.read().split()[0])  # never one the kernel gives a port-0 bind or a connection


def test_a_port_another_program_holds_is_skipped(registry, monkeypatch):
    # two ports at the top of the range, far from those this run's other workers are handed
    last = ports.port_range()[1]
    port = next(p for p in range(last - 1, last - 200, -1) if ports._bindable(p) and ports._bindable(p + 1))
    monkeypatch.setenv(ports.RANGE_ENV, f"{port}-{port + 1}")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        assert ports.free_port() == port + 1
        with pytest.raises(RuntimeError, match="no free port left"):
            ports.free_port()  # the range is used up: said, not a port handed out twice


def test_a_range_that_leaves_nothing_below_the_ephemeral_range_is_refused(registry, monkeypatch):
    monkeypatch.setenv(ports.RANGE_ENV, "61000-62000")
    with pytest.raises(ValueError, match="NOTEBOOKS_PORT_RANGE"):
        ports.free_port()


def test_a_hub_whose_port_was_taken_starts_again_on_new_ports_and_says_why(tmp_path):
    hub = DemoHub(
        str(tmp_path / "hub"),
        extra_config=os.path.join(HERE, "hub_test_config.py"),
        env={"NOTEBOOKS_TEST_ADMIN_TOKEN": "test-ports-admin-token-not-secret"},
    )
    taken_port = hub.proxy_api_port
    with socket.socket() as thief:  # another program binds the proxy's API port before the proxy does
        thief.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        thief.bind(("127.0.0.1", taken_port))
        thief.listen()
        try:
            hub.start_ready(timeout=90)
            assert hub.proxy_api_port != taken_port
        finally:
            hub.stop()
    with open(hub.log_path) as f:
        log = f.read()
    assert log.count("a port was taken") == 1, log[-3000:]
    assert str(taken_port) in log.split("a port was taken", 1)[1].splitlines()[0]


def test_a_hub_that_fails_for_another_reason_is_not_started_again(tmp_path):
    broken = tmp_path / "broken_config.py"
    broken.write_text("raise RuntimeError('a broken configuration')\n")
    hub = DemoHub(str(tmp_path / "hub"), extra_config=str(broken))
    try:
        with pytest.raises(RuntimeError, match="JupyterHub exited"):
            hub.start_ready(timeout=60)
    finally:
        hub.stop()
    with open(hub.log_path) as f:
        log = f.read()
    assert "a broken configuration" in log
    assert "a port was taken" not in log
