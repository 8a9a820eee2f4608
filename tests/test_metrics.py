"""Prometheus metrics at <prefix>/metrics (a Hub token with read:metrics) and on metrics_port; JSON logs."""

import json
import signal

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from notebooks_service.demo.app import free_port
from notebooks_service.metrics import hub_endpoint

from conftest import ADMIN_TOKEN, set_spawn_delay, stop_all_servers, wait_for
from service_processes import start_service

pytestmark = pytest.mark.usefixtures("clean_servers")


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a metrics page."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_need_a_token_with_read_metrics(client):
    anonymous, alice = client(None), client("alice")
    code, body = await anonymous.json("GET", "metrics")
    assert code == 401 and "read:metrics" in body["message"]
    code, body = await alice.json("GET", "metrics")  # a user may use the service, not read its metrics
    assert code == 403 and body["message"] == "Metrics need the scope 'read:metrics', which this token lacks."
    scraper = client(None)
    scraper.extra_headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}  # test-admin's role has read:metrics
    response = await scraper.request("GET", "metrics")
    assert response.code == 200 and response.headers["Content-Type"].startswith("text/plain; version=")
    assert "process_resident_memory_bytes" in response.body.decode()


@pytest.mark.hub_version
async def test_a_repeated_start_is_no_new_launch_and_keeps_the_clock(client, hub):
    scraper, alice = client(None), client("alice")
    scraper.extra_headers = {"Authorization": f"token {ADMIN_TOKEN}"}
    before = (await scraper.request("GET", "metrics")).body.decode()
    set_spawn_delay(hub, 2)
    code, _ = await alice.json("POST", "alpha/minimal")
    assert code == 202
    code, model = await alice.json("POST", "alpha/minimal")  # again, while it starts: the Hub says 202 again
    assert code == 202 and model["pending"] == "spawn"
    await alice.wait_ready("alpha/minimal")
    after = (await scraper.request("GET", "metrics")).body.decode()

    def grew(result: str) -> float:
        labels = {"image": "minimal", "result": result}
        return value(after, "notebooks_service_launches_total", **labels) - value(
            before, "notebooks_service_launches_total", **labels
        )

    assert grew("started") == 1 and grew("already_running") == 1


@pytest.mark.hub_version
async def test_a_start_after_a_stop_from_elsewhere_is_a_new_launch(client, hub):
    scraper, alice = client(None), client("alice")
    scraper.extra_headers = {"Authorization": f"token {ADMIN_TOKEN}"}
    await alice.json("POST", "alpha/minimal")
    await alice.wait_ready("alpha/minimal")  # the service has read (and cached) it running
    before = (await scraper.request("GET", "metrics")).body.decode()
    stop_all_servers(hub, "alice")  # through the Hub, not the service: its cached model is stale now
    code, _ = await alice.json("POST", "alpha/minimal")
    assert code in (201, 202)
    after = (await scraper.request("GET", "metrics")).body.decode()
    labels = {"image": "minimal"}
    for result, grew in (("started", 1), ("already_running", 0)):
        name = "notebooks_service_launches_total"
        assert value(after, name, result=result, **labels) - value(before, name, result=result, **labels) == grew


@pytest.mark.hub_version
async def test_metrics_count_requests_hub_calls_launches_and_time_to_ready(client, hub):
    scraper, alice = client(None), client("alice")
    scraper.extra_headers = {"Authorization": f"token {ADMIN_TOKEN}"}

    async def metrics() -> str:
        response = await scraper.request("GET", "metrics")
        assert response.code == 200
        return response.body.decode()

    before = await metrics()
    code, _ = await alice.json("POST", "alpha/minimal")
    assert code in (201, 202)
    await alice.wait_ready("alpha/minimal")
    code, _ = await alice.json("GET", "beta/nonexistent")
    assert code == 404
    after = await metrics()

    def grew(name: str, **labels) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("notebooks_service_launches_total", image="minimal", result="started") == 1
    assert grew("notebooks_service_launch_ready_seconds_count") == 1
    assert (
        grew(
            "notebooks_service_request_duration_seconds_count",
            route="/{workspace}/{image}",
            method="POST",
            code="202",
        )
        + grew(
            "notebooks_service_request_duration_seconds_count",
            route="/{workspace}/{image}",
            method="POST",
            code="201",
        )
        == 1
    )
    assert (
        grew(
            "notebooks_service_request_duration_seconds_count",
            route="/{workspace}/{image}",
            method="GET",
            code="404",
        )
        == 1
    )
    assert (
        grew(
            "notebooks_service_hub_request_duration_seconds_count",
            method="POST",
            endpoint="/users/{name}/servers/{server}",
            code="201",
        )
        + grew(
            "notebooks_service_hub_request_duration_seconds_count",
            method="POST",
            endpoint="/users/{name}/servers/{server}",
            code="202",
        )
        == 1
    )
    for gauge in ("notebooks_service_progress_streams", "notebooks_service_progress_upstreams"):
        assert (gauge, ()) in samples(after)
    assert await alice.json("DELETE", "alpha/minimal") == (204, None)


@pytest.mark.parametrize(
    "template, expected",
    [
        ("/users/{0}?include_stopped_servers=1", "/users/{name}"),
        ("/users/{0}/servers/{1}", "/users/{name}/servers/{server}"),
        ("/users/{0}/servers/{1}/progress", "/users/{name}/servers/{server}/progress"),
        ("/users/{0}/activity", "/users/{name}/activity"),
        ("/users/{0}/tokens/{1}", "/users/{name}/tokens/{token_id}"),
        ("/users/{0}/shared?offset=0&limit=200", "/users/{name}/shared"),
        ("/shares/{0}?offset=0&limit=200", "/shares/{owner}"),
        ("/shares/{0}/{1}?offset=200&limit=200", "/shares/{owner}/{server}"),
        ("/groups/{0}/users", "/groups/{group}/users"),
        ("/notebooks/room-holds/{0}/{1}", "/notebooks/room-holds/{name}/{server}"),
        ("/notebooks/quota-usage?workspace={0}&user={1}", "/notebooks/quota-usage"),
    ],
)
def test_a_hub_endpoint_label_holds_no_name(template, expected):
    """Every path the Hub client calls, with two users' names: one label, the names left out."""
    assert {hub_endpoint(template.format(*names)) for names in [("alice", "alpha-python"), ("bob", "b%2Fc")]} == {
        expected
    }


@pytest.fixture
def standalone(tmp_path):
    """The service alone (no Hub needed for what is asked of it), JSON logs, metrics_port on."""
    port, metrics_port = free_port(), free_port()
    log = tmp_path / "service.log"
    process = start_service(
        port,
        log,
        "--NotebooksService.log_json=True",
        f"--NotebooksService.metrics_port={metrics_port}",
        "--NotebooksService.metrics_ip=127.0.0.1",
        JUPYTERHUB_API_TOKEN="t",
        JUPYTERHUB_API_URL="http://127.0.0.1:9/hub/api",
    )
    base = f"http://127.0.0.1:{port}/services/notebooks/"

    def up() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return requests.get(base + "health", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    wait_for(up, timeout=30, message="the service to listen")
    yield base, f"http://127.0.0.1:{metrics_port}/metrics", log
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


def test_metrics_port_serves_scrapers_without_a_token(standalone):
    base, metrics_url, _ = standalone
    requests.get(base + "health", timeout=5)
    response = requests.get(metrics_url, timeout=5)
    assert response.status_code == 200
    count = value(
        response.text, "notebooks_service_request_duration_seconds_count", route="/health", method="GET", code="200"
    )
    assert count >= 2  # the wait for it to listen, and the one above
    assert requests.get(base + "metrics", timeout=5).status_code == 401  # the proxied path still asks for a token


def test_json_logs_are_one_object_per_line_with_the_request_fields(standalone):
    base, _, log = standalone
    requests.get(base + "health?token=SECRET-IN-URL", timeout=5)
    requests.get(base + "metrics", timeout=5)  # a 401: a warning
    lines = [json.loads(line) for line in wait_for(lambda: _two_requests_logged(log), message="the access log")]
    health = next(r for r in lines if r.get("route") == "/health" and "token=" in r["message"])
    assert {"time", "level", "logger", "message", "method", "status", "latency_ms", "user", "server"} <= set(health)
    assert health["level"] == "INFO" and health["status"] == 200 and health["user"] is None
    assert "token=[secret]" in health["message"]
    refused = next(r for r in lines if r.get("route") == "/metrics")
    assert refused["level"] == "WARNING" and refused["status"] == 401
    assert "SECRET-IN-URL" not in log.read_text()


def _two_requests_logged(log) -> list[str] | None:
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    routes = [json.loads(line).get("route") for line in lines]
    return lines if "/metrics" in routes and "/health" in routes else None
