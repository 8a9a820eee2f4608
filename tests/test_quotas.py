"""Workspace and user quotas: the rules, the service's clear refusal, and the Hub's own count.

The demo (and the test Hubs) let workspace ``beta`` run one server at a time.
Through the real Hub: the service refuses a start over it saying what runs, the
Hub-side guard refuses one asked of the Hub directly, and of two concurrent
starts against a quota of one exactly one is admitted, twice in a row.
"""

import asyncio
import html
import json
import re
import time
from types import SimpleNamespace

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from notebooks_service.app import NotebooksService
from notebooks_service.demo import RESOURCE_CLASSES
from notebooks_service.demo.app import hub_api
from notebooks_service.images import normalise_catalogue
from notebooks_service.quotas import QuotaExceeded, Quotas, RunningServer, normalise_quota, parse_bytes
from notebooks_service.resources import normalise_classes

from conftest import (
    admin_request,
    eventually,
    hidden_field,
    log_in,
    set_members,
    set_user_quota,
    start_around_the_service,
    start_body,
    wait_for,
)

CLASSES = normalise_classes(RESOURCE_CLASSES)  # small: 1 CPU, 2G; large: 4 CPU, 16G; gpu: 8 CPU, 32G, 1 GPU


def refusal(quotas: Quotas, user: str, workspace: str, resource_class: str | None, running) -> str | None:
    try:
        quotas.check(user, workspace, resource_class, running)
    except QuotaExceeded as e:
        assert e.status_code == 403
        return e.message
    return None


def test_the_rules_count_servers_cpus_memory_and_gpus_per_workspace_and_per_user():
    quotas = Quotas(
        {"beta": normalise_quota("beta", {"servers": 1}), "*": normalise_quota("*", {"cpu": 6, "memory": "20G"})},
        normalise_quota("each user", {"servers": 2, "gpus": 1}),
        CLASSES,
    )
    alice_beta = RunningServer("alice", "beta", "python", "small")
    assert refusal(quotas, "alice", "beta", "small", [alice_beta]) == (
        "Workspace beta allows 1 running server: alice's beta/python runs. Stop one to start another."
    )
    assert refusal(quotas, "alice", "beta", "small", []) is None
    # '*' for every other workspace: CPUs and memory summed over the classes of what runs there
    alpha = [RunningServer("alice", "alpha", "python", "small"), RunningServer("carl", "alpha", "python", "large")]
    assert refusal(quotas, "bob", "alpha", "large", alpha) == (
        "Workspace alpha allows 6 CPUs in running servers: 5 CPUs taken (alice's alpha/python and carl's"
        " alpha/python), and Large needs 4 CPUs. Stop one, or choose a smaller size."
    )
    assert refusal(quotas, "bob", "alpha", "small", alpha) is None  # 6 CPUs, 20 GiB: exactly full is allowed
    # memory, once the CPUs fit (a server without a class holds none)
    roomy = Quotas({"*": normalise_quota("*", {"memory": "20G"})}, {}, CLASSES)
    assert refusal(roomy, "bob", "alpha", "large", [*alpha, RunningServer("dan", "alpha", "x", None)]) == (
        "Workspace alpha allows 20 GiB of memory in running servers: 18 GiB of memory taken (alice's alpha/python,"
        " carl's alpha/python and dan's alpha/x), and Large needs 16 GiB of memory. Stop one, or choose a smaller size."
    )
    # a user's own quota, over all their workspaces
    assert refusal(
        quotas, "alice", "gamma", "small", [alice_beta, RunningServer("alice", "alpha", "minimal", "small")]
    ) == (
        "You may have 2 running servers: alice's beta/python and alice's alpha/minimal run. Stop one to start another."
    )
    gpu = RunningServer("alice", "delta", "python", "gpu")
    assert refusal(quotas, "alice", "gamma", "gpu", [gpu]).startswith("Workspace gamma allows 6 CPUs")
    no_cpu_limits = Quotas({}, normalise_quota("each user", {"gpus": 1}), CLASSES)
    assert refusal(no_cpu_limits, "alice", "gamma", "gpu", [gpu]) == (
        "You may have 1 GPU in running servers: 1 GPU taken (alice's delta/python), and GPU needs 1 GPU."
        " Stop one, or choose a smaller size."
    )
    # no quota, or none for this workspace: anything goes
    assert refusal(Quotas({"beta": {"servers": 0}}, {}, CLASSES), "alice", "alpha", "gpu", alpha * 50) is None


def test_memory_reads_as_kubespawner_writes_it():
    assert parse_bytes("2G") == 2 * 2**30 and parse_bytes("512M") == 512 * 2**20 and parse_bytes("1.5Gi") == 3 * 2**29
    assert parse_bytes(1024) == 1024
    for nonsense in ("lots", "2X", "", True, "-1G", "x" * 5000):
        with pytest.raises(ValueError, match="not an amount of memory"):
            parse_bytes(nonsense)


@pytest.mark.parametrize(
    ("quotas", "says"),
    [
        ({"beta": {"servers": -1}}, "servers must be a whole number of 0 or more"),
        ({"beta": {"servers": 1.5}}, "servers must be a whole number"),
        ({"beta": {"cpus": 2}}, "unknown limit 'cpus'"),
        ({"beta": {"memory": "lots"}}, "not an amount of memory: 'lots'"),
        ({"beta": 3}, "must be a dict of limits"),
        ({"beta": {"gpus": True}}, "gpus must be a whole number"),
    ],
)
def test_a_bad_quota_is_a_start_up_error_that_names_it(quotas, says):
    with pytest.raises(Exception, match="NotebooksService.workspace_quotas") as raised:
        NotebooksService(workspace_quotas=quotas)
    assert says in str(raised.value)


# -- through the real Hub -----------------------------------------------------------------------------


def active(hub, user: str) -> dict:
    return admin_request(hub, "GET", f"/users/{user}")[1]["servers"]


@pytest.mark.hub_version
@pytest.mark.usefixtures("clean_servers")
async def test_the_service_refuses_a_start_over_the_quota_saying_what_runs_and_starts_it_once_there_is_room(
    client, hub
):
    alice = client("alice")
    for _ in range(2):  # twice: the room a stop makes is room again
        code, _ = await alice.json("POST", "beta/minimal")
        assert code in (201, 202)
        code, body = await alice.json("POST", "beta/python")
        assert code == 403 and body == {
            "status": 403,
            "message": "Workspace beta allows 1 running server: alice's beta/minimal runs. Stop one to start another.",
        }
        assert "beta-python" not in active(hub, "alice")  # nothing asked of the Hub
        # a restart in place is no second server
        code, _ = await alice.json("POST", "beta/minimal/-/restart")
        assert code == 202
        code, _ = await alice.json("DELETE", "beta/minimal")
        assert code in (202, 204)
        wait_for(lambda: "beta-minimal" not in active(hub, "alice"), message="stopped")
        code, _ = await alice.json("POST", "beta/python")
        assert code in (201, 202)
        code, _ = await alice.json("DELETE", "beta/python")
        wait_for(lambda: "beta-python" not in active(hub, "alice"), message="stopped")
    # other workspaces are not beta's business
    code, _ = await alice.json("POST", "beta/minimal")
    code, _ = await alice.json("POST", "alpha/minimal")
    assert code in (201, 202)


@pytest.mark.hub_version
@pytest.mark.usefixtures("clean_servers")
def test_a_browser_gets_the_refusal_as_a_page(hub):
    browser = log_in(hub, "alice")
    page = browser.get(hub.service_url)
    for image, expected in (("minimal", 303), ("python", 403)):
        response = browser.post(
            hub.service_url,
            data={"_xsrf": hidden_field(page.text, "_xsrf"), "workspace": "beta", "image": image},
            allow_redirects=False,
        )
        assert response.status_code == expected
    assert "Workspace beta allows 1 running server: alice&#39;s beta/minimal runs." in response.text
    assert response.headers["Content-Type"].startswith("text/html")


@pytest.mark.hub_version
@pytest.mark.usefixtures("clean_servers")
async def test_the_hub_itself_refuses_a_start_over_the_quota(client, hub, tokens):
    code, _ = await client("alice").json("POST", "beta/minimal")
    assert code in (201, 202)
    wait_for(lambda: active(hub, "alice").get("beta-minimal", {}).get("ready"), message="ready")
    refused = await start_around_the_service(
        hub, tokens["alice"], "alice", "beta-python", {"workspace": "beta", "image": "python"}
    )
    assert "Workspace beta allows 1 running server: alice's beta/minimal runs." in refused
    assert "beta-python" not in active(hub, "alice")


async def two_at_once(hub, token: str) -> list[str]:
    """Alice's two beta servers asked of the Hub at the same moment; the names of those that run."""
    http = AsyncHTTPClient(force_instance=True)
    try:
        starts = [
            http.fetch(
                HTTPRequest(
                    f"{hub.url}/hub/api/users/alice/servers/beta-{image}",
                    method="POST",
                    headers={"Authorization": f"token {token}"},
                    body=json.dumps(start_body(hub, {"workspace": "beta", "image": image})),
                ),
                raise_error=False,
            )
            for image in ("python", "minimal")
        ]
        answers = await asyncio.gather(*starts)
        assert all(a.code in (201, 202) for a in answers), [a.body for a in answers]  # both accepted; the guard decides

        def settled():
            servers = active(hub, "alice")
            return not any(s.get("pending") for s in servers.values()) and servers

        servers = wait_for(settled, timeout=30, message="both starts to settle")
        return sorted(name for name, s in servers.items() if s.get("ready"))
    finally:
        http.close()


@pytest.mark.hub_version
@pytest.mark.usefixtures("clean_servers")
async def test_of_two_concurrent_starts_against_a_quota_of_one_exactly_one_runs(hub, tokens):
    for _ in range(2):  # and again, on the Spawners JupyterHub kept of the failed start
        running = await two_at_once(hub, tokens["alice"])
        assert len(running) == 1, running
        for name in running:
            admin_request(hub, "DELETE", f"/users/alice/servers/{name}", {"remove": True})
        wait_for(lambda: active(hub, "alice") == {}, message="stopped")


# -- GET <prefix>/workspaces: what a web presence draws its launcher from ------------------------------


@pytest.mark.hub_version
@pytest.mark.usefixtures("clean_servers")
async def test_workspaces_lists_what_may_start_where_with_each_ones_room(client, hub):
    alice = client("alice")

    async def beta_in_use(text: str) -> dict:
        """The offers once beta's room says ``text`` (stops made elsewhere show within usage_cache_seconds)."""
        deadline = time.monotonic() + 10
        while True:
            code, offers = await alice.json("GET", "workspaces")
            assert code == 200, offers
            if offers["workspaces"][1]["room"]["text"] == text:
                return offers
            assert time.monotonic() < deadline, f"beta's room says {offers['workspaces'][1]['room']}, not {text!r}"
            await asyncio.sleep(0.2)

    offers = await beta_in_use("0 of 1 running servers in use")
    assert [w["name"] for w in offers["workspaces"]] == ["alpha", "beta"] and offers["room"] is None  # no user quota
    alpha, beta = offers["workspaces"]
    python = next(i for i in alpha["images"] if i["name"] == "python")
    assert python["display_name"] == "Python (JupyterLab)" and python["default_resource_class"] == "small"
    assert [c["name"] for c in python["resource_classes"]] == ["small", "large", "gpu"]
    assert python["resource_classes"][1] == {
        "name": "large",
        "display_name": "Large",
        "description": "",
        "size": "4 CPU, 16G memory",
        "cpu": 4,
        "memory": 16 * 2**30,
        "gpus": 0,
    }
    assert alpha["room"] is None and alpha["servers"] == []
    assert beta["room"] == {"quota": {"servers": 1}, "usage": usage(0), "text": "0 of 1 running servers in use"}

    # what runs shows, in the room and among the caller's servers (for everyone in the workspace)
    code, _ = await alice.json("POST", "beta/minimal")
    assert code in (201, 202)
    beta = (await beta_in_use("1 of 1 running servers in use"))["workspaces"][1]
    assert beta["room"]["usage"] == usage(1, memory=2 * 2**30, cpu=1)
    assert [s["name"] for s in beta["servers"]] == ["beta-minimal"]
    # bob is no member of beta: he sees alpha only, and nothing of alice's
    code, offers = await client("bob").json("GET", "workspaces")
    assert [w["name"] for w in offers["workspaces"]] == ["alpha"] and offers["workspaces"][0]["servers"] == []


def usage(servers: int, *, cpu: float = 0, memory: int = 0, gpus: int = 0) -> dict:
    return {"servers": servers, "cpu": cpu, "memory": memory, "gpus": gpus}


@pytest.mark.usefixtures("clean_servers")
def test_workspaces_is_json_for_browsers_too_and_cors_as_the_api(hub, tokens):
    import requests

    browser = log_in(hub, "alice")
    answer = browser.get(hub.service_url + "workspaces", headers={"Accept": "text/html"})
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json"
    origin = hub.web_presence.origin
    answer = requests.get(
        hub.service_url + "workspaces", headers={"Authorization": f"token {tokens['alice']}", "Origin": origin}
    )
    assert answer.status_code == 200 and answer.headers["Access-Control-Allow-Origin"] == origin
    answer = requests.get(hub.service_url + "workspaces", headers={"Origin": "https://elsewhere.example"})
    assert answer.status_code == 401 and "Access-Control-Allow-Origin" not in answer.headers
    # the start form says how full the chosen workspace is
    # (a stop made elsewhere, as the last test's clean-up, shows within HubClient.usage_cache_seconds)
    wait_for(
        lambda: (
            json.loads(html.unescape(hidden_attr(browser.get(hub.service_url).text, "data-rooms")))
            == {"beta": {"text": "0 of 1 running servers in use", "full": False, "held_by": [], "own": []}}
        ),
        timeout=10,
        message="the start form's room",
    )


def hidden_attr(page: str, name: str) -> str:
    match = re.search(rf'{name}="([^"]*)"', page)
    assert match, f"no {name} in the page"
    return match.group(1)


@pytest.mark.hub_version
@pytest.mark.usefixtures("clean_servers")
async def test_the_hub_holds_a_user_to_their_quota_whichever_way_the_start_comes(client, hub, tokens):
    # the guard reads the quota at each spawn; the service, started without one, lets the start through
    set_user_quota(hub, {"servers": 1})
    alice = client("alice")
    code, _ = await alice.json("POST", "alpha/minimal")
    assert code in (201, 202)
    await alice.wait_ready("alpha/minimal")
    expected = "You may have 1 running server: alice's alpha/minimal runs. Stop one to start another."
    code, body = await alice.json("POST", "beta/minimal")  # another workspace: the user's quota still counts
    assert code == 502 and body["message"] == f"The server failed to start: {expected}"
    refused = await start_around_the_service(hub, tokens["alice"], "alice", "alpha-python", PYTHON_IN_ALPHA)
    assert expected in refused
    assert sorted(active(hub, "alice")) == ["alpha-minimal"]
    # bob has a quota of his own
    code, _ = await client("bob").json("POST", "alpha/python")
    assert code in (201, 202)
    await client("bob").wait_ready("alpha/python")


PYTHON_IN_ALPHA = {"workspace": "alpha", "image": "python"}


async def test_a_start_the_hub_refused_for_the_quota_is_a_403_once_the_room_is_seen_taken():
    """Another replica (or a user's own token) took the room between this replica's count and the
    Hub's: the guard refuses, and the service says so as the quota's refusal, not a broken start."""
    from notebooks_service.diagnostics import NoDiagnostics
    from notebooks_service.errors import SpawnFailed
    from notebooks_service.images import normalise_catalogue
    from notebooks_service.servers import Launcher, ServerRequest
    from notebooks_service.workspaces import StaticWorkspacePolicy

    class RacedHub:
        """The count sees nothing at first; the start fails; then the other replica's server shows."""

        changes, usage_cache_seconds = 0, 0

        def __init__(self):
            self.counts = 0

        async def api_request(self, method, path, body=None, **kwargs):
            """The guard's count (hubquotas.py): nothing at first; then the other replica's server."""
            assert (method, path) == ("GET", "/notebooks/quota-usage?workspace=beta&user=alice&server=beta-minimal")
            self.counts += 1
            named = [] if self.counts == 1 else ["alice's beta/python"]
            tally = {"usage": {"servers": len(named), "cpu": 0, "memory": 0, "gpus": 0}, "named": named}
            return SimpleNamespace(code=200, body={"workspaces": {"beta": tally}, "user": tally})

        async def start_server(self, *args):
            raise SpawnFailed("The server failed to start: Workspace beta allows 1 running server: ...")

    catalogue = normalise_catalogue({"minimal": "quay.io/jupyter/base-notebook"})
    launcher = Launcher(
        hub=RacedHub(),
        policy=StaticWorkspacePolicy(),
        catalogue=catalogue,
        resource_classes={},
        prefix="/services/notebooks/",
        diagnostics=NoDiagnostics(),
        quotas=Quotas({"beta": {"servers": 1}}, {}, {}),
    )
    request = ServerRequest({"name": "alice", "servers": {}}, "beta", catalogue["minimal"], None, "beta-minimal")
    with pytest.raises(QuotaExceeded, match="alice's beta/python runs"):
        await launcher.start(request, None)


# -- counted as placed: a start that names no class runs at its image's default, and counts so -------


@pytest.mark.hub_version
@pytest.mark.usefixtures("clean_servers")
@pytest.mark.parametrize(
    "quota, says",
    [
        (
            {"cpu": 1},
            "You may have 1 CPU in running servers: 1 CPU taken (alice's alpha/python), and Small needs 1 CPU.",
        ),
        (
            {"memory": "2G"},
            "You may have 2 GiB of memory in running servers: 2 GiB of memory taken (alice's alpha/python),"
            " and Small needs 2 GiB of memory.",
        ),
    ],
)
async def test_a_start_through_the_hub_without_a_class_counts_at_the_class_it_runs_with(
    client, hub, tokens, quota, says
):
    set_user_quota(hub, quota)  # the guard reads it at each spawn
    http = AsyncHTTPClient(force_instance=True)
    try:
        response = await http.fetch(
            HTTPRequest(
                f"{hub.url}/hub/api/users/alice/servers/alpha-python",
                method="POST",
                headers={"Authorization": f"token {tokens['alice']}"},
                body=json.dumps(start_body(hub, PYTHON_IN_ALPHA)),  # no resource_class
            ),
            raise_error=False,
        )
    finally:
        http.close()
    assert response.code in (201, 202), response.body
    wait_for(lambda: active(hub, "alice").get("alpha-python", {}).get("ready"), message="ready")
    # what the Hub shows (and the service counts from) is the class it was placed at
    assert active(hub, "alice")["alpha-python"]["user_options"] == {**PYTHON_IN_ALPHA, "resource_class": "small"}
    model = await client("alice").wait_ready("alpha/python")  # once its cached view of alice (1 s) is renewed
    assert model["resource_class"] == "small", model
    # so the next start, again without a class, finds the room taken, and so does one of another image
    for name, options in (
        ("alpha-minimal", {"workspace": "alpha", "image": "minimal"}),
        ("beta-python", {"workspace": "beta", "image": "python"}),
    ):
        refused = await start_around_the_service(hub, tokens["alice"], "alice", name, options)
        assert says in refused, refused
    assert sorted(active(hub, "alice")) == ["alpha-python"]


@pytest.mark.hub_version
@pytest.mark.usefixtures("clean_servers")
@pytest.mark.parametrize(
    "resource_class, says",
    [
        ("huge", "Resource class 'huge' is not offered for 'minimal' here"),
        ("large", "'large' is not offered for 'minimal'"),
    ],
)
async def test_a_start_through_the_hub_with_a_class_not_offered_is_refused(hub, tokens, resource_class, says):
    options = {"workspace": "alpha", "image": "minimal", "resource_class": resource_class}  # large: python's
    refused = await start_around_the_service(hub, tokens["alice"], "alice", "alpha-minimal", options)
    assert says in refused, refused
    assert active(hub, "alice") == {}


def test_a_server_started_before_classes_were_recorded_counts_at_its_images_default():
    images = normalise_catalogue(
        {"gpu-lab": {"image": "x/gpu", "resource_classes": ["small", "gpu"], "default_resource_class": "gpu"}}
    )
    quotas = Quotas({"*": normalise_quota("*", {"gpus": 1})}, {}, CLASSES, images)
    before = RunningServer("carl", "alpha", "gpu-lab", None)  # user_options from before the guard recorded classes
    assert quotas.usage([before]).gpus == 1
    assert refusal(quotas, "bob", "alpha", "gpu", [before]) == (
        "Workspace alpha allows 1 GPU in running servers: 1 GPU taken (carl's alpha/gpu-lab), and GPU needs 1 GPU."
        " Stop one, or choose a smaller size."
    )
    assert quotas.usage([RunningServer("carl", "alpha", "gone-image", None)]).gpus == 0  # no longer in the catalogue


# -- what the Hub counts for the service: one small answer, whatever the number of users --------------


@pytest.mark.hub_version
@pytest.mark.usefixtures("clean_servers")
async def test_the_hub_counts_a_workspaces_servers_for_the_service_and_only_for_those_allowed_to_list_users(
    client, hub, tokens
):
    await client("alice").json("POST", "beta/minimal")
    await client("bob").json("POST", "alpha/minimal")
    for who, path in (("alice", "beta/minimal"), ("bob", "alpha/minimal")):
        await client(who).wait_ready(path)
    ask = "/notebooks/quota-usage?workspace=alpha&workspace=beta&user=alice"
    code, answer = admin_request(hub, "GET", ask)
    assert code == 200, answer
    small = {"servers": 1, "cpu": 1, "memory": 2 * 2**30, "gpus": 0}  # as placed: the image's default class
    assert answer == {
        "workspaces": {
            "alpha": {"usage": small, "named": ["bob's alpha/minimal"]},
            "beta": {"usage": small, "named": ["alice's beta/minimal"]},
        },
        "user": {"usage": small, "named": ["alice's beta/minimal"]},
    }
    # her own server left out (a restart counts itself once)
    code, answer = admin_request(hub, "GET", ask + "&server=beta-minimal")
    assert answer["workspaces"]["beta"]["usage"]["servers"] == 0 and answer["user"]["named"] == []
    # a user's own token may not list users: refused, as the Hub refuses /users
    status, _ = hub_api(hub.url, tokens["alice"], "GET", ask)
    assert status == 403
    # nor hold a room for her own server (she would keep it held with nothing running): the service only
    status, said = hub_api(hub.url, tokens["alice"], "POST", "/notebooks/room-holds/alice/beta-minimal", {})
    assert status == 403 and json.loads(said)["message"] == "Only the notebooks service holds a restart's room."
    code, answer = admin_request(
        hub, "GET", "/notebooks/quota-usage?" + "&".join(f"workspace=w{i}" for i in range(101))
    )
    assert code == 400 and json.loads(answer) == {"status": 400, "message": "Ask about 100 workspaces at most."}


def test_a_refusal_names_a_few_holders_and_counts_the_rest():
    quotas = Quotas({"*": normalise_quota("*", {"servers": 12})}, {}, CLASSES)
    crowd = [RunningServer(f"u{i:02d}", "alpha", "python", "small") for i in range(12)]
    assert refusal(quotas, "bob", "alpha", "small", crowd) == (
        "Workspace alpha allows 12 running servers: u00's alpha/python, u01's alpha/python, u02's alpha/python,"
        " u03's alpha/python, u04's alpha/python and 7 more run. Stop one to start another."
    )


async def test_without_the_hubs_count_the_service_counts_from_the_active_users():
    """A Hub whose configuration lacks the guard's endpoint answers 404: the list of active users
    (paged) is counted instead, once the Hub has said so (it is not asked again)."""
    from notebooks_service.hubusers import QuotaUsage

    class OlderHub:
        changes, usage_cache_seconds = 0, 0

        def __init__(self):
            self.asked = []

        async def api_request(self, method, path, body=None, **kwargs):
            self.asked.append(path)
            return SimpleNamespace(code=404, body={"status": 404}, message="Not Found")

        async def running_servers(self, fresh=False):
            self.asked.append("active users")
            return [RunningServer("alice", "beta", "python", None), RunningServer("bob", "alpha", "python", "large")]

    older = OlderHub()
    usage = QuotaUsage(older, Quotas({}, {}, CLASSES, normalise_catalogue({"python": "x/python"})))
    for _ in range(2):
        workspaces, alice = await usage.get(["beta"], "alice")
        assert workspaces["beta"].usage.servers == 1 and alice.named == ("alice's beta/python",)
    assert older.asked == ["/notebooks/quota-usage?workspace=beta&user=alice&server=", "active users", "active users"]


# -- a restart keeps its room; waiting for the count keeps to the request's budget -------------------


@pytest.mark.hub_version
@pytest.mark.usefixtures("clean_servers")
async def test_a_restart_in_a_full_workspace_keeps_its_room_from_its_stop_to_its_start(client, hub, tokens):
    """beta holds one server. While alice's restart is between its stop and its start (the Hub slow
    to answer the service), bob's start straight at the Hub is refused as hers holds the room; her
    restart then runs. Twice: a room held is given back with the start that takes it."""
    # (without the hold, bob's start is admitted in the gap, and her restart answers 403)
    set_members(hub, {"alice": ["alpha", "beta"], "bob": ["alpha", "beta"]})
    alice = client("alice")
    assert (await alice.json("POST", "beta/minimal"))[0] in (201, 202)
    await alice.wait_ready("beta/minimal")
    for _ in range(2):
        # the service's start of her server waits at the Hub's door: the restart's gap is long
        hub.meter.delays[("POST", "/users/alice/servers/beta-minimal$")] = 2  # within the 5 s budget
        try:
            restart = asyncio.ensure_future(alice.json("POST", "beta/minimal/-/restart"))
            await eventually(lambda: "beta-minimal" not in active(hub, "alice"), timeout=60, message="her stop")
            refused = await start_around_the_service(hub, tokens["bob"], "bob", "beta-minimal", BETA_MINIMAL)
            assert "Workspace beta allows 1 running server: alice's beta/minimal runs." in refused, refused
        finally:
            hub.meter.delays.clear()
        code, body = await restart
        assert code == 202, body
        await alice.wait_ready("beta/minimal")
        assert "beta-minimal" not in active(hub, "bob")


BETA_MINIMAL = {"workspace": "beta", "image": "minimal"}


async def test_a_start_waits_for_the_count_within_its_budget_and_a_failed_restart_says_it_stopped():
    from notebooks_service.admission import Admission
    from notebooks_service.deadline import time_budget
    from notebooks_service.errors import ServiceUnavailable
    from notebooks_service.servers import ServerRequest

    class CountingHub:
        changes, usage_cache_seconds = 0, 0

        async def api_request(self, method, path, body=None, **kwargs):
            if method == "POST":  # the room hold
                return SimpleNamespace(code=204, body=None)
            tally = {"usage": {"servers": 0, "cpu": 0, "memory": 0, "gpus": 0}, "named": []}
            return SimpleNamespace(code=200, body={"workspaces": {"beta": tally}, "user": tally})

    admission = Admission(CountingHub(), Quotas({"beta": {"servers": 1}}, {}, {}))
    request = ServerRequest({"name": "alice", "servers": {}}, "beta", {"name": "minimal"}, None, "beta-minimal")
    inside, leave = asyncio.Event(), asyncio.Event()

    async def slow_start(request, options):
        inside.set()
        await leave.wait()
        return {"ready": True}

    first = asyncio.ensure_future(admission.start(request, {}, slow_start))
    await inside.wait()
    with time_budget(0.2):  # another start in beta, with 0.2 s left of its budget
        with pytest.raises(ServiceUnavailable, match="Other starts in workspace beta are being counted"):
            await admission.start(request, {}, slow_start)
    leave.set()
    assert await first == {"ready": True}

    async def stopped(request):
        return request

    async def refused(request, options):
        raise QuotaExceeded("Workspace beta allows 1 running server: carl's beta/python runs.")

    with pytest.raises(Exception) as failed:
        await admission.restart(request, {}, stopped, refused)
    assert failed.value.status_code == 403 and failed.value.message == (
        "Your server was stopped to restart it, but did not start again: "
        "Workspace beta allows 1 running server: carl's beta/python runs."
    )
