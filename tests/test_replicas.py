"""Two replicas of the service behind a round-robin balancer, no sticky sessions.

A login started on one replica finishes on the other, and a launch whose XSRF
token one replica made is accepted by the other: they share the cookie secret,
and the OAuth state travels with the login (notebooks_service.oauth). Membership
over time is checked once, by the Hub's reconciler, not by each replica.
"""

import os
import re
import secrets

import pytest

from notebooks_service.demo.app import free_port

from conftest import hidden_field, log_in, running_hub, stop_all_servers, wait_for
from round_robin import RoundRobin
from service_processes import start_replica, wait_healthy

pytestmark = pytest.mark.hub_version  # the second pass of `make test` runs it on z2jh 4.4.0's Hub too


@pytest.fixture(scope="module")
def replicated(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("replicas")
    hub_port = free_port()
    token, cookie_secret = secrets.token_hex(32), secrets.token_hex(32)
    ports = [free_port(), free_port()]
    replicas = [
        start_replica(p, hub_port, token, cookie_secret, run_dir / f"replica-{i}.log") for i, p in enumerate(ports)
    ]
    balancer = None
    try:
        for port, process in zip(ports, replicas, strict=True):
            wait_healthy(f"http://127.0.0.1:{port}/services/notebooks/health", process)
        balancer = RoundRobin([f"http://127.0.0.1:{p}" for p in ports])
        with running_hub(
            run_dir,
            extra_config="hub_replicas_config.py",
            port=hub_port,
            env={"NOTEBOOKS_TEST_BALANCER_URL": balancer.url, "NOTEBOOKS_TEST_SERVICE_TOKEN": token},
        ) as hub:
            yield hub, balancer
            stop_all_servers(hub, "alice")
    finally:
        for process in replicas:
            process.terminate()
            process.wait(10)
        if balancer:
            balancer.close()


def replica_that_served(balancer: RoundRobin, method: str, path_end: str) -> int:
    return [i for i, m, p in balancer.served if m == method and p.endswith(path_end)][-1]


def test_login_started_on_one_replica_finishes_on_the_other(replicated):
    hub, balancer = replicated
    balancer.served.clear()
    log_in(hub, "alice")
    started = [i for i, m, p in balancer.served if p == "/services/notebooks/"][0]
    finished = replica_that_served(balancer, "GET", "/oauth_callback")
    assert started != finished, balancer.served


def test_launch_across_replicas(replicated):
    hub, balancer = replicated
    browser = log_in(hub, "alice")
    page = browser.get(hub.service_url + "alpha/minimal")
    xsrf_from = replica_that_served(balancer, "GET", "/alpha/minimal")
    started = browser.post(
        hub.service_url + "alpha/minimal", data={"_xsrf": hidden_field(page.text, "_xsrf")}, allow_redirects=False
    )
    assert started.status_code == 303, started.text[:300]
    assert replica_that_served(balancer, "POST", "/alpha/minimal") != xsrf_from

    def in_the_server():
        r = browser.get(hub.service_url + "alpha/minimal", allow_redirects=False)
        return r.status_code == 302 and r.headers["Location"]

    location = wait_for(in_the_server, timeout=60, interval=0.3, message="the server to be ready")
    assert location == "/user/alice/alpha-minimal/"
    landed = browser.get(hub.url + location)  # the server's own OAuth with the Hub, then its page
    assert landed.status_code == 200 and landed.url.startswith(hub.url + location)
    assert {i for i, _, _ in balancer.served} == {0, 1}


def test_with_two_replicas_one_reconciler_checks_the_active_servers(replicated):
    """Every check starts with the active servers' listing: the reconciler's, every second here, and
    none by either replica, though each is configured with the setting that made it sweep every second."""
    hub, _ = replicated
    log_in(hub, "alice")  # a user, so that the listing has someone to find
    with open(hub.log_path, "rb") as log:
        log.seek(0, os.SEEK_END)
        since = log.tell()

    def listings_by(service: str) -> int:
        with open(hub.log_path, "rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
        return len(re.findall(rf"GET /hub/api/users\?state=\S* \({re.escape(service)}@", text))

    wait_for(lambda: listings_by("notebooks-reconciler") >= 3, timeout=30, message="three checks by the reconciler")
    assert listings_by("notebooks") == 0
