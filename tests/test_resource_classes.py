"""Resource classes: offered per image and workspace, chosen at start, refused when forged, applied to KubeSpawner."""

import pytest

from notebooks_service.app import NotebooksService
from notebooks_service.demo import IMAGES as DEMO_IMAGES
from notebooks_service.demo import RESOURCE_CLASSES as DEMO_CLASSES
from notebooks_service.errors import InvalidRequest
from notebooks_service.hubside import WorkspaceGuard
from notebooks_service.naming import RESOURCE_CLASS_LABEL
from notebooks_service.resources import choose, normalise_classes, offered

from conftest import admin_request, start_around_the_service
from kube_pods import IMAGES, kube_spawner, placed_pod

pytestmark = [pytest.mark.hub_version, pytest.mark.usefixtures("no_cluster")]

CLASSES = normalise_classes(DEMO_CLASSES)
PYTHON = {
    **IMAGES["python"],
    "name": "python",
    "resource_classes": ["small", "large", "gpu"],
    "default_resource_class": "small",
}


def test_the_default_the_choice_and_the_limits_of_a_workspace():
    assert choose(PYTHON, CLASSES, None)["name"] == "small"
    assert choose(PYTHON, CLASSES, "gpu")["gpus"] == 1
    assert offered(PYTHON, CLASSES, narrowed=["small", "large"]) == ["small", "large"]
    with pytest.raises(InvalidRequest, match="'gpu' is not offered for 'python' here: choose small, large"):
        choose(PYTHON, CLASSES, "gpu", narrowed=["small", "large"])
    with pytest.raises(InvalidRequest, match="'huge' is not offered"):
        choose(PYTHON, CLASSES, "huge")
    assert choose(PYTHON, {}, None) is None  # no classes configured: nothing to choose
    with pytest.raises(InvalidRequest, match="offers no resource classes"):
        choose(PYTHON, {}, "small")


@pytest.mark.parametrize(
    "classes, says",
    [
        ({"big": {"cpu_limit": "lots"}}, "cpu_limit must be a number"),
        ({"big": {"gpus": -1}}, "gpus must be a whole number"),
        ({"big": {"memory": "8G"}}, "unknown setting 'memory'"),
        ({"big one": {}}, "letters, digits and hyphens"),
        # sizes are read when the configuration is, as KubeSpawner reads them: not at the first count (a 500)
        ({"big": {"mem_limit": "4e9"}}, "big.*mem_limit '4e9' is not an amount of memory above 0"),
        ({"big": {"mem_guarantee": "2Gi"}}, "mem_guarantee '2Gi' is not an amount of memory"),
        ({"big": {"mem_limit": "-1G"}}, "mem_limit '-1G' is not an amount of memory above 0"),
        ({"big": {"mem_limit": True}}, "mem_limit 'True' is not an amount of memory"),
        ({"big": {"cpu_limit": -2}}, "cpu_limit must be a number of CPUs above 0, not -2"),
        ({"big": {"cpu_guarantee": 0}}, "cpu_guarantee must be a number of CPUs above 0"),
        ({"big": {"cpu_limit": True}}, "cpu_limit must be a number of CPUs above 0, not True"),
    ],
)
def test_a_bad_class_is_a_start_up_error(classes, says):
    with pytest.raises(Exception, match=says):
        NotebooksService(resource_classes=classes)


def test_an_image_naming_a_class_that_is_not_configured_is_a_start_up_error():
    service = NotebooksService(
        images={"python": {"image": "x", "resource_classes": ["huge"]}}, resource_classes=DEMO_CLASSES
    )
    with pytest.raises(ValueError, match="names resource class 'huge', which is not configured"):
        service.make_policy()


async def test_kubespawner_runs_the_class_it_was_given():
    service = NotebooksService(
        images={"python": PYTHON}, resource_classes=DEMO_CLASSES, workspace_members={"alice": ["alpha"]}
    )
    spawner = kube_spawner(node_selector={"pool": "users"}, tolerations=[{"key": "users", "operator": "Exists"}])
    _, pod = await placed_pod(
        {"workspace": "alpha", "image": "python", "resource_class": "gpu"},
        spawner=spawner,
        guard_=WorkspaceGuard(service),
    )
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources["limits"] == {
        "cpu": 8.0,
        "memory": 32 * 1024**3,
        "nvidia.com/gpu": "1",
    }  # as KubeSpawner writes them
    assert resources["requests"]["nvidia.com/gpu"] == "1"
    assert pod["spec"]["nodeSelector"] == {"pool": "users", "nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["spec"]["tolerations"]
    assert {"key": "users", "operator": "Exists"} in pod["spec"]["tolerations"]
    assert pod["metadata"]["labels"][RESOURCE_CLASS_LABEL] == "gpu"


async def test_a_workspace_policy_narrows_the_classes_on_the_hub_side_too():
    service = NotebooksService(
        images={"python": PYTHON}, resource_classes=DEMO_CLASSES, workspace_members={"alice": ["alpha"]}
    )
    service.config.WorkspacePolicy.workspace_resource_classes = {"alpha": ["small"]}
    guard = WorkspaceGuard(service)
    with pytest.raises(InvalidRequest, match="'large' is not offered for 'python' here: choose small"):
        await placed_pod({"workspace": "alpha", "image": "python", "resource_class": "large"}, guard_=guard)


# -- through the real Hub ----------------------------------------------------------------------

uses_servers = pytest.mark.usefixtures("clean_servers")


@uses_servers
async def test_a_chosen_class_is_started_reported_and_kept(client, hub):
    alice = client("alice")
    code, model = await alice.json("POST", "alpha/python?resource_class=large")
    assert code in (201, 202) and model["resource_class"] == "large"
    _, user = admin_request(hub, "GET", "/users/alice")
    assert user["servers"]["alpha-python"]["user_options"]["resource_class"] == "large"
    # another class for a running server is never a second server: a restart (tests/test_day_two.py)
    code, body = await alice.json("POST", "alpha/python?resource_class=small")
    assert code == 409 and "restart it to run it with 'small'" in body["message"]
    # asking again without a class returns it as it runs
    code, model = await alice.json("POST", "alpha/python")
    assert code in (201, 202) and model["resource_class"] == "large"
    [listed] = (await alice.json("GET", ""))[1]
    assert listed["resource_class"] == "large"


@uses_servers
async def test_classes_outside_the_offer_are_refused_by_the_service_and_the_hub(client, hub, tokens):
    alice = client("alice")
    code, body = await alice.json("POST", "alpha/minimal?resource_class=gpu")
    assert code == 400 and body["message"] == "Resource class 'gpu' is not offered for 'minimal' here: choose small."
    # the same, asked of the Hub directly with alice's own token
    refusal = await start_around_the_service(
        hub,
        tokens["alice"],
        "alice",
        "alpha-minimal",
        {"workspace": "alpha", "image": "minimal", "resource_class": "gpu"},
    )
    assert "'gpu' is not offered for 'minimal'" in refusal
    _, user = admin_request(hub, "GET", "/users/alice")
    assert "alpha-minimal" not in user["servers"]


def test_the_demo_offers_classes_its_images_name():
    service = NotebooksService(images=DEMO_IMAGES, resource_classes=DEMO_CLASSES)
    service.make_policy()  # no start-up error
    assert offered(service.images["minimal"], service.resource_classes) == ["small"]


async def test_a_retry_on_the_same_spawner_gets_exactly_the_pod_its_own_options_ask_for():
    # JupyterHub keeps the Spawner of a failed start: "Start again" runs the whole sequence on it once more
    service = NotebooksService(
        images={"python": PYTHON}, resource_classes=DEMO_CLASSES, workspace_members={"alice": ["alpha"]}
    )
    guard = WorkspaceGuard(service)
    configured = dict(
        node_selector={"pool": "users"},
        tolerations=[{"key": "users", "operator": "Exists"}],
        volumes=[{"name": "scratch", "emptyDir": {}}],
        volume_mounts=[{"name": "scratch", "mountPath": "/scratch"}],
        profile_list=[
            {"display_name": "Default", "default": True, "kubespawner_override": {"environment": {"A": "1"}}}
        ],
    )
    spawner = kube_spawner(**configured)
    await placed_pod({"workspace": "alpha", "image": "python", "resource_class": "gpu"}, spawner=spawner, guard_=guard)
    _, retried = await placed_pod(
        {"workspace": "alpha", "image": "python", "resource_class": "small"}, spawner=spawner, guard_=guard
    )
    spec = retried["spec"]
    assert [v["name"] for v in spec["volumes"]] == ["scratch", "workspace"]
    container = spec["containers"][0]
    assert [m["name"] for m in container["volumeMounts"]] == ["scratch", "workspace"]
    assert "nvidia.com/gpu" not in container["resources"].get("limits", {})
    assert "nvidia.com/gpu" not in container["resources"].get("requests", {})
    assert spec["nodeSelector"] == {"pool": "users"}
    assert spec["tolerations"] == [{"key": "users", "operator": "Exists"}]
    assert retried["metadata"]["labels"][RESOURCE_CLASS_LABEL] == "small"
    # the very pod a fresh Spawner makes for these options
    _, fresh = await placed_pod(
        {"workspace": "alpha", "image": "python", "resource_class": "small"},
        spawner=kube_spawner(**configured),
        guard_=guard,
    )
    assert retried == fresh


@uses_servers
async def test_a_json_start_body_chooses_the_class_and_odd_bodies_are_400s(client, hub):
    alice = client("alice")
    as_json = {"Content-Type": "application/json"}
    for body, says in [
        (b'{"resource_class": "large", "image": "evil"}', "not 'image'"),
        (b'{"resource_class": 3}', "resource_class must be a string"),
        (b"[1]", "must be a JSON object"),
        (b"{nope", "not valid JSON"),
    ]:
        code, answer = await alice.json("POST", "alpha/python", headers=as_json, body=body)
        assert code == 400 and says in answer["message"], (body, answer)
    code, answer = await alice.json(
        "POST", "alpha/python?resource_class=small", headers=as_json, body=b'{"resource_class": "large"}'
    )
    assert code == 400 and "'small'" in answer["message"] and "'large'" in answer["message"]
    _, user = admin_request(hub, "GET", "/users/alice")
    assert "alpha-python" not in user["servers"]  # none of these started anything
    code, model = await alice.json("POST", "alpha/python", headers=as_json, body=b'{"resource_class": "large"}')
    assert code in (201, 202) and model["resource_class"] == "large"
    _, user = admin_request(hub, "GET", "/users/alice")
    assert user["servers"]["alpha-python"]["user_options"]["resource_class"] == "large"
