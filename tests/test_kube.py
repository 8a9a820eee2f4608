"""kube.py against the fake API server, with the kubernetes-asyncio client unmodified."""

import asyncio
from urllib.parse import parse_qs, urlsplit

import pytest

from notebooks_service.kube import KubeDiagnostics
from notebooks_service.naming import SERVER_LABEL, USER_LABEL

from fake_kubernetes import FakeKubernetes

LABELS = {USER_LABEL: "alice", SERVER_LABEL: "alpha-python"}


def query_of(uri: str) -> dict:
    return parse_qs(urlsplit(uri).query)


@pytest.fixture
async def kube(cluster):
    cluster.clear()
    diagnostics = KubeDiagnostics("kubeconfig", kubeconfig=cluster.kubeconfig_path, namespace_template="ws-{workspace}")
    yield diagnostics
    await diagnostics.close()
    cluster.clear()  # the session's cluster: leave nothing for the next test


async def test_finds_the_pod_by_labels_in_the_workspace_namespace(cluster, kube):
    cluster.add_pod("ws-alpha", "jupyter-alice--alpha-python", LABELS, phase="Running")
    cluster.add_pod("ws-alpha", "jupyter-bob--alpha-python", {USER_LABEL: "bob", SERVER_LABEL: "alpha-python"})
    cluster.add_pod("ws-beta", "jupyter-alice--alpha-python-elsewhere", LABELS)
    pod = await kube.find_pod("alpha", "alice", "alpha-python")
    assert pod.metadata.name == "jupyter-alice--alpha-python"
    assert query_of(cluster.requests[-1])["labelSelector"] == [
        "notebooks-service.jupyter.org/user=alice,notebooks-service.jupyter.org/server=alpha-python"
    ]


async def test_a_pod_with_alices_labels_but_anothers_names_is_not_shown_to_her(cluster, kube):
    # labels written under an older rule, or by anyone who can label pods: the annotations decide
    cluster.add_pod(
        "ws-alpha",
        "jupyter-mallory--alpha-python",
        LABELS,
        phase="Running",
        annotations={"hub.jupyter.org/username": "mallory", "hub.jupyter.org/servername": "alpha-python"},
    )
    cluster.add_event("ws-alpha", "jupyter-mallory--alpha-python", "Started", "mallory's secret work")
    assert await kube.find_pod("alpha", "alice", "alpha-python") is None
    status = await kube.status("alpha", "alice", "alpha-python")
    assert status["message"] == "No pod yet." and "mallory" not in str(status)
    cluster.add_pod("ws-alpha", "jupyter-alice--alpha-python", LABELS, phase="Running")
    assert (await kube.find_pod("alpha", "alice", "alpha-python")).metadata.name == "jupyter-alice--alpha-python"


async def test_image_pull_backoff_is_reported(cluster, kube):
    cluster.add_pod(
        "ws-alpha",
        "jupyter-alice--alpha-python",
        LABELS,
        waiting=("ImagePullBackOff", 'Back-off pulling image "nope:latest"'),
    )
    cluster.add_event(
        "ws-alpha", "jupyter-alice--alpha-python", "Failed", 'Failed to pull image "nope:latest": not found'
    )
    status = await kube.status("alpha", "alice", "alpha-python")
    assert status["kubernetes"] == "ok"
    details = status["details"]
    assert details["namespace"] == "ws-alpha" and details["phase"] == "Pending"
    assert details["problems"] == [
        {
            "container": "notebook",
            "reason": "ImagePullBackOff",
            "message": 'Back-off pulling image "nope:latest"',
            "image": "quay.io/jupyter/scipy-notebook",  # the image the container has, as the kubelet reports it
        }
    ]
    assert details["events"][-1]["reason"] == "Failed" and "not found" in details["events"][-1]["message"]
    assert status["message"].startswith("ImagePullBackOff")


@pytest.mark.parametrize("reason", ["ErrImagePull", "CrashLoopBackOff"])
async def test_other_waiting_reasons(cluster, kube, reason):
    cluster.add_pod("ws-alpha", "p", LABELS, waiting=(reason, "details"))
    assert (await kube.status("alpha", "alice", "alpha-python"))["details"]["problems"][0]["reason"] == reason


async def test_unschedulable_is_reported(cluster, kube):
    cluster.add_pod("ws-alpha", "p", LABELS, unschedulable="0/3 nodes are available: 3 Insufficient memory.")
    problems = (await kube.status("alpha", "alice", "alpha-python"))["details"]["problems"]
    assert problems == [
        {"container": None, "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient memory."}
    ]


async def test_only_recent_events_in_order(cluster, kube):
    cluster.add_pod("ws-alpha", "p", LABELS)
    for i in range(15):
        cluster.add_event("ws-alpha", "p", f"Step{i}", "m", type_="Normal")
    events = (await kube.status("alpha", "alice", "alpha-python"))["details"]["events"]
    assert len(events) == 10


async def test_no_pod_yet(kube):
    assert await kube.status("alpha", "alice", "alpha-python") == {
        "kubernetes": "ok",
        "message": "No pod yet.",
        "details": {},
    }


async def test_unreachable_cluster_is_said_not_raised(tmp_path):
    config = tmp_path / "config"
    config.write_text(FakeKubernetes.kubeconfig(type("Dead", (), {"url": "http://127.0.0.1:9"})()))
    kube = KubeDiagnostics("kubeconfig", kubeconfig=str(config), namespace_template="ws-{workspace}", request_timeout=2)
    status = await kube.status("alpha", "alice", "alpha-python")
    assert status["kubernetes"] == "unreachable" and "Hub's view only" in status["message"]
    await kube.close()


async def test_an_rbac_refusal_is_said_as_such_not_as_unreachable(cluster, kube):
    cluster.add_pod("ws-alpha", "p", LABELS)
    cluster.forbidden.add("ws-alpha")
    try:
        status = await kube.status("alpha", "alice", "alpha-python")
    finally:
        cluster.forbidden.discard("ws-alpha")
    assert status["kubernetes"] == "forbidden"
    assert "403 Forbidden" in status["message"] and "may not read pods and events in ws-alpha" in status["message"]
    assert "could not be reached" not in status["message"]


async def test_watch_follows_new_events(cluster, kube):
    cluster.add_pod("ws-alpha", "p", LABELS)
    cluster.add_event("ws-alpha", "p", "Scheduled", "assigned to node-1", type_="Normal")
    seen = []

    async def follow():
        async for event in kube.watch_events("alpha", "alice", "alpha-python", poll=0.1):
            seen.append(event["reason"])
            if len(seen) == 2:
                return

    task = asyncio.ensure_future(follow())
    deadline = asyncio.get_running_loop().time() + 10
    while not seen:
        assert asyncio.get_running_loop().time() < deadline, "no watch event"
        await asyncio.sleep(0.05)
    cluster.add_event("ws-alpha", "p", "Pulling", 'Pulling image "x"', type_="Normal")
    await asyncio.wait_for(task, 10)
    assert seen == ["Scheduled", "Pulling"]
    watches = [query_of(r) for r in cluster.requests if "/events" in r and "watch" in query_of(r)]
    assert watches and watches[0]["fieldSelector"] == ["involvedObject.name=p"]


@pytest.mark.parametrize(
    "pod, says",
    [
        (
            {
                "waiting": (
                    "ErrImagePull",
                    "rpc error: code = NotFound desc = failed to pull and unpack image "
                    '"quay.io/jupyter/nope:1": failed to resolve reference "quay.io/jupyter/nope:1": not found',
                )
            },
            "The image quay.io/jupyter/scipy-notebook cannot be pulled (rpc error: code = NotFound",
        ),
        (
            {"waiting": ("ImagePullBackOff", 'Back-off pulling image "quay.io/jupyter/nope:1"')},
            "cannot be pulled (Back-off pulling image",
        ),
        (
            {
                "unschedulable": "0/3 nodes are available: 1 Insufficient cpu, 2 Insufficient nvidia.com/gpu. "
                "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
            },
            "There is no room for this server right now (not enough CPU, GPUs): try again later, or choose a smaller class.",
        ),
        (
            {"phase": "Running", "last_terminated": ("OOMKilled", 137)},
            "The server ran out of memory and was stopped: choose a larger class, or use less memory.",
        ),
        (
            {"phase": "Running", "last_terminated": ("Error", 137)},  # killed by the kernel without the reason
            "ran out of memory",
        ),
        (
            {
                "waiting": (
                    "CrashLoopBackOff",
                    "back-off 40s restarting failed container=notebook "
                    "pod=jupyter-alice--alpha-python_ws-alpha(6b1f2c3d-0000-4000-8000-000000000000)",
                )
            },
            "keeps crashing as it starts: its log (the previous container's) says why",
        ),
        ({"phase": "Running"}, None),
    ],
    ids=["image-not-found", "image-back-off", "no-capacity", "oom-killed", "exit-137", "crash-loop", "healthy"],
)
async def test_problems_come_with_a_next_step(cluster, kube, pod, says):
    cluster.add_pod("ws-alpha", "p", LABELS, **pod)
    status = await kube.status("alpha", "alice", "alpha-python")
    if says is None:
        assert status["hint"] is None
    else:
        assert says in status["hint"]


async def test_a_crash_loop_shows_the_last_lines_of_the_container_that_crashed(cluster, kube):
    cluster.add_pod(
        "ws-alpha",
        "p",
        LABELS,
        waiting=("CrashLoopBackOff", "back-off 40s restarting failed container=notebook pod=p_ws-alpha(1)"),
    )
    cluster.previous_logs[("ws-alpha", "p")] = ["starting", "ModuleNotFoundError: No module named 'jupyterlab'"]
    status = await kube.status("alpha", "alice", "alpha-python")
    assert status["details"]["last_lines"][-1] == "ModuleNotFoundError: No module named 'jupyterlab'"


async def test_a_gone_pods_events_are_found_by_its_name(cluster, kube):
    cluster.add_event("ws-alpha", "jupyter-alice--alpha-python", "FailedScheduling", "0/3 nodes are available")
    events = await kube.past_events("alpha", "alice", "alpha-python")
    assert [e["reason"] for e in events] == ["FailedScheduling"]
    assert await kube.past_events("alpha", "bob", "alpha-python") == []
