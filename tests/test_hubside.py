"""The Hub-side guard and KubeSpawner placement, with the real kubespawner package (no cluster)."""

import subprocess
import sys
from types import SimpleNamespace

import pytest
from kubespawner import KubeSpawner
from traitlets import TraitError
from traitlets.config import Config

from notebooks_service import hubside
from notebooks_service.app import NotebooksService
from notebooks_service.config import SharedConfig
from notebooks_service.errors import InvalidRequest, NotAMember, NotFound
from notebooks_service.hubside import WorkspaceGuard, load_guard
from notebooks_service.naming import IMAGE_LABEL, WORKSPACE_LABEL

from kube_pods import IMAGES, guard, hub_spawn_sequence, kube_spawner, make_user, placed_pod

pytestmark = [pytest.mark.hub_version, pytest.mark.usefixtures("no_cluster")]


def local_spawner(name="alpha-python", user=None):
    return SimpleNamespace(name=name, user=user or make_user())


async def test_member_passes_and_non_member_is_refused():
    g = guard()
    assert (await g.check(local_spawner(), {"workspace": "alpha", "image": "python"}))[0] == "alpha"
    with pytest.raises(NotAMember, match="not a member of workspace 'beta'"):
        await g.check(local_spawner("beta-python"), {"workspace": "beta", "image": "python"})


@pytest.mark.parametrize(
    "name, options, error, says",
    [
        ("alpha-cobol", {"workspace": "alpha", "image": "cobol"}, NotFound, "Unknown image"),
        ("x", {"workspace": "Not_A_Namespace", "image": "python"}, InvalidRequest, "Invalid workspace name"),
        ("sneaky", {"workspace": "alpha", "image": "python"}, InvalidRequest, "must be named 'alpha-python'"),
        ("alpha-python", {"workspace": "alpha"}, InvalidRequest, "both 'workspace' and 'image'"),
        ("alpha-python", {"workspace": ["alpha"], "image": "python"}, InvalidRequest, "as strings"),
        ("", {}, NotAMember, "workspace servers only"),
    ],
)
async def test_bad_options_are_refused(name, options, error, says):
    with pytest.raises(error, match=says):
        await guard().check(local_spawner(name), options)


async def test_unscoped_servers_when_allowed():
    g = guard()
    g.allow_unscoped_servers = True
    assert await g.check(local_spawner(""), {}) is None


async def test_hub_groups_policy_works_inside_the_hub():
    g = guard(workspace_policy_class="hub-groups")
    user = make_user(groups=["beta"])
    assert (await g.check(local_spawner("beta-python", user), {"workspace": "beta", "image": "python"}))[0] == "beta"


def test_guard_loads_the_services_config_file(tmp_path):
    config = tmp_path / "notebooks_service_config.py"
    config.write_text(
        "c.NotebooksService.images = {'python': 'img'}\n"
        "c.NotebooksService.workspace_members = {'bob': ['alpha']}\n"
        "c.NotebooksService.namespace_template = 'team-{workspace}'\n"
        "c.WorkspacePlacement.volume_mount_path = '/data'\n"
    )
    g = load_guard(str(config))
    assert list(g.service.images) == ["python"]
    assert g.policy.members == {"bob": ["alpha"]}
    assert g.service.namespace_template == "team-{workspace}"
    assert g.placement.volume_mount_path == "/data"


# -- KubeSpawner pod manifests ---------------------------------------------------


async def test_pod_lands_in_the_workspace_namespace_named_after_its_server():
    spawner, pod = await placed_pod()
    assert spawner.namespace == "ws-alpha"  # KubeSpawner creates the pod in spawner.namespace
    assert pod["metadata"]["name"] == "jupyter-alice--alpha-python"
    assert pod["spec"]["containers"][0]["image"] == "quay.io/jupyter/scipy-notebook:2025-01-01"


async def test_volumes_configured_as_dicts_as_z2jh_does_keep_their_form():
    home = {"name": "home", "persistentVolumeClaim": {"claimName": "claim-{username}"}}
    spawner = kube_spawner(
        volumes={"01-home": home}, volume_mounts={"01-home": {"name": "home", "mountPath": "/home/jovyan"}}
    )
    _, pod = await placed_pod(spawner=spawner)
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["home", "workspace"]
    mounts = [m["mountPath"] for m in pod["spec"]["containers"][0]["volumeMounts"]]
    assert mounts.index("/home/jovyan") < mounts.index("/home/jovyan/workspace")  # the home first, then inside it


async def test_pod_mounts_the_workspace_volume_and_sets_workspace_env():
    _, pod = await placed_pod()
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["workspace"]["persistentVolumeClaim"] == {"claimName": "pvc-alpha"}
    container = pod["spec"]["containers"][0]
    assert {"name": "workspace", "mountPath": "/home/jovyan/workspace"} in container["volumeMounts"]
    assert {"name": "WORKSPACE", "value": "alpha"} in container["env"]


async def test_pod_is_labelled_and_annotated_with_workspace_and_image():
    _, pod = await placed_pod()
    labels, annotations = pod["metadata"]["labels"], pod["metadata"]["annotations"]
    assert labels[WORKSPACE_LABEL] == "alpha" and labels[IMAGE_LABEL] == "python"
    assert labels["hub.jupyter.org/servername"] == "alpha-python"
    assert annotations[WORKSPACE_LABEL] == "alpha"
    assert annotations["notebooks-service.jupyter.org/image-ref"] == "quay.io/jupyter/scipy-notebook:2025-01-01"


async def test_workspace_configmap_env_when_configured():
    g = guard()
    g.placement.env_configmap_template = "ws-{workspace}-env"
    _, pod = await placed_pod(guard_=g)
    assert pod["spec"]["containers"][0]["envFrom"] == [{"configMapRef": {"name": "ws-alpha-env", "optional": True}}]


async def test_namespace_template_comes_from_the_service_config():
    spawner, _ = await placed_pod(guard_=guard(namespace_template="team-{workspace}"))
    assert spawner.namespace == "team-alpha"


async def test_two_servers_of_one_user_in_one_workspace_get_distinct_pods():
    images = {**IMAGES, "minimal": "quay.io/jupyter/base-notebook"}
    g = WorkspaceGuard(NotebooksService(images=images, workspace_members={"alice": ["alpha"]}))
    names = set()
    for image in ("python", "minimal"):
        spawner, pod = await placed_pod(
            {"workspace": "alpha", "image": image}, spawner=kube_spawner(f"alpha-{image}"), guard_=g
        )
        assert spawner.namespace == "ws-alpha"
        names.add(pod["metadata"]["name"])
    assert len(names) == 2


async def test_shared_configuration_is_not_mutated():
    shared_volumes = [{"name": "scratch", "emptyDir": {}}]
    first = kube_spawner(volumes=shared_volumes)
    await placed_pod(spawner=first)
    assert shared_volumes == [{"name": "scratch", "emptyDir": {}}]
    names = [v["name"] for v in first.volumes]
    assert names == ["scratch", "workspace"]


async def test_refused_spawn_leaves_the_spawner_untouched():
    spawner = kube_spawner("beta-python")
    namespace = spawner.namespace
    with pytest.raises(NotAMember):
        await hub_spawn_sequence(spawner, {"workspace": "beta", "image": "python"}, guard())
    assert spawner.namespace == namespace and spawner.image != IMAGES["python"]["image"]


# -- KubeSpawner profile_list (z2jh's singleuser.profileList) cannot undo the guard ----

PROFILES = [
    {
        "display_name": "Default",
        "default": True,
        "kubespawner_override": {
            "image": "quay.io/other/default-profile:latest",
            "namespace": "elsewhere",
            "extra_labels": {"profile": "default"},
        },
    },
    {
        "display_name": "Free choice",
        "slug": "free",
        "profile_options": {
            "image": {
                "display_name": "Image",
                "unlisted_choice": {"enabled": True, "kubespawner_override": {"image": "{value}"}},
                "choices": {"a": {"display_name": "A", "kubespawner_override": {"image": "a:1"}}},
            }
        },
    },
]


async def test_a_default_profile_does_not_change_a_workspace_servers_image_or_namespace():
    spawner, pod = await placed_pod(spawner=kube_spawner(profile_list=PROFILES))
    assert spawner.namespace == "ws-alpha"
    assert pod["spec"]["containers"][0]["image"] == IMAGES["python"]["image"]
    assert pod["metadata"]["labels"][WORKSPACE_LABEL] == "alpha"


@pytest.mark.parametrize(
    "extra, key",
    [
        ({"profile": "free", "image--unlisted-choice": "evil.example/miner:latest"}, "image--unlisted-choice"),
        ({"profile": "free"}, "profile"),
        ({"namespace": "kube-system"}, "namespace"),
        ({"cmd": ["sh"]}, "cmd"),
    ],
)
async def test_user_options_beyond_workspace_and_image_are_refused_by_name(extra, key):
    spawner = kube_spawner(profile_list=PROFILES)
    with pytest.raises(InvalidRequest, match=f"may not contain '{key}'"):
        await hub_spawn_sequence(spawner, {"workspace": "alpha", "image": "python", **extra}, guard())
    assert spawner.image != "evil.example/miner:latest"


async def test_the_guard_composes_with_hooks_configured_before_or_after_it(tmp_path):
    service_config = tmp_path / "notebooks_service_config.py"
    service_config.write_text(
        f"c.NotebooksService.images = {IMAGES!r}\nc.NotebooksService.workspace_members = {{'alice': ['alpha']}}\n"
    )
    ran = []
    c = Config()
    c.Spawner.apply_user_options = lambda spawner, options: ran.append("apply before")
    hubside.setup_workspace_guard(c, str(service_config))
    # configured later, even per class: neither removes the guard
    c.KubeSpawner.apply_user_options = lambda spawner, options: ran.append("apply after")
    c.KubeSpawner.pre_spawn_hook = lambda spawner: ran.append("pre_spawn after")
    spawner = kube_spawner("beta-python", config=c)
    spawner.user_options = {"workspace": "beta", "image": "python"}
    await spawner._run_apply_user_options(spawner.user_options)
    with pytest.raises(NotAMember):
        await hubside.maybe_future(spawner.run_pre_spawn_hook())
    assert ran == ["apply after"]  # KubeSpawner's own hook replaced ours: the class-level guard still refused
    good = kube_spawner(config=c)
    good.user_options = {"workspace": "alpha", "image": "python"}
    await hubside.maybe_future(good.run_pre_spawn_hook())
    await good.load_user_options()
    assert ran[-1] == "pre_spawn after" and good.namespace == "ws-alpha"


async def test_a_spawner_that_bypasses_the_guard_is_refused_outright(tmp_path):
    class Bypassing(KubeSpawner):
        def run_pre_spawn_hook(self):
            return None

    service_config = tmp_path / "notebooks_service_config.py"
    service_config.write_text(f"c.NotebooksService.images = {IMAGES!r}\n")
    c = Config()
    hubside.setup_workspace_guard(c, str(service_config))
    orm_spawner = SimpleNamespace(name="alpha-python", display_name="", user_options={}, server=None, state=None)
    spawner = Bypassing(_mock=True, user=make_user(), orm_spawner=orm_spawner, config=c)
    with pytest.raises(hubside.HubGuardMissing, match="not in place: Bypassing overrides run_pre_spawn_hook"):
        await spawner._run_apply_user_options({"workspace": "alpha", "image": "python"})


def claims_guard(accept_bearer_jwt: bool) -> WorkspaceGuard:
    config = Config()
    config.IdentityProvider.jwks_url = "http://127.0.0.1:9/certs"
    config.IdentityProvider.issuer = "https://idp.test"
    config.IdentityProvider.accept_bearer_jwt = accept_bearer_jwt
    config.IdentityProvider.audience = "notebooks"
    return WorkspaceGuard(NotebooksService(config=config, images=IMAGES, workspace_policy_class="claims"))


def requested(by_kind: str, by_name: str, name="alpha-python"):
    spawner = local_spawner(name)
    spawner.handler = SimpleNamespace(current_user=SimpleNamespace(kind=by_kind, name=by_name))
    return spawner


async def test_with_bearer_jwts_the_hub_trusts_the_services_membership_check():
    g = claims_guard(accept_bearer_jwt=True)
    assert g.trust_service_membership_checks
    # the service asked: no token in auth_state is needed here, the service verified the JWT
    assert (await g.check(requested("service", "notebooks"), {"workspace": "alpha", "image": "python"}))[0] == "alpha"
    # the user asked directly: the Hub checks, and without a token the answer is no
    with pytest.raises(NotAMember, match="No access token"):
        await g.check(requested("user", "alice"), {"workspace": "alpha", "image": "python"})
    # another service is not the notebooks service
    with pytest.raises(NotAMember):
        await g.check(requested("service", "other"), {"workspace": "alpha", "image": "python"})


async def test_trust_never_skips_the_catalogue_or_name_checks():
    g = claims_guard(accept_bearer_jwt=True)
    with pytest.raises(NotFound):
        await g.check(requested("service", "notebooks", "alpha-cobol"), {"workspace": "alpha", "image": "cobol"})
    with pytest.raises(InvalidRequest):
        await g.check(requested("service", "notebooks", "other"), {"workspace": "alpha", "image": "python"})


async def test_without_bearer_jwts_the_hub_checks_the_service_too():
    g = claims_guard(accept_bearer_jwt=False)
    assert not g.trust_service_membership_checks
    with pytest.raises(NotAMember, match="No access token"):
        await g.check(requested("service", "notebooks"), {"workspace": "alpha", "image": "python"})


async def test_the_guard_follows_changes_to_the_services_config_file(tmp_path):
    path = tmp_path / "notebooks_service_config.py"
    members = "c.NotebooksService.workspace_members = {'alice': ['alpha']}\n"
    path.write_text(f"c.NotebooksService.images = {{'python': 'img:1'}}\n{members}")
    loader = hubside.GuardLoader(str(path), Config())
    first = loader()
    assert loader() is first  # unchanged: not rebuilt
    # a helm upgrade adds an image: the running Hub accepts it at the next spawn
    path.write_text(f"c.NotebooksService.images = {{'python': 'img:1', 'r': 'r:1'}}\n{members}")
    assert (await loader().check(local_spawner("alpha-r"), {"workspace": "alpha", "image": "r"}))[1]["image"] == "r:1"
    # a broken file refuses every spawn and says what is wrong, rather than run on the old catalogue
    path.write_text("c.NotebooksService.images = {'python': 'img:1'\n")
    with pytest.raises(hubside.GuardConfigError, match=r"notebooks_service_config.py: line 1: '\{' was never closed"):
        loader()
    path.write_text("c.NotebooksService.images = {'python': 3}\n")
    with pytest.raises(hubside.GuardConfigError, match="TraitError: NotebooksService.images: image 'python' needs"):
        loader()
    path.write_text(f"c.NotebooksService.images = {{'python': 'img:2'}}\n{members}")
    assert loader().service.images["python"]["image"] == "img:2"


def test_a_bad_value_in_the_shared_config_is_an_error_not_a_default(tmp_path):
    path = tmp_path / "notebooks_service_config.py"
    path.write_text("c.NotebooksService.images = {'python': 3}\n")
    with pytest.raises(TraitError, match="needs an 'image'"):
        SharedConfig.from_file(str(path))


def test_the_hub_loads_the_guard_without_the_web_application(tmp_path):
    path = tmp_path / "notebooks_service_config.py"
    path.write_text("c.NotebooksService.images = {'python': 'img'}\nc.IdentityProvider.issuer = 'x'\n")
    code = (
        "import sys; from notebooks_service.hubside import load_guard; "
        f"g = load_guard({str(path)!r}); assert list(g.service.images) == ['python']; "
        "print(sorted(m for m in ('notebooks_service.app', 'notebooks_service.handlers', 'notebooks_service.hub', "
        "'notebooks_service.oauth', 'jinja2') "
        "if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
