"""<server>/-/logs: the demo's local output files through the real Hub, and a pod's log from the fake API server."""

import asyncio
import contextlib
import json
import os
import time

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from notebooks_service.errors import NotFound, ServiceError
from notebooks_service.kube import KubeDiagnostics, KubeLogs
from notebooks_service.logs import local_log_path
from notebooks_service.naming import SERVER_LABEL, USER_LABEL

from fake_kubernetes import FakeKubernetes

pytestmark = pytest.mark.usefixtures("clean_servers")


async def test_the_owner_reads_their_servers_output_as_json_lines_text_and_a_tail(client):
    alice = client("alice")
    await alice.json("POST", "alpha/minimal")
    model = await alice.wait_ready("alpha/minimal")
    assert model["logs_url"] == "/services/notebooks/alpha/minimal/-/logs"
    response = await alice.request("GET", "alpha/minimal/-/logs")
    assert response.code == 200 and response.headers["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line)["line"] for line in response.body.decode().splitlines()]
    assert any("Jupyter Server" in line for line in lines), lines[-5:]  # the server's own start-up lines
    text = await alice.request("GET", "alpha/minimal/-/logs?tail=2", headers={"Accept": "text/plain"})
    assert text.headers["Content-Type"].startswith("text/plain")
    assert text.body.decode().splitlines() == lines[-2:]


async def test_only_the_owner_and_with_sane_parameters(client, hub):
    forget_output(hub, "bob", "alpha-minimal")  # as if bob had never run it
    bob = client("bob")
    code, body = await bob.json("GET", "alpha/minimal/-/logs")
    assert code == 404 and body["message"] == "This server has written no output yet."
    code, body = await bob.json("GET", "beta/minimal/-/logs")  # not bob's workspace
    assert code == 403
    code, body = await bob.json("GET", "alpha/minimal/-/logs?tail=lots")
    assert code == 400 and "tail" in body["message"]


async def test_each_run_has_its_own_output_and_the_one_before_is_kept(client):
    alice = client("alice")
    for _ in range(2):
        await alice.json("POST", "alpha/minimal")
        await alice.wait_ready("alpha/minimal")
        assert await alice.json("DELETE", "alpha/minimal") == (204, None)
    current = (await alice.request("GET", "alpha/minimal/-/logs?format=text")).body.decode()
    previous = (await alice.request("GET", "alpha/minimal/-/logs?format=text&previous=1")).body.decode()
    assert current.count("Jupyter Server") >= 1 and previous.count("Jupyter Server") >= 1
    assert current != previous  # two runs, two outputs (their times and ports differ)


def forget_output(hub, user: str, server_name: str) -> None:
    for previous in (False, True):
        with contextlib.suppress(FileNotFoundError):
            os.remove(local_log_path(os.path.join(hub.run_dir, "logs"), user, server_name, previous=previous))


async def test_following_the_output_as_server_sent_events(client):
    alice = client("alice")
    await alice.json("POST", "alpha/minimal")
    await alice.wait_ready("alpha/minimal")
    received: list[bytes] = []
    stream = AsyncHTTPClient(force_instance=True)
    request = HTTPRequest(
        alice.hub.service_url + "alpha/minimal/-/logs?tail=3",
        headers={"Authorization": f"token {alice.token}", "Accept": "text/event-stream"},
        streaming_callback=received.append,
        request_timeout=60,
    )
    following = asyncio.ensure_future(stream.fetch(request, raise_error=False))
    deadline = time.monotonic() + 30
    while b"\n\n" not in b"".join(received):
        assert time.monotonic() < deadline and not following.done(), received
        await asyncio.sleep(0.1)
    stream.close()  # the reader leaves; the stream would go on
    following.cancel()
    first = b"".join(received).decode().split("\n\n")[0]
    assert first.startswith("data: ") and "line" in json.loads(first[len("data: ") :])


# -- Kubernetes: the notebook container's log --------------------------------------------------


@pytest.fixture
async def pod_logs(cluster):
    kube = KubeDiagnostics("kubeconfig", kubeconfig=cluster.kubeconfig_path, namespace_template="ws-{workspace}")
    yield KubeLogs(kube)
    await kube.close()


LABELS = {USER_LABEL: "carol", SERVER_LABEL: "alpha-python"}


async def test_a_pods_log_and_its_previous_containers(cluster: FakeKubernetes, pod_logs):
    cluster.add_pod("ws-alpha", "jupyter-carol--alpha-python", LABELS)
    cluster.logs[("ws-alpha", "jupyter-carol--alpha-python")] = ["one", "two", "three"]
    assert await pod_logs.lines("alpha", "carol", "alpha-python", tail=2) == ["two", "three"]
    with pytest.raises(NotFound, match="has not restarted"):
        await pod_logs.lines("alpha", "carol", "alpha-python", tail=2, previous=True)
    cluster.previous_logs[("ws-alpha", "jupyter-carol--alpha-python")] = ["Killed"]
    assert await pod_logs.lines("alpha", "carol", "alpha-python", tail=10, previous=True) == ["Killed"]
    query = [r for r in cluster.requests if "/log" in r][-1]
    assert "container=notebook" in query and "previous=true" in query.lower()


async def test_no_pod_and_no_permission_say_which(cluster: FakeKubernetes, pod_logs):
    with pytest.raises(NotFound, match="has no pod"):
        await pod_logs.lines("alpha", "nobody", "alpha-python", tail=10)
    cluster.add_pod("ws-beta", "jupyter-carol--beta-python", {USER_LABEL: "carol", SERVER_LABEL: "beta-python"})
    cluster.forbidden.add("ws-beta")
    try:
        with pytest.raises(ServiceError, match="may not read this server's log") as e:
            await pod_logs.lines("beta", "carol", "beta-python", tail=10)
    finally:
        cluster.forbidden.discard("ws-beta")
    assert e.value.status_code == 502


async def test_a_pods_log_followed(cluster: FakeKubernetes, pod_logs):
    cluster.add_pod("ws-alpha", "jupyter-dave--alpha-python", {USER_LABEL: "dave", SERVER_LABEL: "alpha-python"})
    cluster.logs[("ws-alpha", "jupyter-dave--alpha-python")] = ["starting", "listening on 8888"]
    # (this API server ends the stream with what there is; a real one keeps it open for more)
    assert [line async for line in pod_logs.follow("alpha", "dave", "alpha-python", tail=10)] == [
        "starting",
        "listening on 8888",
    ]
    query = [r for r in cluster.requests if "/log" in r][-1]
    assert "follow=true" in query.lower() and "tailLines=10" in query


async def test_a_user_follows_a_few_logs_at_once_not_more(client):
    alice = client("alice")
    await alice.json("POST", "alpha/minimal")
    await alice.wait_ready("alpha/minimal")
    streams, received = [], []
    try:
        for _ in range(5):  # NotebooksService.max_log_follows_per_user
            stream = AsyncHTTPClient(force_instance=True)
            streams.append(stream)
            chunks: list[bytes] = []
            received.append(chunks)
            request = HTTPRequest(
                alice.hub.service_url + "alpha/minimal/-/logs?tail=1&follow=1",
                headers={"Authorization": f"token {alice.token}"},
                streaming_callback=chunks.append,
                request_timeout=60,
            )
            asyncio.ensure_future(stream.fetch(request, raise_error=False))
        deadline = time.monotonic() + 30
        while not all(b"data:" in b"".join(chunks) for chunks in received):
            assert time.monotonic() < deadline, "the five streams did not open"
            await asyncio.sleep(0.1)
        code, body = await alice.json("GET", "alpha/minimal/-/logs?follow=1")
        assert code == 429 and "following 5 server logs at once" in body["message"]
    finally:
        for stream in streams:
            stream.close()
