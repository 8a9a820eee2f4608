"""The service as an external process whose Hub is down: clear 503s, no tracebacks."""

import contextlib
import time
import urllib.error
import urllib.request

import pytest
import requests
from tornado import web

from notebooks_service.demo.app import free_port

from service_processes import start_service
from threaded_server import ThreadedServer


@contextlib.contextmanager
def service_with_hub_at(api_url: str, log_path):
    """notebooks-service configured by environment only, with its Hub API at ``api_url``."""
    port = free_port()
    process = start_service(
        port,
        log_path,
        "--HubClient.max_retries=1",
        JUPYTERHUB_API_TOKEN="service-token-for-a-missing-hub",
        JUPYTERHUB_API_URL=api_url,
        JUPYTERHUB_CLIENT_ID="service-notebooks",
    )
    base = f"http://127.0.0.1:{port}/services/notebooks/"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(base + "health", timeout=2)
            break
        except (urllib.error.URLError, OSError):
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "service did not start"
            time.sleep(0.1)
    try:
        yield base
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def orphan_service(tmp_path_factory):
    """The service with no Hub where its API should be."""
    log_path = tmp_path_factory.mktemp("orphan") / "service.log"
    with service_with_hub_at(f"http://127.0.0.1:{free_port()}/hub/api", log_path) as base:
        yield base, log_path


def test_a_hub_that_answers_errors_is_a_502(tmp_path):
    class Broken(web.RequestHandler):
        def get(self, *args):
            raise web.HTTPError(500)

    broken_hub = ThreadedServer(lambda: web.Application([(r".*", Broken)]))
    try:
        with service_with_hub_at(broken_hub.url + "/hub/api", tmp_path / "service.log") as base:
            response = requests.get(base, headers={"Authorization": "token some-user-token"})
    finally:
        broken_hub.close()
    assert response.status_code == 502
    assert response.json() == {"status": 502, "message": "Cannot check your login: the Hub answered with an error."}


def test_token_client_gets_503_json(orphan_service):
    base, _ = orphan_service
    response = requests.post(base + "alpha/python", headers={"Authorization": "token some-user-token"})
    assert response.status_code == 503
    assert response.json() == {
        "status": 503,
        "message": "Cannot check your login: the Hub is not reachable right now.",
    }


def test_browser_gets_a_503_page_without_a_traceback(orphan_service):
    base, _ = orphan_service
    response = requests.get(base, headers={"Authorization": "token some-user-token", "Accept": "text/html"})
    assert response.status_code == 503
    assert response.headers["Content-Type"].startswith("text/html")
    assert "not reachable" in response.text and "Traceback" not in response.text


def test_tokens_never_reach_the_log(orphan_service):
    base, log_path = orphan_service
    requests.get(base + "?token=secret-in-url-123", headers={"Accept": "application/json"})
    requests.get(base, headers={"Authorization": "token secret-in-header-456"})
    log = log_path.read_text()
    assert "/services/notebooks/?token=[secret]" in log  # the request was logged...
    for secret in ("secret-in-url-123", "secret-in-header-456", "service-token-for-a-missing-hub"):
        assert secret not in log  # ...without its secrets


def test_liveness_stays_ok_but_readiness_says_the_hub_is_gone(orphan_service):
    base, _ = orphan_service
    assert requests.head(base + "health").status_code == 200  # the process lives: do not restart it
    response = requests.get(base + "ready")
    assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
    assert response.json()["status"] == 503 and "Hub is not reachable" in response.json()["message"]
