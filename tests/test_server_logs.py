"""<server>/-/logs: the demo's local output files through the real Hub, and a pod's log from the fake API server."""

import asyncio
import json
import os
import time

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from notebooks_service.errors import NotFound, ServiceError
from notebooks_service.kube import KubeDiagnostics, KubeLogs
from notebooks_service.logs import EARLIER_MARK, local_log_path, start_local_log
from notebooks_service.naming import SERVER_LABEL, USER_LABEL

from conftest import eventually, forget_output
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
    # the last lines, then (the server is quiet) the keepalive the session's service sends after 0.2 s
    while b": keepalive\n\n" not in b"".join(received):
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


async def test_a_pods_log_is_read_with_limit_bytes_and_long_lines_cut(cluster: FakeKubernetes, pod_logs):
    cluster.add_pod("ws-alpha", "jupyter-erin--alpha-python", {USER_LABEL: "erin", SERVER_LABEL: "alpha-python"})
    cluster.logs[("ws-alpha", "jupyter-erin--alpha-python")] = ["w" * (5 * 1024 * 1024), "done"]
    # the two last lines do not fit in one answer: the newest that does is shown
    assert await pod_logs.lines("alpha", "erin", "alpha-python", tail=5) == ["done"]
    query = [r for r in cluster.requests if "/log" in r][-1]
    assert f"limitBytes={pod_logs.max_bytes}" in query and "tailLines=1" in query
    # a last line longer than an answer: its start, cut, and how much was left out of what was read
    cluster.logs[("ws-alpha", "jupyter-erin--alpha-python")] = ["w" * (5 * 1024 * 1024)]
    [cut] = await pod_logs.lines("alpha", "erin", "alpha-python", tail=5)
    assert (
        cut
        == "w" * pod_logs.max_line_bytes + f" … [line cut: {pod_logs.max_bytes - pod_logs.max_line_bytes} more bytes]"
    )


async def test_the_newest_lines_of_a_pod_are_shown_when_the_tail_does_not_fit(cluster: FakeKubernetes, pod_logs):
    cluster.add_pod("ws-alpha", "jupyter-fred--alpha-python", {USER_LABEL: "fred", SERVER_LABEL: "alpha-python"})
    cluster.logs[("ws-alpha", "jupyter-fred--alpha-python")] = [f"{i:04d} " + "v" * 2000 for i in range(1000)]
    lines = await pod_logs.lines("alpha", "fred", "alpha-python", tail=1000)  # 2 MB: more than one answer reads
    assert lines[-1].startswith("0999 ")  # the newest, not the oldest of the tail
    assert [int(line[:4]) for line in lines] == list(range(1000 - len(lines), 1000)) and len(lines) >= 250


async def test_a_pod_that_prints_invalid_utf8_has_its_log_read(cluster: FakeKubernetes, pod_logs):
    cluster.add_pod("ws-alpha", "jupyter-gina--alpha-python", {USER_LABEL: "gina", SERVER_LABEL: "alpha-python"})
    cluster.logs[("ws-alpha", "jupyter-gina--alpha-python")] = [b"caf\xe9 \xff\xfe", "fine"]
    assert await pod_logs.lines("alpha", "gina", "alpha-python", tail=10) == ["caf\ufffd \ufffd\ufffd", "fine"]


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


def follower(client, path: str, received: list) -> tuple[AsyncHTTPClient, asyncio.Future]:
    stream = AsyncHTTPClient(force_instance=True)
    request = HTTPRequest(
        client.hub.service_url + path,
        headers={"Authorization": f"token {client.token}", "Accept": "text/event-stream"},
        streaming_callback=received.append,
        request_timeout=120,
    )
    return stream, asyncio.ensure_future(stream.fetch(request, raise_error=False))


def empty_output(hub, user: str, server_name: str) -> str:
    """An output file with nothing in it yet, as a server's that has not printed."""
    forget_output(hub, user, server_name)
    path = local_log_path(os.path.join(hub.run_dir, "logs"), user, server_name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "wb").close()
    return path


async def test_a_long_line_and_a_huge_log_are_answered_in_bounded_bytes(client, hub):
    bob = client("bob")
    path = empty_output(hub, "bob", "alpha-minimal")
    with open(path, "ab") as f:
        f.write(b"start\n")
        for _ in range(50):
            f.write(b"q" * (1024 * 1024))
        f.write(b"\n" + b"short line\n" * 200_000)  # 2 MB of short lines after it
    response = await bob.request("GET", "alpha/minimal/-/logs?tail=10000")
    assert response.code == 200
    assert len(response.body) <= 1024 * 1024  # NotebooksService.max_log_bytes
    lines = [json.loads(line)["line"] for line in response.body.decode().splitlines()]
    assert lines[-1] == "short line" and len(lines) > 1000
    text = await bob.request("GET", "alpha/minimal/-/logs?tail=3&format=text")
    assert text.body.decode() == "short line\n" * 3
    with open(path, "ab") as f:
        f.write(b"r" * (3 * 1024 * 1024) + b"\n")
    [cut] = [
        json.loads(line)["line"] for line in (await bob.request("GET", "alpha/minimal/-/logs?tail=1")).body.splitlines()
    ]
    # longer than one answer reads: its end is read, its first 16 KiB of that shown, and both ends said
    assert cut.startswith(EARLIER_MARK + "r" * 100) and cut.endswith(
        f"[line cut: {1024 * 1024 - 1 - 16 * 1024} more bytes]"
    )
    forget_output(hub, "bob", "alpha-minimal")


async def test_followers_that_leave_before_any_line_free_their_slots(client, hub):
    bob = client("bob")
    empty_output(hub, "bob", "alpha-minimal")
    streams = []
    try:
        for _ in range(5):  # NotebooksService.max_log_follows_per_user, on a log that says nothing
            received: list[bytes] = []
            streams.append((*follower(bob, "alpha/minimal/-/logs", received), received))
        await eventually(lambda: all(r for _, _, r in streams), message="the streams to begin")
        code, body = await bob.json("GET", "alpha/minimal/-/logs?follow=1")
        assert code == 429
        for stream, _, _ in streams:
            stream.close()  # they give up before the first line

        async def a_slot_is_free():
            while True:
                received: list[bytes] = []
                stream, fetching = follower(bob, "alpha/minimal/-/logs", received)
                try:
                    while not received and not fetching.done():
                        await asyncio.sleep(0.1)
                    if received:
                        return
                    assert fetching.result().code == 429, fetching.result().code
                finally:
                    stream.close()
                await asyncio.sleep(0.2)

        await asyncio.wait_for(a_slot_is_free(), 10)  # within seconds, not at the next line
    finally:
        for stream, _, _ in streams:
            stream.close()
        forget_output(hub, "bob", "alpha-minimal")


async def test_a_new_run_ends_the_followers_of_the_old_one_and_the_process_has_a_cap(client, hub):
    bob, alice = client("bob"), client("alice")
    empty_output(hub, "bob", "alpha-minimal")
    empty_output(hub, "alice", "alpha-minimal")
    opened = []
    try:
        for who in [bob] * 3 + [alice] * 5:  # the test Hub's service follows 8 logs at most
            received: list[bytes] = []
            opened.append((*follower(who, "alpha/minimal/-/logs", received), received))
        await eventually(lambda: all(r for _, _, r in opened), message="the streams to begin")
        code, body = await bob.json("GET", "alpha/minimal/-/logs?follow=1")
        assert code == 503 and "as many server logs as it can" in body["message"]
        # bob's server starts again: a new output file; the followers of the old one end
        start_local_log(os.path.join(hub.run_dir, "logs"), "bob", "alpha-minimal").close()
        await eventually(lambda: all(f.done() for _, f, _ in opened[:3]), timeout=15, message="bob's followers to end")
        assert not any(f.done() for _, f, _ in opened[3:])  # alice's log did not change
    finally:
        for stream, _, _ in opened:
            stream.close()
        forget_output(hub, "bob", "alpha-minimal")
        forget_output(hub, "alice", "alpha-minimal")
