"""KubeSpawner placement without a cluster: the real kubespawner package, the Hub's spawn sequence,
and the pod manifest it would send (for test_hubside, test_resource_classes).

KubeSpawner loads a kube config when built: tests that build spawners use conftest's
``no_cluster`` fixture, which points it at an address nothing listens on.
"""

import contextlib
from types import SimpleNamespace

from kubernetes_asyncio.client import ApiClient
from kubespawner import KubeSpawner

from notebooks_service import hubside
from notebooks_service.app import NotebooksService
from notebooks_service.hubside import WorkspaceGuard

from conftest import HubUser

IMAGES = {"python": {"image": "quay.io/jupyter/scipy-notebook:2025-01-01", "display_name": "Python"}}


def make_user(name="alice", groups=()):
    return HubUser(
        name=name, id=1, url=f"/user/{name}/", groups=[SimpleNamespace(name=g) for g in groups], auth_state=None
    )


def guard(**service_config) -> WorkspaceGuard:
    service = NotebooksService(images=IMAGES, workspace_members={"alice": ["alpha"]}, **service_config)
    return WorkspaceGuard(service)


KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {token: unused}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


def kube_spawner(name="alpha-python", user=None, **config) -> KubeSpawner:
    orm_spawner = SimpleNamespace(name=name, display_name=name, user_options={}, server=None, state=None)
    return KubeSpawner(_mock=True, user=user or make_user(), orm_spawner=orm_spawner, **config)


def as_sent(pod) -> dict:
    """The pod as the Kubernetes client would send it to the API server."""
    return ApiClient().sanitize_for_serialization(pod)


@contextlib.contextmanager
def guard_installed(guard_: WorkspaceGuard):
    """The workspace guard in place, as setup_workspace_guard installs it in the Hub; then as before."""
    installed = dict(hubside._installed)
    hubside._installed["get_guard"] = lambda: guard_
    hubside._wrap_run_pre_spawn_hook()
    try:
        yield guard_
    finally:
        hubside._installed.clear()
        hubside._installed.update(installed)


async def _before_start(spawner, options: dict) -> None:
    """What the Hub does before start(): the options, apply_user_options, the pre-spawn hook (the guard)."""
    spawner.user_options = options
    await spawner._run_apply_user_options(options)
    await hubside.maybe_future(spawner.run_pre_spawn_hook())


async def spawn_as_the_hub(spawner, options: dict) -> str:
    """The Hub's sequence, then KubeSpawner's start()."""
    await _before_start(spawner, options)
    return await spawner.start()


async def hub_spawn_sequence(spawner, options: dict, guard_: WorkspaceGuard) -> None:
    """What the Hub and KubeSpawner do before creating a pod: the Hub's sequence, then load_user_options."""
    with guard_installed(guard_):
        await _before_start(spawner, options)
        await spawner.load_user_options()  # inside KubeSpawner.start()


async def placed_pod(options=None, *, spawner=None, guard_=None):
    spawner = spawner or kube_spawner()
    await hub_spawn_sequence(spawner, options or {"workspace": "alpha", "image": "python"}, guard_ or guard())
    return spawner, as_sent(await spawner.get_pod_manifest())
