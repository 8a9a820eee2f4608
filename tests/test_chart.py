"""The helm chart: rendered offline with Helm's own engine (helm-python-sdk), every manifest
validated against a current Kubernetes release's schemas (kubernetes-validate), and the
rendered configuration loaded by the real service and Hub-side guard. Also the Dockerfile
lint (hadolint) and the chartpress configuration."""

import os
import re
import shutil
import subprocess
import sys
from types import SimpleNamespace

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from packaging.utils import canonicalize_name
from traitlets.config import Config

from notebooks_service.errors import NotAMember
from notebooks_service.hubside import GuardConfigError, GuardLoader, load_guard
from notebooks_service.workspaces import ClaimsWorkspacePolicy, HubGroupsWorkspacePolicy, StaticWorkspacePolicy

import lock_files
from chart_render import CHART, EXAMPLES, KUBERNETES, NAMESPACE, ROOT, Z2JH, load_values, one, render

VALUES = {
    "default": None,
    "z2jh-example": os.path.join(EXAMPLES, "notebooks-service-values.yaml"),
    **{
        name[:-5]: os.path.join(ROOT, "helm-chart", "ci", name)
        for name in sorted(os.listdir(os.path.join(ROOT, "helm-chart", "ci")))
    },
}
SERVICE_STARTS = (
    "import sys; from notebooks_service.app import NotebooksService as S; "
    "s = S(); s.initialize(['--config', sys.argv[1]]); s.make_app(); print(sorted(s.images))"
)


POLICIES = {"static": StaticWorkspacePolicy, "hub-groups": HubGroupsWorkspacePolicy, "claims": ClaimsWorkspacePolicy}


@pytest.mark.parametrize("values", VALUES)
def test_every_manifest_is_valid_kubernetes(values):
    docs, _ = render(VALUES[values])
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "ConfigMap"}
    for doc in docs:
        # strict: unknown fields are errors too
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


@pytest.mark.parametrize("values", VALUES)
def test_helm_lint_is_clean(values):
    report = helm.lint(CHART, load_values(VALUES[values]), strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert not problems, problems


def test_deployment_runs_locked_down_with_probes():
    docs, _ = render(None)
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert deployment["spec"]["replicas"] == 2
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["requests"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/services/notebooks/health"  # cheap: the process
    assert container["readinessProbe"]["httpGet"]["path"] == "/services/notebooks/ready"  # the Hub answers
    assert pod["terminationGracePeriodSeconds"] > 20  # longer than the service's shutdown_grace
    env = {e["name"]: e for e in container["env"]}
    assert env["JUPYTERHUB_API_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "jupyterhub-api-token"
    assert env["NOTEBOOKS_SERVICE_COOKIE_SECRET"]["valueFrom"]["secretKeyRef"]["key"] == "cookie-secret"
    assert env["JUPYTERHUB_API_URL"]["value"] == "http://hub:8081/hub/api"
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/etc/notebooks-service", "/tmp"}


def test_secrets_are_generated_once_for_all_replicas_or_taken_from_an_existing_secret():
    docs, _ = render(None)
    secret = one(docs, "Secret")
    assert set(secret["data"]) == {"jupyterhub-api-token", "cookie-secret"}
    docs, _ = render(VALUES["diagnostics-off-existing-secret"])
    assert not [d for d in docs if d["kind"] == "Secret"]
    env = {e["name"]: e for e in one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["JUPYTERHUB_API_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "notebooks-service-credentials"


def named(docs: list[dict], kind: str, suffix: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(suffix)]


def test_rbac_only_reads_pods_and_events_where_asked():
    docs, _ = render(VALUES["z2jh-example"])
    [reader] = named(docs, "ClusterRole", "-pod-reader")
    assert reader["rules"] == [
        {"apiGroups": [""], "resources": ["pods", "events"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},  # <server>/-/logs
    ]
    bindings = named(docs, "RoleBinding", "-pod-reader")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["ws-alpha", "ws-beta"]
    assert not [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    docs, _ = render(VALUES["hub-groups-cluster-wide"])
    [binding] = named(docs, "ClusterRoleBinding", "-pod-reader")
    assert binding["subjects"][0]["namespace"] == NAMESPACE
    docs, _ = render(VALUES["diagnostics-off-existing-secret"])
    assert not named(docs, "ClusterRole", "-pod-reader") + named(docs, "RoleBinding", "-pod-reader")
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_notes_print_the_hub_services_entry_and_role():
    _, notes = render(VALUES["z2jh-example"])
    hub = yaml.safe_load(notes.split("\n\n")[1])["hub"]
    service = hub["services"]["notebooks"]
    assert service["url"] == "http://notebooks-service.jupyter.svc:80"
    assert service["oauth_redirect_uri"] == "/services/notebooks/oauth_callback"
    assert hub["loadRoles"]["notebooks-service"]["scopes"] == [
        "read:users",
        "servers",
        "users:activity",
        "shares",
        "admin:auth_state",
    ]
    # one reconciler beside the Hub, with its role, as in examples/z2jh-values.yaml (test_z2jh runs that)
    with open(os.path.join(EXAMPLES, "z2jh-values.yaml")) as f:
        example = yaml.safe_load(f)["hub"]
    assert hub["services"]["notebooks-reconciler"] == example["services"]["notebooks-reconciler"]
    assert hub["loadRoles"]["notebooks-reconciler"]["scopes"] == example["loadRoles"]["notebooks-reconciler"]["scopes"]
    assert hub["loadRoles"]["notebooks-reconciler"]["services"] == ["notebooks-reconciler"]
    # the token z2jh generates for the service, read from z2jh's Secret: nothing to copy by hand
    assert "apiToken" not in service
    assert "read from Secret hub, key hub.services.notebooks.apiToken" in notes
    _, notes = render(None)
    assert yaml.safe_load(notes.split("\n\n")[1])["hub"]["services"]["notebooks"]["apiToken"] == "<the token below>"
    assert "kubectl get secret -n jupyter notebooks-service" in notes
    # Bearer JWT callers: the service asks the Hub whether their user holds the access scope
    _, notes = render(VALUES["claims-bearer-jwt"])
    scopes = yaml.safe_load(notes.split("\n\n")[1])["hub"]["loadRoles"]["notebooks-service"]["scopes"]
    assert scopes == ["read:users", "servers", "users:activity", "shares", "admin:auth_state", "tokens"]


def write_config_map(docs: list[dict], folder) -> str:
    for name, content in one(docs, "ConfigMap")["data"].items():
        (folder / name).write_text(content)
    return str(folder / "notebooks_service_config.py")


@pytest.mark.parametrize("values", VALUES)
def test_rendered_config_loads_in_the_service_and_the_guard(values, tmp_path):
    docs, _ = render(VALUES[values])
    config_file = write_config_map(docs, tmp_path)
    guard = load_guard(config_file)  # what the Hub does with the mounted ConfigMap
    assert "python" in guard.service.images
    assert guard.service.namespace_template == "ws-{workspace}"
    expected_policy = load_values(VALUES[values]).get("config", {}).get("workspacePolicy", "static")
    assert guard.service.workspace_policy_class is POLICIES[expected_policy]
    # and the service process starts with it (until it would need the Hub)
    env = dict(os.environ, JUPYTERHUB_API_TOKEN="t", JUPYTERHUB_SERVICE_URL="http://127.0.0.1:1")
    check = subprocess.run(
        [sys.executable, "-c", SERVICE_STARTS, config_file], env=env, capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stderr
    assert "python" in check.stdout


@pytest.mark.hub_version
def test_z2jh_example_lines_up_with_the_chart(tmp_path):
    with open(os.path.join(EXAMPLES, "z2jh-values.yaml")) as f:
        hub = yaml.safe_load(f)["hub"]
    docs, notes = render(VALUES["z2jh-example"])
    config_map = one(docs, "ConfigMap")["metadata"]["name"]
    service = one(docs, "Service")["metadata"]["name"]
    assert hub["extraVolumes"][0]["configMap"]["name"] == config_map
    assert hub["services"]["notebooks"]["url"] == f"http://{service}.{NAMESPACE}.svc:80"
    noted = yaml.safe_load(notes.split("\n\n")[1])["hub"]
    assert hub["loadRoles"]["notebooks-service"]["scopes"] == noted["loadRoles"]["notebooks-service"]["scopes"]
    assert hub["loadRoles"]["user"] == noted["loadRoles"]["user"]
    # the extraConfig snippet installs the guard, reading the mounted ConfigMap
    mount = hub["extraVolumeMounts"][0]["mountPath"]
    write_config_map(docs, tmp_path)
    snippet = hub["extraConfig"]["notebooks-workspace-guard"].replace(mount, str(tmp_path))
    c = Config()
    exec(compile(snippet, "extraConfig", "exec"), {"c": c})
    assert callable(c.Spawner.apply_user_options)


def test_dockerfile_lint_is_clean():
    hadolint = shutil.which("hadolint") or os.path.join(os.path.dirname(sys.executable), "hadolint")
    result = subprocess.run([hadolint, os.path.join(ROOT, "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_chartpress_knows_the_images():
    if not os.path.isdir(os.path.join(ROOT, ".git")):
        pytest.skip("chartpress versions from git history: needs a git checkout")
    chartpress = shutil.which("chartpress") or os.path.join(os.path.dirname(sys.executable), "chartpress")
    result = subprocess.run(
        [chartpress, "--no-build", "--list-images"],
        cwd=os.path.join(ROOT, "helm-chart"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "quay.io/notebooks-service/notebooks-service:" in result.stdout


def test_the_hub_image_is_the_z2jh_the_suite_runs_against_with_a_fixed_jupyterhub():
    if not os.path.isdir(Z2JH):
        if os.environ.get("CI"):
            raise RuntimeError(f"the real z2jh chart is missing at {Z2JH}")
        pytest.skip("no ../shared/peers/z2jh-4.4.0 here")
    with open(os.path.join(ROOT, "Dockerfile")) as f:
        dockerfile = f.read()
    hub_image = re.search(r"^ARG HUB_IMAGE=quay.io/jupyterhub/k8s-hub:(\S+)$", dockerfile, re.MULTILINE).group(1)
    with open(os.path.join(Z2JH, "jupyterhub", "Chart.yaml")) as f:
        chart = yaml.safe_load(f)
    with open(os.path.join(Z2JH, "hub-image-requirements.txt")) as f:
        z2jh_lock = f.read()
    pins = {canonicalize_name(n): v for n, v in re.findall(r"^([\w.-]+)==(\S+)", z2jh_lock, re.MULTILINE)}
    with open(os.path.join(ROOT, "Makefile")) as f:
        upgrades = set(re.search(r"^HUB_IMAGE_UPGRADES := (.*)$", f.read(), re.MULTILINE)[1].split())
    with open(os.path.join(ROOT, "setup.cfg")) as f:
        declared = re.search(r"^\s*jupyterhub(>=\S+)$", f.read(), re.MULTILINE).group(1)
    assert hub_image == chart["version"]  # the Dockerfile builds on this z2jh's hub image
    assert pins["jupyterhub"] == chart["appVersion"]
    # `make lock` reads z2jh's own lock from the copy in locks/: the same file
    assert lock_files.read("z2jh-4.4.0-hub-image.txt") == z2jh_lock
    # the hub image installs its lock: z2jh's pins, but for what we upgrade on purpose
    hub_image_lock = lock_files.pins("hub-image.txt", "3.12")
    moved = {n for n, v in hub_image_lock.items() if n in pins and pins[n] != v}
    assert moved == upgrades == {"jupyterhub", "pyjwt"}
    # `make test` runs its second pass on exactly the image's JupyterHub, and z2jh's KubeSpawner, culler, pycurl
    tested = lock_files.pins("jh5.txt")
    assert tested["jupyterhub"] == hub_image_lock["jupyterhub"]
    for package in ("jupyterhub-kubespawner", "jupyterhub-idle-culler", "pycurl"):
        assert tested[package] == pins[package] == hub_image_lock.get(package, pins[package]), package
    # no JupyterHub with the advisories 5.5.3 and 6.1.0 fixed: not in the image, not allowed by setup.cfg
    assert version_tuple(hub_image_lock["jupyterhub"]) >= (5, 5, 3)
    assert version_tuple(lock_files.pins("test.txt")["jupyterhub"]) >= (6, 1, 0)
    assert declared.startswith(">=5.5.3,") and "!=6.0.*" in declared


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def test_metrics_port_and_json_logs_reach_the_service(tmp_path):
    docs, _ = render(VALUES["metrics-json-logs"])
    template = one(docs, "Deployment")["spec"]["template"]
    [container] = template["spec"]["containers"]
    assert template["metadata"]["annotations"]["prometheus.io/port"] == "9090"
    assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in container["ports"]
    [policy] = [d for d in docs if d["kind"] == "NetworkPolicy"]
    [scrape] = [rule for rule in policy["spec"]["ingress"] if rule["ports"] == [{"port": "metrics"}]]
    assert scrape["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    # the service takes the container's arguments as they are
    config_file = write_config_map(docs, tmp_path)
    args = [a.replace("/etc/notebooks-service/notebooks_service_config.py", config_file) for a in container["args"]]
    code = (
        "import sys; from notebooks_service.app import NotebooksService as S; "
        "s = S(); s.initialize(sys.argv[1:]); print(s.metrics_port, s.log_json)"
    )
    env = dict(os.environ, JUPYTERHUB_API_TOKEN="t")
    check = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    assert check.stdout.split() == ["9090", "True"]


def spawn_of(user: str, workspace: str, image: str):
    """What the guard reads of a Hub spawn: the spawner's name and user."""
    hub_user = SimpleNamespace(name=user, groups=[], get_auth_state=_no_auth_state)
    return SimpleNamespace(name=f"{workspace}-{image}", user=hub_user)


async def _no_auth_state():
    return None


@pytest.mark.hub_version
async def test_a_helm_upgrade_that_changes_only_values_json_reaches_the_running_hubs_guard(tmp_path):
    before = {"config": {"images": {"python": "img:1"}, "workspaceMembers": {"alice": ["alpha"], "bob": ["alpha"]}}}
    docs, _ = render(before)
    config_file = write_config_map(docs, tmp_path)
    loader = GuardLoader(config_file, Config())
    alpha_python = {"workspace": "alpha", "image": "python"}
    assert (await loader().check(spawn_of("bob", "alpha", "python"), alpha_python))[0] == "alpha"

    # the upgrade adds an image and removes bob: only values.json changes, the .py file is the same
    after = {"config": {"images": {"python": "img:1", "r": "r:1"}, "workspaceMembers": {"alice": ["alpha"]}}}
    upgraded = one(render(after)[0], "ConfigMap")["data"]
    assert upgraded["notebooks_service_config.py"] == (tmp_path / "notebooks_service_config.py").read_text()
    (tmp_path / "values.json").write_text(upgraded["values.json"])
    guard = loader()
    assert (await guard.check(spawn_of("alice", "alpha", "r"), {"workspace": "alpha", "image": "r"}))[1][
        "image"
    ] == "r:1"
    with pytest.raises(NotAMember):
        await guard.check(spawn_of("bob", "alpha", "python"), alpha_python)

    # a read that fails refuses that spawn and says why; the next good read is used at once
    (tmp_path / "values.json").write_text(upgraded["values.json"][:-20])
    with pytest.raises(GuardConfigError, match="JSONDecodeError"):
        loader()
    (tmp_path / "values.json").unlink()
    with pytest.raises(GuardConfigError, match="No such file"):
        loader()
    (tmp_path / "values.json").write_text(upgraded["values.json"])
    assert "r" in loader().service.images


def test_quotas_reach_the_service_and_the_guard_and_kubernetes_as_defence_in_depth(tmp_path):
    docs, notes = render(VALUES["quotas"])
    guard = load_guard(write_config_map(docs, tmp_path))
    assert guard.quotas.for_workspace("beta") == {"servers": 1}
    assert guard.quotas.for_workspace("alpha") == {"servers": 10, "cpu": 32, "memory": 128 * 2**30, "gpus": 2}
    assert guard.quotas.user_quota == {"servers": 3}
    hard = {d["metadata"]["namespace"]: d["spec"]["hard"] for d in docs if d["kind"] == "ResourceQuota"}
    assert hard == {
        "ws-alpha": {"pods": "10", "limits.cpu": "32", "limits.memory": "128Gi", "requests.nvidia.com/gpu": "2"},
        "ws-beta": {"pods": "1"},
    }
    # counting everyone's servers needs list:users; without quotas the role goes without it
    scopes = yaml.safe_load(notes.split("\n\n")[1])["hub"]["loadRoles"]["notebooks-service"]["scopes"]
    assert scopes == ["read:users", "servers", "users:activity", "shares", "list:users"]
    assert not [d for d in render(None)[0] if d["kind"] == "ResourceQuota"]
    without_quotas = yaml.safe_load(render(None)[1].split("\n\n")[1])["hub"]["loadRoles"]
    assert "list:users" not in without_quotas["notebooks-service"]["scopes"]
    assert "list:users" in without_quotas["notebooks-reconciler"]["scopes"]  # it lists the active servers
