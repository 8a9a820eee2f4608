"""Workspace data: the workspace's files and its object storage, in the notebook's file browser.

Through the real Hub and real single-user servers (JupyterLab's contents API, through the
proxy, with the users' own tokens): the demo's workspace folder and its local S3 (moto's
server, started by the Hub). Then the pods KubeSpawner builds for it, against the fake
Kubernetes API, which refuses a ServiceAccount a namespace lacks as the API server does.
"""

import json
from types import SimpleNamespace

import pytest
from kubespawner import KubeSpawner
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from traitlets.config import Config

from notebooks_service.app import NotebooksService
from notebooks_service.demo import S3_BUCKET_TEMPLATE, object_storage
from notebooks_service.hubside import WorkspaceGuard
from notebooks_service.placement import WorkspacePlacement

from conftest import HubUser
from kube_pods import guard_installed, spawn_as_the_hub
from service_client import ServiceClient

SERVERS = [("alice", "alpha/python"), ("bob", "alpha/python"), ("alice", "beta/python")]


class Contents:
    """One user's server, through the Hub's proxy: JupyterLab's contents API with their token."""

    def __init__(self, hub, user: str, server: str, token: str):
        self.url = f"{hub.url}/user/{user}/{server}/api/contents/"
        self.token = token
        self.http = AsyncHTTPClient(force_instance=True)

    async def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        request = HTTPRequest(
            self.url + path,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
            body=None if body is None else json.dumps(body),
            follow_redirects=False,
            request_timeout=60,
        )
        response = await self.http.fetch(request, raise_error=False)
        try:
            return response.code, json.loads(response.body or b"{}")
        except ValueError:  # some of the server's errors are JSON strings unquoted
            return response.code, {"body": response.body.decode(errors="replace")[:500]}

    async def names(self, folder: str) -> set[str]:
        code, model = await self.call("GET", folder)
        assert code == 200, model
        return {item["name"] for item in model["content"]}

    async def write(self, path: str, text: str) -> None:
        code, model = await self.call("PUT", path, {"type": "file", "format": "text", "content": text})
        assert code in (200, 201), model

    async def read(self, path: str) -> tuple[int, str | None]:
        code, model = await self.call("GET", path + "?type=file&format=text")
        return code, model.get("content")


@pytest.mark.usefixtures("real_servers", "clean_servers")
async def test_a_workspaces_files_and_bucket_are_its_members_and_only_theirs(hub, tokens):
    clients = {user: ServiceClient(hub, tokens[user]) for user in ("alice", "bob")}
    servers = {}
    try:
        for user, path in SERVERS:
            code, body = await clients[user].json("POST", path)
            assert code in (201, 202), body
        for user, path in SERVERS:
            model = await clients[user].wait_ready(path, timeout=120)
            servers[user, path] = Contents(hub, user, model["name"], tokens[user])
        alice, bob, alice_beta = (servers[s] for s in SERVERS)

        # the workspace's folder: what alice writes in alpha, bob reads in alpha; beta has its own
        assert "workspace" in await alice.names("") and "workspace" in await alice_beta.names("")
        await alice.write("workspace/notes.txt", "alice, for the alpha team")
        assert await bob.read("workspace/notes.txt") == (200, "alice, for the alpha team")
        code, said = await alice_beta.call("GET", "workspace/notes.txt")
        assert code == 404, said
        assert "notes.txt" not in await alice_beta.names("workspace")
        await bob.write("workspace/reply.txt", "bob too")  # and the other way
        assert await alice.read("workspace/reply.txt") == (200, "bob too")
        # a home is the server's own: only the workspace folder is shared
        await alice.write("mine.txt", "alice's alone")
        assert (await bob.read("mine.txt"))[0] == 404

        # the workspace's bucket, at s3/: what the platform puts there, its members' servers list
        s3 = object_storage.client(hub.s3_url)  # the platform's side of the buckets
        alpha, beta = (S3_BUCKET_TEMPLATE.format(workspace=w) for w in ("alpha", "beta"))
        s3.put_object(Bucket=alpha, Key="scenes.csv", Body=b"id,cloud\n1,0.1\n")
        s3.put_object(Bucket=beta, Key="beta-only.csv", Body=b"id\n")
        assert {"README.md", "scenes.csv"} <= await alice.names("s3")
        assert "beta-only.csv" not in await alice.names("s3")
        assert await bob.read("s3/scenes.csv") == (200, "id,cloud\n1,0.1\n")
        beta_listed = await alice_beta.names("s3")
        assert "beta-only.csv" in beta_listed and "scenes.csv" not in beta_listed
        # ... and what a member saves there lands in the workspace's bucket, not another's
        await bob.write("s3/results.txt", "from bob's notebook")
        assert s3.get_object(Bucket=alpha, Key="results.txt")["Body"].read() == b"from bob's notebook"
        assert "results.txt" not in {o["Key"] for o in s3.list_objects_v2(Bucket=beta).get("Contents", [])}

        # the model says where the data is
        code, model = await clients["bob"].json("GET", "alpha/python")
        assert code == 200
        assert [(p["kind"], p["path"]) for p in model["storage"]] == [("files", "workspace"), ("s3", "s3")]
        assert model["storage"][1]["bucket"] == alpha and model["storage"][1]["url"] == f"s3://{alpha}/"

        # a user comes back: after a stop and a start, the workspace's files are still there
        code, _ = await clients["alice"].json("DELETE", "alpha/python")
        assert code in (202, 204)
        code, body = await clients["alice"].json("POST", "alpha/python")
        assert code in (201, 202), body
        await clients["alice"].wait_ready("alpha/python", timeout=120)
        assert await alice.read("workspace/reply.txt") == (200, "bob too")
        assert await alice.read("mine.txt") == (200, "alice's alone")
        assert "scenes.csv" in await alice.names("s3")
    finally:
        for client in clients.values():
            client.close()


async def test_the_workspaces_say_what_storage_each_has(client):
    code, offers = await client("alice").json("GET", "workspaces")
    assert code == 200
    storage = {w["name"]: w["storage"] for w in offers["workspaces"]}
    assert (
        storage["alpha"][0]["path"] == "workspace" and "alpha workspace's shared files" in storage["alpha"][0]["text"]
    )
    assert storage["alpha"][1]["bucket"] == "workspace-alpha" and storage["beta"][1]["bucket"] == "workspace-beta"
    assert storage["beta"][1]["path"] == "s3" and "s3://workspace-beta/" in storage["beta"][1]["text"]


# -- the placement's words and env ------------------------------------------------------


def test_the_storage_is_described_as_configured():
    placement = WorkspacePlacement(
        s3_bucket_template="eo-data",
        s3_prefix_template="/workspaces/{workspace}/",
        s3_endpoint_url="https://minio.example.org",
        volume_mount_path="/home/jovyan/shared/team",
    )
    assert placement.environment("alpha") == {
        "WORKSPACE": "alpha",
        "WORKSPACE_S3_BUCKET": "eo-data",
        "WORKSPACE_S3_PREFIX": "workspaces/alpha",
        "AWS_ENDPOINT_URL": "https://minio.example.org",
    }
    files, s3 = placement.storage("alpha")
    assert files["path"] == "shared/team" and s3["url"] == "s3://eo-data/workspaces/alpha/"
    # outside the file browser's root, the mount is named whole; no bucket, no object storage
    bare = WorkspacePlacement(volume_mount_path="/data")
    assert [p["path"] for p in bare.storage("alpha")] == ["/data"]
    assert bare.environment("alpha") == {"WORKSPACE": "alpha"}


@pytest.mark.parametrize(
    "trait, value",
    [("s3_bucket_template", "{user}-data"), ("service_account_template", "{0}"), ("secret_env_template", "{")],
)
def test_a_template_naming_more_than_the_workspace_is_refused_when_configured(trait, value):
    with pytest.raises(Exception, match=f"WorkspacePlacement.{trait} .* may use only {{workspace}}"):
        WorkspacePlacement(**{trait: value})


# -- on Kubernetes: the pods, as KubeSpawner sends them to the (fake) API server ----------

IMAGES = {"python": {"image": "quay.io/jupyter/scipy-notebook:2025-01-01"}}
PLATFORM = {
    "service_account_template": "notebooks",
    "secret_env_template": "ws-{workspace}-storage",
    "s3_bucket_template": "eo-{workspace}",
    "s3_endpoint_url": "https://s3.eu-central-1.example.org",
}


@pytest.fixture
def guarded():
    service = NotebooksService(images=IMAGES, workspace_members={"alice": ["alpha", "beta"]})
    guard = WorkspaceGuard(service, config=Config({"WorkspacePlacement": PLATFORM}))
    with guard_installed(guard):
        yield guard


def spawner_for(api, workspace: str) -> KubeSpawner:
    user = HubUser(name="alice", id=1, url="/user/alice/", groups=[], auth_state=None)
    orm_spawner = SimpleNamespace(name=f"{workspace}-python", display_name="", user_options={}, server=None, state=None)
    return KubeSpawner(
        _mock=True,
        user=user,
        orm_spawner=orm_spawner,
        k8s_api_host=api.url,
        start_timeout=30,
        environment={"TZ": "UTC"},  # the operator's own, kept
        extra_container_config={"envFrom": [{"configMapRef": {"name": "platform-env"}}]},
    )


async def spawn(spawner: KubeSpawner, workspace: str) -> str:
    return await spawn_as_the_hub(spawner, {"workspace": workspace, "image": "python"})


def identity_of(pod: dict) -> dict:
    container = pod["spec"]["containers"][0]
    return {
        "namespace": pod["metadata"]["namespace"],
        "service_account": pod["spec"].get("serviceAccountName"),
        "token": pod["spec"].get("automountServiceAccountToken"),
        "env": {
            e["name"]: e.get("value")
            for e in container.get("env", [])
            if e["name"].startswith(("WORKSPACE", "AWS", "TZ"))
        },
        "env_from": container.get("envFrom"),
    }


@pytest.mark.hub_version
async def test_each_pod_runs_as_its_workspaces_identity_with_its_storage_only(api, guarded):
    api.add_service_account("ws-alpha", "notebooks")  # what the platform provides, in alpha only so far
    alpha = spawner_for(api, "alpha")
    await spawn(alpha, "alpha")
    pod = identity_of(api.created[-1])
    assert pod == {
        "namespace": "ws-alpha",
        "service_account": "notebooks",
        "token": None,  # unsaid: Kubernetes mounts the ServiceAccount's token unless the account says not to
        "env": {
            "TZ": "UTC",
            "WORKSPACE": "alpha",
            "WORKSPACE_S3_BUCKET": "eo-alpha",
            "WORKSPACE_S3_PREFIX": "",
            "AWS_ENDPOINT_URL": "https://s3.eu-central-1.example.org",
        },
        "env_from": [
            {"configMapRef": {"name": "platform-env"}},
            {"secretRef": {"name": "ws-alpha-storage", "optional": True}},
        ],
    }
    assert "beta" not in json.dumps(api.created[-1])

    # beta's namespace has no such ServiceAccount yet: Kubernetes refuses the pod, and says why
    beta = spawner_for(api, "beta")
    with pytest.raises(Exception, match="Forbidden") as refused:
        await spawn(beta, "beta")
    assert "error looking up service account ws-beta/notebooks" in refused.value.body
    await beta.stop()
    # the platform adds it; the retry on the same Spawner carries beta's identity once, and nothing of alpha's
    api.add_service_account("ws-beta", "notebooks")
    await spawn(beta, "beta")
    retried = api.created[-1]
    assert identity_of(retried)["env"]["WORKSPACE_S3_BUCKET"] == "eo-beta"
    assert identity_of(retried)["env_from"] == [
        {"configMapRef": {"name": "platform-env"}},
        {"secretRef": {"name": "ws-beta-storage", "optional": True}},
    ]
    assert "alpha" not in json.dumps(retried)
    for spawner in (alpha, beta):
        await spawner.stop()
