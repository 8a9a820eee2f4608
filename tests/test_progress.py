"""Following a start: the service's progress stream, failures, and pod diagnostics (fake cluster)."""

import json

import pytest
import requests
from tornado.httpclient import HTTPRequest

from notebooks_service.naming import SERVER_LABEL, USER_LABEL

from conftest import set_spawn_delay, set_spawn_failure

pytestmark = [pytest.mark.hub_version, pytest.mark.usefixtures("clean_servers")]


async def follow(client, path: str, timeout: float = 60) -> list[dict]:
    """Every event of the service's progress stream until it ends."""
    return events_of(await follow_text(client, path, timeout))


def events_of(text: str) -> list[dict]:
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]


async def follow_text(client, path: str, timeout: float = 60) -> str:
    """The service's progress stream as sent, until it ends."""
    chunks = []
    request = HTTPRequest(
        client.hub.service_url + path,
        headers={"Authorization": f"token {client.token}", "Accept": "text/event-stream"},
        request_timeout=timeout,
        streaming_callback=chunks.append,
    )
    response = await client.http.fetch(request, raise_error=False)
    assert response.code == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    return b"".join(chunks).decode()


async def test_progress_stream_follows_a_start_to_ready(client, hub):
    set_spawn_delay(hub, 1)
    alice = client("alice")
    code, model = await alice.json("POST", "alpha/python")
    assert code == 202 and model["progress_url"] == "/services/notebooks/alpha/python/-/progress"
    events = await follow(alice, "alpha/python/-/progress")
    values = [e["progress"] for e in events]
    assert values == sorted(values) and len(set(values)) >= 3, events  # the bar moves
    assert events[-1]["ready"] is True and events[-1]["url"] == "/user/alice/alpha-python/"
    assert all(e["source"] == "hub" for e in events)
    assert any(e.get("message", "").startswith("Preparing alpha/python") for e in events)  # the spawner's own step
    # once ready, the stream is one ready event
    assert [e["ready"] for e in await follow(alice, "alpha/python/-/progress")] == [True]


async def test_a_quiet_start_keeps_its_stream_open_and_still_ends_ready(client, hub):
    # the session's service sends a keepalive after 0.2 s of silence; this start is silent for longer
    set_spawn_delay(hub, 1.5)
    alice = client("alice")
    code, _ = await alice.json("POST", "alpha/python")
    assert code == 202
    text = await follow_text(alice, "alpha/python/-/progress")
    events = events_of(text)
    assert events[-1]["ready"] is True, events
    assert text.count(": keepalive\n\n") >= 2, text  # each wait that timed out, then the next event still came
    assert text.index(": keepalive") < text.index('"ready": true')
    # once ready, following again is one ready event: no reader was left waiting on the first stream
    assert [e["ready"] for e in await follow(alice, "alpha/python/-/progress")] == [True]


async def test_progress_stream_reports_a_failed_start(client, hub):
    set_spawn_failure(hub, "image registry said no")
    alice = client("alice")
    code, _ = await alice.json("POST", "alpha/minimal")
    # accepted (failing later), or failed at once (502 saying why): either way it must not run
    assert code in (202, 502)
    events = await follow(alice, "alpha/minimal/-/progress")
    assert events[-1]["failed"] is True and "image registry said no" in events[-1]["message"]
    # and the failure is remembered where people look next
    code, body = await alice.json("GET", "alpha/minimal")
    assert code == 404 and "image registry said no" in body["message"]
    # the failed server still takes a named-server slot in the Hub: the list says so, and it can be removed
    code, servers = await alice.json("GET", "")
    assert code == 200 and [(s["name"], s["stopped"], s["ready"]) for s in servers] == [("alpha-minimal", True, False)]
    code, _ = await alice.json("DELETE", "alpha/minimal?remove=true")
    assert code == 204
    assert (await alice.json("GET", ""))[1] == []


async def test_progress_of_a_server_that_is_not_running(client):
    events = await follow(client("bob"), "alpha/python/-/progress")
    assert events == [{"progress": 100, "failed": True, "message": "The server is not running."}]


async def test_progress_stream_checks_membership(client):
    code, body = await client("bob").json("GET", "beta/python/-/progress")
    assert code == 403 and body["status"] == 403


async def test_pod_events_are_merged_into_the_stream(client, hub, cluster):
    labels = {USER_LABEL: "alice", SERVER_LABEL: "alpha-minimal"}
    cluster.add_pod("ws-alpha", "jupyter-alice--alpha-minimal", labels)
    cluster.add_event("ws-alpha", "jupyter-alice--alpha-minimal", "Pulling", 'Pulling image "base-notebook"', "Normal")
    set_spawn_delay(hub, 2)
    alice = client("alice")
    await alice.json("POST", "alpha/minimal")
    events = await follow(alice, "alpha/minimal/-/progress")
    pod_events = [e for e in events if e["source"] == "kubernetes"]
    assert pod_events and pod_events[0]["message"] == 'Pulling: Pulling image "base-notebook"'
    assert events[-1]["ready"] is True


async def test_image_pull_backoff_shows_in_json_and_page(client, hub, cluster, tokens):
    labels = {USER_LABEL: "alice", SERVER_LABEL: "alpha-python"}
    cluster.add_pod(
        "ws-alpha",
        "jupyter-alice--alpha-python",
        labels,
        waiting=("ImagePullBackOff", 'Back-off pulling image "scipy:nope"'),
    )
    cluster.add_event(
        "ws-alpha", "jupyter-alice--alpha-python", "Failed", 'Failed to pull image "scipy:nope": not found'
    )
    set_spawn_delay(hub, 30)  # stays pending while we look
    alice = client("alice")
    await alice.json("POST", "alpha/python")
    code, model = await alice.json("GET", "alpha/python")
    assert code == 200 and model["pending"] == "spawn"
    status = model["status"]
    assert status["kubernetes"] == "ok"
    assert status["details"]["problems"][0]["reason"] == "ImagePullBackOff"
    assert status["message"] == 'ImagePullBackOff: Back-off pulling image "scipy:nope"'
    page = requests.get(
        hub.service_url + "alpha/python", headers={"Authorization": f"token {tokens['alice']}", "Accept": "text/html"}
    )
    assert page.status_code == 200
    assert "ImagePullBackOff" in page.text and "scipy:nope" in page.text and "not found" in page.text
    assert status["hint"].startswith("The image quay.io/jupyter/scipy-notebook cannot be pulled")
    assert 'id="hint"' in page.text and "tell the operators" in page.text


async def test_status_without_a_pod_says_so(client):
    alice = client("alice")
    await alice.json("POST", "alpha/minimal")
    code, model = await alice.json("GET", "alpha/minimal")
    assert model["status"] == {"kubernetes": "ok", "message": "No pod yet.", "details": {}}


async def test_an_rbac_refusal_reaches_json_and_page_as_such(client, hub, cluster, tokens):
    cluster.forbidden.add("ws-alpha")
    try:
        set_spawn_delay(hub, 30)  # stays pending while we look
        alice = client("alice")
        await alice.json("POST", "alpha/minimal")
        code, model = await alice.json("GET", "alpha/minimal")
        page = requests.get(
            hub.service_url + "alpha/minimal",
            headers={"Authorization": f"token {tokens['alice']}", "Accept": "text/html"},
        )
    finally:
        cluster.forbidden.discard("ws-alpha")
    assert code == 200 and model["status"]["kubernetes"] == "forbidden"
    assert "may not read pods and events in ws-alpha" in model["status"]["message"]
    assert page.status_code == 200 and "may not read pods and events in ws-alpha" in page.text


async def test_a_notebook_called_progress_opens_and_progress_lives_under_the_dash(client):
    alice = client("alice")
    await alice.json("POST", "alpha/minimal")
    events = await follow(alice, "alpha/minimal/-/progress")
    assert events[-1]["ready"] is True
    # <server>/progress is the notebook of that name, for every client
    for accept in ("application/json", "text/event-stream, application/json"):
        code, model = await alice.json("GET", "alpha/minimal/progress", headers={"Accept": accept})
        assert code == 200 and model["notebook_url"] == "/user/alice/alpha-minimal/lab/tree/progress"
    # and what follows /-/ is never a notebook
    code, body = await alice.json("GET", "alpha/minimal/-/nonsense")
    assert code == 404 and body["message"].startswith("No such page")
