"""The real z2jh 4.4.0 chart beside this project's chart, with the example values of both.

Rendered offline with Helm's own engine: the z2jh values valid against z2jh's
schema, every manifest valid Kubernetes; z2jh's own ``jupyterhub_config.py``
run by the real JupyterHub from the rendered ConfigMaps and Secret, as z2jh's
hub pod would (the files written where the pod mounts them, under a temporary
root); the network policies and the Hub's rights in workspace namespaces
checked on the rendered manifests.
"""

import base64
import copy
import json
import os
import re
import subprocess
import sys

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from notebooks_service.demo import CULLER_SCOPES, RECONCILER_SCOPES

from chart_render import EXAMPLES, KUBERNETES, NAMESPACE, RELEASE, Z2JH, load_values, one, render
from identity_provider import ISSUER
from kube_pods import KUBECONFIG
from netpol import Pod, may_connect

pytestmark = pytest.mark.hub_version  # the second pass of `make test` runs it on z2jh 4.4.0's Hub too

Z2JH_CHART = os.path.join(Z2JH, "jupyterhub")
Z2JH_RELEASE = "jupyterhub"
HERE = os.path.dirname(os.path.abspath(__file__))

if not os.path.isdir(Z2JH_CHART):
    if os.environ.get("CI"):
        raise RuntimeError(f"the real z2jh chart is missing at {Z2JH_CHART}")
    pytest.skip("no ../shared/peers/z2jh-4.4.0 here", allow_module_level=True)

#: what both releases are given about the idle culler
CULL_VALUES = load_values(os.path.join(EXAMPLES, "cull-values.yaml"))


def with_namespace(docs: list[dict]) -> list[dict]:
    for doc in docs:
        doc["metadata"].setdefault("namespace", NAMESPACE)  # what `helm install -n jupyter` does
    return docs


def find(docs: list[dict], kind: str, name: str) -> dict:
    [doc] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


@pytest.fixture(scope="module")
def z2jh_values() -> dict:
    return {**load_values(os.path.join(EXAMPLES, "z2jh-values.yaml")), **CULL_VALUES}


@pytest.fixture(scope="module")
def z2jh(z2jh_values) -> list[dict]:
    with helm.Chart.load(Z2JH_CHART) as chart:
        chart.validate_schema(z2jh_values)
        files = chart.render(z2jh_values, name=Z2JH_RELEASE, namespace=NAMESPACE, is_install=True)
    return with_namespace(
        [d for k, t in files.items() if not k.endswith("NOTES.txt") for d in yaml.safe_load_all(t) if d]
    )


@pytest.fixture(scope="module")
def service_values(idp) -> dict:
    """The example values, with the identity provider pointed at the test's own."""
    values = copy.deepcopy({**load_values(os.path.join(EXAMPLES, "notebooks-service-values.yaml")), **CULL_VALUES})
    values["config"]["traitlets"]["IdentityProvider"].update(jwks_url=idp.jwks_url, issuer=ISSUER)
    return values


@pytest.fixture(scope="module")
def service(service_values) -> list[dict]:
    return with_namespace(render(service_values)[0])


def test_z2jh_values_are_valid_for_z2jh_and_its_manifests_for_kubernetes(z2jh, z2jh_values):
    kinds = {d["kind"] for d in z2jh}
    assert {"Deployment", "NetworkPolicy", "Secret", "ConfigMap", "Role"} <= kinds
    for doc in z2jh:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    with helm.Chart.load(Z2JH_CHART) as chart, pytest.raises(helm.HelmValuesError, match="interNamespaceAccessLabels"):
        broken = copy.deepcopy(z2jh_values)
        broken["hub"]["networkPolicy"]["interNamespaceAccessLabels"] = "yes please"
        chart.validate_schema(broken)


def test_the_service_uses_the_token_z2jh_generates_and_the_ports_agree(z2jh, z2jh_values, service):
    registered = z2jh_values["hub"]["services"]["notebooks"]
    assert "apiToken" not in registered and "api_token" not in registered
    z2jh_secret = find(z2jh, "Secret", "hub")
    assert z2jh_secret["data"]["hub.services.notebooks.apiToken"]
    [container] = one(service, "Deployment")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["JUPYTERHUB_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "hub",
        "key": "hub.services.notebooks.apiToken",
    }
    assert not [d for d in service if d["kind"] == "Secret" and "jupyterhub-api-token" in d.get("data", {})]
    # the Hub's URL for the service reaches the service's container
    service_svc = one(service, "Service")
    assert (
        registered["url"]
        == f"http://{service_svc['metadata']['name']}.{NAMESPACE}.svc:{service_svc['spec']['ports'][0]['port']}"
    )
    listens = {p["name"]: p["containerPort"] for p in container["ports"]}[service_svc["spec"]["ports"][0]["targetPort"]]
    assert env["JUPYTERHUB_SERVICE_URL"]["value"].endswith(f":{listens}")
    # and the service's URL for the Hub API reaches the Hub
    hub_svc = find(z2jh, "Service", "hub")
    api_url = load_values(os.path.join(EXAMPLES, "notebooks-service-values.yaml"))["jupyterhub_api_url"]
    assert (
        api_url == f"http://{hub_svc['metadata']['name']}.{NAMESPACE}.svc:{hub_svc['spec']['ports'][0]['port']}/hub/api"
    )


# -- z2jh's hub pod, run by the real JupyterHub --------------------------------------------------


def secret_text(docs: list[dict], name: str, key: str) -> str:
    return base64.b64decode(find(docs, "Secret", name)["data"][key]).decode()


def volume_files(docs: list[dict], volume: dict) -> dict[str, str]:
    if "configMap" in volume:
        return dict(find(docs, "ConfigMap", volume["configMap"]["name"]).get("data") or {})
    if "secret" in volume:
        secret = find(docs, "Secret", volume["secret"]["secretName"])
        return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    return {}  # emptyDir, the database's PVC: an empty folder


def materialise_hub_pod(docs: list[dict], root: str) -> tuple[str, dict[str, str]]:
    """Write what z2jh's hub container mounts under ``root``; return its command's config file and its env.

    Paths in the mounted files that point into the mounts are moved under ``root``
    too (z2jh.py reads /usr/local/etc/jupyterhub/..., the guard's snippet
    /etc/notebooks-service/...); nothing else is changed.
    """
    pod = find(docs, "Deployment", "hub")["spec"]["template"]["spec"]
    [container] = [c for c in pod["containers"] if c["name"] == "hub"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = container["volumeMounts"]
    z2jh_dir = "/usr/local/etc/jupyterhub"
    prefixes = {z2jh_dir} | {m["mountPath"].rstrip("/") for m in mounts if not m["mountPath"].startswith(z2jh_dir)}

    def relocate(text: str) -> str:
        for prefix in sorted(prefixes, key=len, reverse=True):
            text = re.sub(rf"(?<![\w/]){re.escape(prefix)}", root + prefix, text)
        return text

    for mount in mounts:
        files = volume_files(docs, volumes[mount["name"]])
        target = root + mount["mountPath"]
        if "subPath" in mount:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w") as f:
                f.write(relocate(files[mount["subPath"]]))
            continue
        os.makedirs(target, exist_ok=True)
        for key, text in files.items():
            with open(os.path.join(target, key), "w") as f:
                f.write(relocate(text))

    env = {}
    for var in container["env"]:
        source = var.get("valueFrom", {})
        if "value" in var:
            env[var["name"]] = var["value"]
        elif "secretKeyRef" in source:
            env[var["name"]] = secret_text(docs, source["secretKeyRef"]["name"], source["secretKeyRef"]["key"])
        elif source.get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[var["name"]] = NAMESPACE
    # what the kubelet adds for each Service of the namespace
    for svc in docs:
        if svc["kind"] == "Service":
            prefix = svc["metadata"]["name"].upper().replace("-", "_")
            env[f"{prefix}_SERVICE_HOST"] = "127.0.0.1"
            env[f"{prefix}_SERVICE_PORT"] = str(svc["spec"]["ports"][0]["port"])
    args = container["args"]
    return root + args[args.index("--config") + 1], env


@pytest.fixture(scope="module")
def z2jh_hub(z2jh, service, idp, tmp_path_factory) -> dict:
    """What the real JupyterHub makes of z2jh's configuration: tests/z2jh_hub_check.py's report."""
    root = str(tmp_path_factory.mktemp("hub-pod"))
    config_file, pod_env = materialise_hub_pod(z2jh + service, root)
    workdir = os.path.join(root, "srv", "jupyterhub")
    os.makedirs(workdir, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    # KubeSpawner loads a kube config when built (in a pod: its ServiceAccount's); one that reaches nothing
    kubeconfig = os.path.join(root, "kubeconfig")
    with open(kubeconfig, "w") as f:
        f.write(KUBECONFIG)
    env.update(pod_env, KUBECONFIG=kubeconfig)
    service_token = secret_text(z2jh, "hub", "hub.services.notebooks.apiToken")
    check = subprocess.run(
        [
            sys.executable,
            os.path.join(HERE, "z2jh_hub_check.py"),
            config_file,
            service_token,
            idp.token(preferred_username="alice", workspaces=["alpha"]),
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    reports = [line[len("REPORT ") :] for line in check.stdout.splitlines() if line.startswith("REPORT ")]
    assert check.returncode == 0 and reports, check.stdout[-3000:] + check.stderr[-6000:]
    return json.loads(reports[0])


def test_the_hub_registers_the_service_with_its_roles(z2jh_hub, z2jh_values):
    import jupyterhub

    assert z2jh_hub["jupyterhub"] == jupyterhub.__version__  # the version of this pass (5.5.4 in the z2jh pass)
    assert z2jh_hub["spawner_class"] == "kubespawner.spawner.KubeSpawner"
    assert z2jh_hub["default_url"] == "/services/notebooks/"  # the Hub's front door leads to the service
    service = z2jh_hub["service"]
    assert service["token_is_the_services"]  # the token the service chart reads is the one the Hub knows
    assert service["url"] == z2jh_values["hub"]["services"]["notebooks"]["url"]
    assert service["oauth_client_id"] == "service-notebooks"
    assert service["roles"]["notebooks-service"] == sorted(
        z2jh_values["hub"]["loadRoles"]["notebooks-service"]["scopes"]
    )
    assert "access:services!service=notebooks" in z2jh_hub["user_role"]
    assert "jupyterhub-idle-culler" in z2jh_hub["services"]  # z2jh's culler, beside it
    assert z2jh_hub["culler_role"] == sorted(CULLER_SCOPES)  # the role the demo gives its culler
    # one reconciler, beside the culler, reading the service's configuration as the guard does
    command = z2jh_hub["reconciler_command"]
    assert command[:4] == ["python3", "-m", "notebooks_service", "reconcile"] and command[4] == "--config"
    assert command[5].endswith("/etc/notebooks-service/notebooks_service_config.py")
    assert set(z2jh_hub["reconciler_role"]) >= set(RECONCILER_SCOPES) - {"admin:groups"}


def test_the_service_knows_the_idle_timeout_z2jhs_culler_is_given(z2jh_hub, service):
    # one values file (examples/cull-values.yaml) for both releases: the culler's --timeout is the service's idle_timeout
    assert f"--timeout={CULL_VALUES['cull']['timeout']}" in z2jh_hub["culler_command"]
    config = json.loads(find(service, "ConfigMap", "notebooks-service-config")["data"]["values.json"])
    assert config["idleTimeout"] == CULL_VALUES["cull"]["timeout"] == 7200  # neither chart's default (3600)
    # no culler, no deadline shown
    assert (
        json.loads(one(render({"cull": {"enabled": False}})[0], "ConfigMap")["data"]["values.json"])["idleTimeout"] == 0
    )


def test_the_guard_decides_what_runs_and_where(z2jh_hub):
    spawns = z2jh_hub["spawns"]
    member = spawns["member"]
    assert member["namespace"] == "ws-alpha"
    [container] = member["pod"]["spec"]["containers"]
    assert container["image"] == "quay.io/jupyter/scipy-notebook:2025-01-06"  # the catalogue's
    # the workspace's volume, and no per-server home volume that removing the server would delete
    volumes = member["pod"]["spec"]["volumes"]
    assert [v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v] == ["pvc-alpha"]
    assert {"name": "workspace", "mountPath": "/home/jovyan/workspace"} in container["volumeMounts"]
    # the image's default resource class decides the size, over z2jh's singleuser.memory
    assert container["resources"]["limits"] == {"cpu": 1.0, "memory": 2 * 1024**3}
    # the workspace's identity and bucket, from the chart's workspaceData (examples/workspace-identity.yaml)
    assert member["pod"]["spec"]["serviceAccountName"] == "notebooks"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["WORKSPACE"], env["WORKSPACE_S3_BUCKET"], env["WORKSPACE_S3_PREFIX"]) == ("alpha", "eo-alpha", "")
    assert "AWS_ENDPOINT_URL" not in env  # none configured: the SDKs' own
    assert {"secretRef": {"name": "ws-alpha-storage", "optional": True}} in container["envFrom"]
    assert spawns["not-a-member"]["refused"][0] == 403
    assert spawns["unknown-image"]["refused"][0] == 404
    assert spawns["profile-key"]["refused"][0] == 400 and "'profile'" in spawns["profile-key"]["refused"][1]
    # the Hub's own "Start My Server" is refused with the reason and a way to the service, on the Hub's page
    default = spawns["default-server"]
    assert default["refused"] == [403, "This Hub starts workspace servers only: start one from the notebooks service."]
    assert default["shown_by_the_hub"] == (
        "This Hub starts workspace servers only: start one from the notebooks service. "
        '<a href="/services/notebooks/">Open the notebooks service</a>'
    )


def test_what_the_platform_makes_per_workspace_is_what_the_pods_name(service_values):
    with open(os.path.join(EXAMPLES, "workspace-identity.yaml")) as f:
        platform = [d for d in yaml.safe_load_all(f) if d]
    for doc in platform:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    made = {(d["kind"], d["metadata"]["name"]) for d in platform if d["metadata"].get("namespace") == "ws-alpha"}
    data = service_values["config"]["workspaceData"]
    rendered = render(service_values)[0]  # the chart's defaults under the example's values
    config = json.loads(one(rendered, "ConfigMap")["data"]["values.json"])["workspaceData"]
    assert made == {
        ("PersistentVolumeClaim", config["pvcNameTemplate"].format(workspace="alpha")),
        ("ServiceAccount", data["serviceAccount"]),
        ("Secret", data["secretEnv"].format(workspace="alpha")),
    }
    [account] = [d for d in platform if d["kind"] == "ServiceAccount"]
    assert "eks.amazonaws.com/role-arn" in account["metadata"]["annotations"]


# -- network policies ----------------------------------------------------------------------------


def pod_of(docs: list[dict], kind: str, name: str) -> Pod:
    workload = find(docs, kind, name)
    template = workload["spec"]["template"]
    ports = {
        p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", []) if "name" in p
    }
    return Pod(name, NAMESPACE, template["metadata"]["labels"], ports)


def test_network_policies_admit_exactly_the_right_pods(z2jh, service, z2jh_hub):
    policies = [d for d in z2jh + service if d["kind"] == "NetworkPolicy"]
    hub = pod_of(z2jh, "Deployment", "hub")
    proxy = pod_of(z2jh, "Deployment", "proxy")
    notebooks = pod_of(service, "Deployment", RELEASE)
    user_pod = z2jh_hub["spawns"]["member"]["pod"]
    server = Pod("alice's server", "ws-alpha", user_pod["metadata"]["labels"], {"notebook-port": 8888})
    strangers = [Pod("stranger", NAMESPACE), Pod("stranger", "ws-alpha"), Pod("stranger", "elsewhere")]
    service_port = notebooks.ports["http"]

    allowed = {
        "the service calls the Hub API": may_connect(policies, notebooks, hub, 8081),
        "the proxy routes users to the service": may_connect(policies, proxy, notebooks, service_port),
        "the Hub checks the service": may_connect(policies, hub, notebooks, service_port),
        "a workspace server calls the Hub API": may_connect(policies, server, hub, 8081),
        "the proxy routes users to a workspace server": may_connect(policies, proxy, server, 8888),
        "the Hub checks a workspace server": may_connect(policies, hub, server, 8888),
    }
    assert allowed == dict.fromkeys(allowed, True)
    refused = {
        **{
            f"a {s.name} in {s.namespace} reaches the service": may_connect(policies, s, notebooks, service_port)
            for s in strangers
        },
        **{f"a {s.name} in {s.namespace} reaches the Hub": may_connect(policies, s, hub, 8081) for s in strangers},
        **{
            f"a {s.name} in {s.namespace} reaches the server": may_connect(policies, s, server, 8888) for s in strangers
        },
        "a workspace server reaches the service directly": may_connect(policies, server, notebooks, service_port),
        "the service reaches a workspace server": may_connect(policies, notebooks, server, 8888),
        "the service reaches the proxy's API": may_connect(policies, notebooks, proxy, 8001),
    }
    assert refused == dict.fromkeys(refused, False)


# -- the Hub's rights in workspace namespaces ----------------------------------------------------

RESOURCES = {
    "pod": "pods",
    "persistent_volume_claim": "persistentvolumeclaims",
    "secret": "secrets",
    "service": "services",
}
VERBS = {"create": "create", "delete": "delete", "read": "get", "patch": "patch", "replace": "update"}


def kubespawner_calls() -> set[tuple[str, str]]:
    """(resource, verb) of every namespaced Kubernetes call in KubeSpawner's spawner, from its source."""
    import kubespawner.spawner

    with open(kubespawner.spawner.__file__) as f:
        source = f.read()
    calls = {
        (RESOURCES[kind], VERBS[verb])
        for verb, kind in re.findall(r"\.(create|delete|read|patch|replace)_namespaced_([a-z_]+)\b", source)
    }
    # calls made by name, getattr(self.api, f"{verb}_namespaced_{kind}"), for the kinds passed to two helpers
    assert 'getattr(self.api, f"delete_namespaced_{kind}")' in source, "KubeSpawner changed: update this scan"
    assert 'getattr(self.api, f"create_namespaced_{kind}")' in source, "KubeSpawner changed: update this scan"
    helpers = {"_ensure_not_exists": ("delete", "get"), "_make_create_resource_request": ("create",)}
    for helper, kind in re.findall(r'self\.(_ensure_not_exists|_make_create_resource_request),\s*"([a-z_]+)"', source):
        calls |= {(RESOURCES[kind], verb) for verb in helpers[helper]}
    # reflectors list and watch what they reflect
    for kind in re.findall(r'^\s*kind = "(\w+)"', source, re.MULTILINE):
        calls |= {(kind, "list"), (kind, "watch")}
    return calls


def granted(role: dict) -> set[tuple[str, str]]:
    return {
        (r, v) for rule in role["rules"] if rule["apiGroups"] == [""] for r in rule["resources"] for v in rule["verbs"]
    }


def test_the_hub_may_do_in_workspace_namespaces_what_kubespawner_does(z2jh, service):
    calls = kubespawner_calls()
    assert {("pods", "create"), ("pods", "delete"), ("pods", "watch"), ("events", "list")} <= calls
    [role] = [d for d in service if d["kind"] == "ClusterRole" and d["metadata"]["name"].endswith("-hub-spawner")]
    assert calls <= granted(role), sorted(calls - granted(role))
    # the same as z2jh's own Role gives it in the Hub's namespace
    assert granted(role) == granted(find(z2jh, "Role", "hub"))
    # bound in exactly the listed workspace namespaces, to z2jh's hub ServiceAccount
    bindings = [d for d in service if d["kind"] == "RoleBinding" and d["metadata"]["name"].endswith("-hub-spawner")]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["ws-alpha", "ws-beta"]
    hub_account = find(z2jh, "ServiceAccount", "hub")["metadata"]
    for binding in bindings:
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": hub_account["name"], "namespace": NAMESPACE}]
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert find(z2jh, "Deployment", "hub")["spec"]["template"]["spec"]["serviceAccountName"] == hub_account["name"]


def test_cluster_wide_binds_the_hubs_role_everywhere():
    values = load_values(os.path.join(EXAMPLES, "notebooks-service-values.yaml"))
    values["rbac"] = {"workspaceNamespaces": [], "clusterWide": True}
    docs, notes = render(values)
    [binding] = [
        d for d in docs if d["kind"] == "ClusterRoleBinding" and d["metadata"]["name"].endswith("-hub-spawner")
    ]
    assert binding["subjects"][0]["name"] == "hub"
    assert not [d for d in docs if d["kind"] in ("RoleBinding", "NetworkPolicy") and d["metadata"].get("namespace")]
