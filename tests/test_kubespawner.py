"""KubeSpawner.start() itself, against the fake Kubernetes API over HTTP: what the Hub runs, unmodified.

JupyterHub keeps the Spawner of a failed start and "Start again" runs on the same instance:
the retry must create the pod its own options ask for, which the API server accepts.
"""

import asyncio
import json
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from kubespawner import KubeSpawner

from notebooks_service.app import NotebooksService
from notebooks_service.demo import RESOURCE_CLASSES
from notebooks_service.hubside import WorkspaceGuard

from conftest import HubUser, Tokens, running_hub, stop_all_servers, wait_for
from kube_pods import guard_installed
from kube_pods import spawn_as_the_hub as spawn
from service_client import ServiceClient

pytestmark = pytest.mark.hub_version  # the second pass of `make test` runs it on z2jh 4.4.0's Hub too

IMAGES = {
    "python": {
        "image": "quay.io/jupyter/scipy-notebook:2025-01-01",
        "resource_classes": ["small", "gpu"],
        "default_resource_class": "small",
    }
}
QUOTA = (
    'pods "jupyter-alice--alpha-python" is forbidden: exceeded quota: ws-alpha, requested: '
    "requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=0, limited: requests.nvidia.com/gpu=0"
)


@pytest.fixture
def guarded():
    """The workspace guard in place, as setup_workspace_guard installs it in the Hub."""
    service = NotebooksService(images=IMAGES, resource_classes=RESOURCE_CLASSES, workspace_members={"alice": ["alpha"]})
    guard = WorkspaceGuard(service)
    with guard_installed(guard):
        yield guard


def spawner_for(api, **config) -> KubeSpawner:
    user = HubUser(name="alice", id=1, url="/user/alice/", groups=[], auth_state=None)
    orm_spawner = SimpleNamespace(
        name="alpha-python", display_name="alpha/python", user_options={}, server=None, state=None
    )
    return KubeSpawner(_mock=True, user=user, orm_spawner=orm_spawner, k8s_api_host=api.url, start_timeout=30, **config)


async def test_a_start_that_failed_starts_again_on_the_same_spawner(api, guarded):
    spawner = spawner_for(api, volumes=[{"name": "scratch", "emptyDir": {}}], node_selector={"pool": "users"})
    api.pod_refusals.append((403, "Forbidden", QUOTA))  # the workspace's ResourceQuota allows no GPU
    with pytest.raises(Exception, match="Forbidden"):
        await spawn(spawner, {"workspace": "alpha", "image": "python", "resource_class": "gpu"})
    await spawner.stop()  # what the Hub does with a failed start; it keeps the Spawner

    url = await spawn(spawner, {"workspace": "alpha", "image": "python", "resource_class": "small"})
    assert url == "http://127.0.0.1:8888"
    first, retried = api.created
    assert first["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert [v["name"] for v in retried["spec"]["volumes"]] == ["scratch", "workspace"]
    container = retried["spec"]["containers"][0]
    assert [m["mountPath"] for m in container["volumeMounts"]].count("/home/jovyan/workspace") == 1
    assert "nvidia.com/gpu" not in container["resources"].get("limits", {})
    assert retried["spec"]["nodeSelector"] == {"pool": "users"}
    assert not retried["spec"].get("tolerations")
    assert retried["metadata"]["namespace"] == "ws-alpha"
    assert await spawner.poll() is None  # running, as KubeSpawner sees it through its reflector
    await spawner.stop()
    assert await spawner.poll() is not None and not api.pods["ws-alpha"]  # deleted, and seen gone


async def test_the_fake_api_refuses_a_pod_with_a_volume_twice_as_the_api_server_does(api):
    spawner = spawner_for(
        api, volumes=[{"name": "w", "emptyDir": {}}, {"name": "w", "emptyDir": {}}], namespace="ws-alpha"
    )
    with pytest.raises(Exception, match="Unprocessable Entity") as e:
        await spawner.start()
    said = json.loads(e.value.body)
    assert said["reason"] == "Invalid" and said["code"] == 422
    assert said["message"] == 'Pod "jupyter-alice--alpha-python" is invalid: spec.volumes[1].name: Duplicate value: "w"'


# -- through the service, with a real Hub on KubeSpawner ------------------------------


@pytest.fixture(scope="module")
def kube_hub(tmp_path_factory, cluster):
    port = urlsplit(cluster.url).port
    env = {"KUBECONFIG": cluster.kubeconfig_path, "NOTEBOOKS_TEST_KUBE_URL": cluster.url}
    env["NOTEBOOKS_TEST_KUBE_PORT"] = str(port)
    with running_hub(tmp_path_factory.mktemp("kubespawner-hub"), "hub_kubespawner_config.py", env=env) as hub:
        yield hub


async def test_a_failed_start_starts_again_through_the_service_on_kubespawner(kube_hub, cluster):
    cluster.clear()
    alice = ServiceClient(kube_hub, Tokens(kube_hub)["alice"])
    try:

        async def refuse_once():
            cluster.pod_refusals.append((403, "Forbidden", QUOTA))

        cluster.call(refuse_once)
        code, body = await alice.json("POST", "alpha/python?resource_class=gpu")
        assert code in (202, 502), body  # the Hub answers at once (slow_spawn_timeout 0), the spawn fails

        async def failed():
            while True:
                code, body = await alice.json("GET", "alpha/python")
                if code == 404 and "exceeded quota" in body["message"]:
                    return body
                await asyncio.sleep(0.2)

        await asyncio.wait_for(failed(), 60)
        code, body = await alice.json("POST", "alpha/python?resource_class=small")
        assert code in (201, 202), body
        model = await alice.wait_ready("alpha/python")
        assert model["resource_class"] == "small"
        first, retried = cluster.created
        assert first["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert [v["name"] for v in retried["spec"]["volumes"]] == ["scratch", "workspace"]
        assert "nvidia.com/gpu" not in retried["spec"]["containers"][0]["resources"].get("limits", {})
        assert not retried["spec"].get("tolerations") and not retried["spec"].get("nodeSelector")
        code, _ = await alice.json("DELETE", "alpha/python")
        assert code in (202, 204)
        wait_for(lambda: not cluster.pods.get("ws-alpha"), message="the pod to be deleted")
    finally:
        stop_all_servers(kube_hub, "alice")
        alice.close()
