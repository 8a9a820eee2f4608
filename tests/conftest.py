"""Fixtures: one real JupyterHub (proxy, local spawner, this service) for the session.

The Hub runs the demo configuration plus ``hub_test_config.py`` (an admin
service for test setup, and a switch to make spawns slow). Tests talk to it
over real HTTP through its proxy.
"""

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
import requests
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from notebooks_service.demo import WORKSPACE_MEMBERS
from notebooks_service.demo.app import SERVICE_CONFIG as DEMO_SERVICE_CONFIG
from notebooks_service.demo.app import DemoHub, free_port, hub_api
from notebooks_service.demo.ports import REGISTRY_ENV
from notebooks_service.logs import local_log_path

import log_check
from fake_kubernetes import FakeKubernetes
from hub_meter import HubMeter
from identity_provider import LocalIdentityProvider
from service_client import ServiceClient
from threaded_server import ThreadedServer

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(HERE), "examples")
ADMIN_TOKEN = "test-admin-token-not-secret-0123456789"
#: every token the tests hand out: the session-finish log check (log_check.py) makes sure no log holds one
ISSUED_SECRETS: set[str] = {ADMIN_TOKEN}


def pytest_configure(config):
    """One port registry for the whole run (notebooks_service/demo/ports.py): made by the first
    process, before pytest-xdist starts its workers, which inherit it with every Hub they start."""
    if not os.environ.get(REGISTRY_ENV):
        fd, path = tempfile.mkstemp(prefix="notebooks-service-ports-")
        os.close(fd)
        os.environ[REGISTRY_ENV] = config._notebooks_port_registry = path


def pytest_unconfigure(config):
    path = getattr(config, "_notebooks_port_registry", None)
    if path:
        os.environ.pop(REGISTRY_ENV, None)
        with contextlib.suppress(OSError):
            os.remove(path)


class HubUser(SimpleNamespace):
    """What the guard reads of the Hub's User object (for tests of the guard without a Hub)."""

    async def get_auth_state(self):
        return self.auth_state


def admin_request(hub: DemoHub, method: str, path: str, body=None) -> tuple[int, object]:
    """A synchronous Hub API call with the test-admin token (fixtures only)."""
    return hub_api(hub.url, ADMIN_TOKEN, method, path, body)


def hub_version(hub: DemoHub) -> tuple[int, ...]:
    """The running Hub's (major, minor), asked once."""
    if not hasattr(hub, "version"):
        status, body = admin_request(hub, "GET", "/")
        assert status == 200, body
        hub.version = tuple(int(p) for p in body["version"].split(".")[:2])
    return hub.version


def start_body(hub: DemoHub, user_options: dict | None) -> dict:
    """A start request's body in the Hub's own shape: 6.x wraps user_options, 5.x takes them whole."""
    if user_options is None:
        return {}
    return {"user_options": user_options} if hub_version(hub) >= (6,) else user_options


def wait_for(predicate, timeout: float = 30, interval: float = 0.1, message: str = "condition"):
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout`` seconds.

    ``message`` may be a callable: what was seen, read when the wait fails."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            said = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout}s waiting for {said}")
        time.sleep(interval)


async def eventually(predicate, timeout: float = 30, interval: float = 0.1, message: str = "condition"):
    """``wait_for`` for tests on an event loop: poll without blocking it."""
    import asyncio

    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(interval)
    return result


@contextlib.contextmanager
def running_hub(run_dir, extra_config: str = "hub_test_config.py", **kwargs):
    """A JupyterHub in ``run_dir`` with the users alice and bob; stopped (SIGTERM, wait) on exit."""
    hub = DemoHub(
        str(run_dir),
        extra_config=os.path.join(HERE, extra_config),
        env={"NOTEBOOKS_TEST_ADMIN_TOKEN": ADMIN_TOKEN, **kwargs.pop("env", {})},
        **kwargs,
    )
    try:
        hub.start_ready(timeout=90)
        status, _ = admin_request(hub, "POST", "/users", {"usernames": ["alice", "bob"]})
        assert status in (201, 409)
        yield hub
    finally:
        hub.stop()


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session", autouse=True)
def no_secret_and_no_leaving_traceback_in_any_log(tmp_path_factory):
    """After every other fixture of the session (Hubs included) has stopped: read every log the
    suite wrote. A finding fails the run as an error of this fixture, whichever tests ran."""
    yield
    logs = log_check.suite_logs(tmp_path_factory.getbasetemp())
    found = log_check.secrets_in(logs, ISSUED_SECRETS) + log_check.tracebacks_of_leaving_clients(logs)
    if found:
        pytest.fail("the suite's logs hold what they must not:\n" + "\n".join(found[:30]), pytrace=False)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (never a downloaded browser); skipped where it is missing."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            raise RuntimeError("Chromium is missing: .ci/run installs it (apt-get install chromium)")
        pytest.skip("no Chromium here: apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, hub):
    """A fresh Chromium page at desktop width, its console messages kept (``page.console_messages``)."""
    from in_browser import DESKTOP

    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.console_messages = []
    page.on("console", lambda message: page.console_messages.append(message.text))
    yield page
    context.close()


@pytest.fixture(scope="module")
def idp():
    """A local identity provider: JWKS and token endpoint over HTTP, tokens signed as a test asks."""
    provider = LocalIdentityProvider()
    yield provider
    provider.close()


@pytest.fixture(scope="module")
def no_cluster(tmp_path_factory):
    """KubeSpawner loads a kube config when built; tests that only build manifests point it nowhere."""
    from kubernetes_asyncio.config import kube_config

    from kube_pods import KUBECONFIG

    path = tmp_path_factory.mktemp("kube") / "config"
    path.write_text(KUBECONFIG)
    with pytest.MonkeyPatch.context() as m:
        # read from the environment at import time, so set where it is looked up
        m.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
        yield


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """A fake Kubernetes API server (empty until a test adds pods and events)."""
    fake = FakeKubernetes()
    path = tmp_path_factory.mktemp("kube") / "config"
    path.write_text(fake.kubeconfig())
    fake.kubeconfig_path = str(path)
    yield fake
    fake.close()


@pytest.fixture
async def api(cluster):
    """The fake cluster as KubeSpawner's shared client finds it (its kubeconfig as the default),
    for tests that run KubeSpawner itself in their own event loop."""
    from kubernetes_asyncio.config import kube_config
    from kubespawner import KubeSpawner

    cluster.clear()
    with pytest.MonkeyPatch.context() as m:
        m.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", cluster.kubeconfig_path)
        yield cluster
    await KubeSpawner._stop_all_reflectors()  # they belong to this test's event loop
    KubeSpawner.reflectors.clear()
    cluster.clear()


@pytest.fixture(scope="session")
def hub(tmp_path_factory, cluster):
    """A running JupyterHub with notebooks-service at /services/notebooks/, diagnostics on the fake cluster.

    The service reaches the Hub's API through ``hub.meter`` (counts calls and open progress streams).
    """
    run_dir = tmp_path_factory.mktemp("hub")
    reconciler_metrics_port = free_port()
    meter = HubMeter(0)  # its upstream: the Hub's API port, once chosen (again, should a start be retried)
    web_presence = serve_web_presence()
    service_config = run_dir / "notebooks_service_config.py"
    service_config.write_text(
        f"load_subconfig({DEMO_SERVICE_CONFIG!r})\n"
        "c = get_config()\n"
        "c.NotebooksService.kubernetes = 'kubeconfig'\n"
        f"c.NotebooksService.kubeconfig = {cluster.kubeconfig_path!r}\n"
        f"c.NotebooksService.hub_api_url = {meter.url!r}\n"
        # short enough that a test of a hung Hub is quick; long enough for a loaded CI machine
        "c.NotebooksService.request_budget = 5\n"
        "c.ProgressFanout.max_watchers_per_user = 50\n"
        "c.NotebooksService.stream_keepalive = 0.2\n"  # a quiet stream's keepalives, within a test's reach
        "c.NotebooksService.max_log_follows = 8\n"  # the process-wide cap, within reach of a test
        f"c.NotebooksService.allow_origins = [{web_presence.origin!r}]\n"
        # members a test can change (set_members), for the service and the Hub-side guard alike
        f"import sys; sys.path.insert(0, {HERE!r})\n"
        "c.NotebooksService.workspace_policy_class = 'changing_members.ChangingMembersPolicy'\n"
        f"c.NotebooksService.workspace_members = {WORKSPACE_MEMBERS!r}\n"  # the demo's, unless a test changes them
        "c.Reconciler.membership_check_interval = 3\n"  # a test sees a leaver's server and shares go
        f"c.Reconciler.metrics_port = {reconciler_metrics_port}\n"
        # a user quota a test sets (set_user_quota): the Hub-side guard reads this file at every spawn
        "import json, os\n"
        "_quota = os.path.join(os.environ['NOTEBOOKS_DEMO_RUN_DIR'], 'user-quota.json')\n"
        "if os.path.exists(_quota):\n"
        "    c.NotebooksService.user_quota = json.load(open(_quota))\n"
    )
    try:
        with running_hub(
            run_dir, service_config=str(service_config), ports_chosen=lambda h: meter.follow(h.hub_port)
        ) as hub:
            hub.meter = meter
            hub.web_presence = web_presence
            hub.reconciler_metrics = f"http://127.0.0.1:{reconciler_metrics_port}/metrics"
            yield hub
    finally:
        meter.close()
        web_presence.close()


def serve_web_presence() -> ThreadedServer:
    """examples/web_presence.html on another origin (http://localhost:<port>), like a platform's own site."""

    def make_app():
        return web.Application(
            [(r"/()", web.StaticFileHandler, {"path": EXAMPLES, "default_filename": "web_presence.html"})]
        )

    server = ThreadedServer(make_app)
    server.origin = f"http://localhost:{server.port}"  # the service allows this one ...
    server.other_origin = f"http://127.0.0.1:{server.port}"  # ... and not this one (same page)
    return server


@dataclass
class Tokens:
    hub: DemoHub
    tokens: dict = field(default_factory=dict)

    def __getitem__(self, user: str) -> str:
        if user not in self.tokens:
            self.tokens[user] = self.new(user)
        return self.tokens[user]

    def new(self, user: str) -> str:
        """A token of ``user`` that nothing has used yet."""
        status, model = admin_request(self.hub, "POST", f"/users/{user}/tokens", {"note": "tests"})
        assert status == 201, model
        ISSUED_SECRETS.add(model["token"])
        return model["token"]


@pytest.fixture(scope="session")
def tokens(hub) -> Tokens:
    """Hub API tokens of the test users, made on first use."""
    return Tokens(hub)


def stop_all_servers(hub: DemoHub, user: str) -> None:
    """Stop and remove every server of ``user``, stopped ones (failed starts) included."""

    def named_servers() -> dict | None:
        status, model = admin_request(hub, "GET", f"/users/{user}?include_stopped_servers=1")
        # the default server ('') is listed when stopped, and cannot be removed
        return {n: s for n, s in (model.get("servers") or {}).items() if n} if status == 200 else None

    for name in named_servers() or {}:
        admin_request(hub, "DELETE", f"/users/{user}/servers/{name}", {"remove": True})

    def no_servers():
        return named_servers() == {}

    wait_for(no_servers, timeout=60, message=f"{user}'s servers to stop")


@pytest.fixture
def clean_servers(hub, cluster, tokens):
    """Every test that starts servers leaves none behind (nor pods in the fake cluster), as the
    service sees it too: its models of users are cached for a second (HubClient.user_cache_seconds)."""
    set_spawn_delay(hub, None)
    set_spawn_failure(hub, None)
    set_members(hub, None)
    set_user_quota(hub, None)
    cluster.clear()
    yield
    cluster.clear()
    set_spawn_delay(hub, None)
    set_spawn_failure(hub, None)
    set_members(hub, None)
    set_user_quota(hub, None)
    for user in ("alice", "bob"):
        stop_all_servers(hub, user)
        token = tokens[user]
        wait_for(
            lambda t=token: service_lists_none(hub, t), timeout=15, message=f"the service to list none of {user}'s"
        )


def service_lists_none(hub: DemoHub, token: str) -> bool:
    request = urllib.request.Request(
        hub.service_url, headers={"Authorization": f"token {token}", "Accept": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read()) == []


def _switch(hub: DemoHub, name: str, value) -> None:
    path = os.path.join(hub.run_dir, name)
    if value is None:
        if os.path.exists(path):
            os.remove(path)
    else:
        with open(path, "w") as f:
            f.write(str(value))


def set_real_servers(hub: DemoHub, real: bool) -> None:
    """Make the test Hub's spawns start real JupyterLab processes (True) or in-process servers (tests/hub_spawner.py)."""
    _switch(hub, "real-servers", 1 if real else None)


@pytest.fixture
def real_servers(hub):
    """For a test that needs JupyterLab itself: the session Hub's spawns start real servers meanwhile."""
    set_real_servers(hub, True)
    yield
    set_real_servers(hub, False)


def set_spawn_delay(hub: DemoHub, seconds: float | None) -> None:
    """Make the test Hub's spawns wait ``seconds`` before starting (None: no delay)."""
    _switch(hub, "spawn-delay", seconds)


def set_idle_minutes(hub: DemoHub, minutes: float | None) -> None:
    """Make the test Hub's next starts look idle for ``minutes`` already (None: just used)."""
    _switch(hub, "idle-minutes", minutes)


def set_members(hub: DemoHub, members: dict | None) -> None:
    """Change who is a member of which workspace on the session's Hub ({user: [workspaces]}; None: the demo's)."""
    _switch(hub, "members.json", None if members is None else json.dumps(members))


def set_user_quota(hub: DemoHub, quota: dict | None) -> None:
    """A user quota for the session Hub's guard from its next spawn on (the service, started before, has none)."""
    _switch(hub, "user-quota.json", None if quota is None else json.dumps(quota))


def set_refresh_failure(hub: DemoHub, token: str | None) -> None:
    """Make the test Hub's login renewals answer 500 quoting ``token`` (None: renewals succeed)."""
    _switch(hub, "refresh-fail", token)


def set_spawn_failure(hub: DemoHub, message: str | None) -> None:
    """Make the test Hub's spawns fail with ``message`` (None: succeed)."""
    _switch(hub, "spawn-fail", message)


@pytest.fixture
def client(hub, tokens):
    """``client("alice")``: a JSON client with alice's Hub token; ``client(None)``: no token."""
    made = []

    def make(user: str | None) -> ServiceClient:
        c = ServiceClient(hub, tokens[user] if user else None)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


async def start_around_the_service(hub, token: str, user: str, name: str, options: dict | None) -> str:
    """Ask the Hub's API directly; return why the spawn was refused (the answer or the progress stream)."""
    http = AsyncHTTPClient(force_instance=True)
    try:
        body = start_body(hub, options)
        response = await http.fetch(
            HTTPRequest(
                f"{hub.url}/hub/api/users/{user}/servers/{name}",
                method="POST",
                headers={"Authorization": f"token {token}"},
                body=json.dumps(body),
            ),
            raise_error=False,
        )
        if response.code not in (201, 202):
            assert response.code in (400, 403, 404), response.body
            return json.loads(response.body)["message"]
        # accepted before the guard ran: the spawn then fails, and its progress says why (a 201 too:
        # JupyterHub answers 201 to a spawn that is no longer pending, and one refused at once is not)
        progress = await http.fetch(
            f"{hub.url}/hub/api/users/{user}/servers/{name}/progress",
            headers={"Authorization": f"token {token}"},
            request_timeout=30,
        )
        events = [json.loads(line[5:]) for line in progress.body.decode().splitlines() if line.startswith("data:")]
        assert events[-1].get("failed") is True, f"the spawn was not refused: {events[-1]}"
        return events[-1]["message"]
    finally:
        http.close()


def forget_output(hub, user: str, server_name: str) -> None:
    """As if ``user`` had never run the server: its output files (current and previous run) gone."""
    for previous in (False, True):
        with contextlib.suppress(FileNotFoundError):
            os.remove(local_log_path(os.path.join(hub.run_dir, "logs"), user, server_name, previous=previous))


def hidden_field(html: str, name: str) -> str:
    match = re.search(rf'name="{name}"\s+value="([^"]*)"', html)
    assert match, f"no {name} field in page"
    return match.group(1)


def log_in(hub, user: str) -> requests.Session:
    """Open the service as a browser would and log in through the Hub."""
    browser = requests.Session()
    page = browser.get(hub.service_url)  # -> Hub OAuth -> Hub login page
    assert "/hub/login" in page.url, page.url
    page = browser.post(
        page.url,
        data={"username": user, "password": "any", "_xsrf": hidden_field(page.text, "_xsrf")},
    )  # -> authorize -> our oauth_callback -> back where we started
    assert page.status_code == 200, page.text[:500]
    assert page.url == hub.service_url
    return browser
