"""Configuration: the Hub's environment for managed services, a config file, and bad values."""

import json
import subprocess
import sys

import pytest
from traitlets import TraitError

from notebooks_service.app import NotebooksService
from notebooks_service.workspaces import ClaimsWorkspacePolicy, HubGroupsWorkspacePolicy, StaticWorkspacePolicy

HUB_ENV = {
    "JUPYTERHUB_API_TOKEN": "abc",
    "JUPYTERHUB_API_URL": "http://hub:8081/hub/api",
    "JUPYTERHUB_SERVICE_PREFIX": "/services/nb/",
    "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:9999",
    "JUPYTERHUB_SERVICE_NAME": "nb",
    "JUPYTERHUB_CLIENT_ID": "service-nb",
    "JUPYTERHUB_BASE_URL": "/jupyter/",
}


@pytest.fixture
def hub_env(monkeypatch):
    for key, value in HUB_ENV.items():
        monkeypatch.setenv(key, value)


def test_reads_the_environment_a_hub_gives_a_managed_service(hub_env):
    app = NotebooksService()
    assert (app.ip, app.port) == ("0.0.0.0", 9999)
    assert app.service_prefix == "/services/nb/"
    assert app.hub_api_url == "http://hub:8081/hub/api"
    assert app.hub_prefix == "/jupyter/hub/"
    assert app.oauth_redirect_uri == "/services/nb/oauth_callback"
    auth = app.make_hub_auth()
    assert auth.oauth_client_id == "service-nb"
    assert auth.access_scopes == {"access:services!service=nb"}


def test_config_file_sets_catalogue_and_policy(hub_env, tmp_path):
    config = tmp_path / "notebooks_service_config.py"
    config.write_text(
        "c.NotebooksService.images = {'python': 'quay.io/jupyter/scipy-notebook'}\n"
        "c.NotebooksService.workspace_policy_class = 'hub-groups'\n"
        "c.HubGroupsWorkspacePolicy.group_template = 'ws-{workspace}'\n"
    )
    app = NotebooksService()
    app.initialize(["--config", str(config)])
    assert app.images["python"]["image"] == "quay.io/jupyter/scipy-notebook"
    policy = app.make_policy()
    assert isinstance(policy, HubGroupsWorkspacePolicy) and policy.group_template == "ws-{workspace}"


def test_static_policy_takes_workspace_members(hub_env):
    app = NotebooksService(workspace_members={"alice": ["alpha"]})
    policy = app.make_policy()
    assert isinstance(policy, StaticWorkspacePolicy) and policy.members == {"alice": ["alpha"]}


def test_missing_config_file_is_a_clear_exit(hub_env, tmp_path):
    with pytest.raises(SystemExit, match="Config file not found"):
        NotebooksService().initialize(["--config", str(tmp_path / "nope.py")])


def test_missing_token_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    with pytest.raises(ValueError, match="JUPYTERHUB_API_TOKEN"):
        NotebooksService().make_hub_auth()


def test_bad_catalogue_is_refused():
    with pytest.raises(TraitError):
        NotebooksService(images={"python": {"display_name": "no image"}})


def test_policies_by_name_or_class_and_nothing_else(hub_env):
    assert NotebooksService(workspace_policy_class="hub-groups").workspace_policy_class is HubGroupsWorkspacePolicy
    assert NotebooksService(workspace_policy_class="Claims").workspace_policy_class is ClaimsWorkspacePolicy
    named = "notebooks_service.workspaces.StaticWorkspacePolicy"
    assert NotebooksService(workspace_policy_class=named).workspace_policy_class is StaticWorkspacePolicy
    with pytest.raises(TraitError, match="WorkspacePolicy"):
        NotebooksService(workspace_policy_class="notebooks_service.images.lookup_image")
    with pytest.raises(TraitError, match="could not be imported"):
        NotebooksService(workspace_policy_class="no-such-policy")


def test_cookie_secret_from_the_environment(hub_env, monkeypatch, tmp_path):
    # NOTEBOOKS_SERVICE_* must not be mistaken for traitlets config from the environment
    monkeypatch.setenv("NOTEBOOKS_SERVICE_COOKIE_SECRET", "ab" * 32)
    monkeypatch.chdir(tmp_path)
    app = NotebooksService()
    app.initialize([])
    assert app.cookie_secret == bytes.fromhex("ab" * 32)


def test_cookie_secret_must_be_hex(hub_env, monkeypatch):
    monkeypatch.setenv("NOTEBOOKS_SERVICE_COOKIE_SECRET", "not hex")
    with pytest.raises(Exception, match="must be hex"):
        _ = NotebooksService().cookie_secret


#: what only some deployments or callers use, loaded where it is used (memory: docs/benchmarks.rst, P4);
#: cryptography (the OAuth state's encryption) at the first browser login: test_replicas logs in
#: through both replicas
LOADED_WHEN_USED = {
    "kubernetes_asyncio": "c.NotebooksService.kubernetes = 'kubeconfig'",
    "jwt": "c.IdentityProvider.accept_bearer_jwt = True",
    "pythonjsonlogger": "c.NotebooksService.log_json = True",
}


def modules_loaded(config_file: str, modules) -> dict[str, bool]:
    code = (
        "import json, sys; from notebooks_service.app import NotebooksService; "
        "s = NotebooksService(); s.initialize(['--config', sys.argv[1]]); s.make_app(); "
        f"print(json.dumps({{m: m in sys.modules for m in {sorted(modules)!r}}}))"
    )
    result = subprocess.run([sys.executable, "-c", code, config_file], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_what_only_some_deployments_use_is_loaded_only_where_it_is_used(hub_env, tmp_path):
    modules = [*LOADED_WHEN_USED, "yaml", "cryptography", "jinja2"]
    plain = tmp_path / "plain.py"
    plain.write_text("c = get_config()\n")
    # (yaml: the OpenAPI document is read at the first request for it; jinja2 at the first page)
    assert modules_loaded(str(plain), modules) == dict.fromkeys(modules, False)
    using_all = tmp_path / "all.py"
    using_all.write_text(
        "c = get_config()\n"
        + "".join(f"{setting}\n" for setting in LOADED_WHEN_USED.values())
        + "c.IdentityProvider.issuer = 'https://idp.example.org/realms/x'\n"
        "c.IdentityProvider.jwks_url = 'https://idp.example.org/realms/x/certs'\n"
        "c.IdentityProvider.audience = 'notebooks'\n"
        f"c.NotebooksService.kubeconfig = {str(tmp_path / 'kubeconfig')!r}\n"
    )
    # PyJWT not even then: at the first Bearer JWT
    assert modules_loaded(str(using_all), list(LOADED_WHEN_USED)) == {
        "kubernetes_asyncio": True,
        "pythonjsonlogger": True,
        "jwt": False,
    }


def test_security_headers_replace_the_defaults_one_by_one():
    from notebooks_service.app import NotebooksService

    service = NotebooksService(
        security_headers={
            "Content-Security-Policy": "frame-ancestors 'self' https://portal.example.org",
            "Referrer-Policy": "",
        }
    )
    assert service.security_headers == {
        "Content-Security-Policy": "frame-ancestors 'self' https://portal.example.org",
        "X-Content-Type-Options": "nosniff",
    }
    assert NotebooksService().security_headers["Content-Security-Policy"] == "frame-ancestors 'self'"


def test_free_ports_are_never_handed_out_twice(monkeypatch):
    monkeypatch.delenv("NOTEBOOKS_PORT_REGISTRY", raising=False)
    from notebooks_service.demo.app import free_port

    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)


def test_durations_read_as_people_say_them():
    from notebooks_service.pages import in_words

    said = {0: "a second", 1: "a second", 3: "3 seconds", 59: "59 seconds", 60: "a minute", 70: "a minute"}
    said |= {90: "2 minutes", 660: "11 minutes", 3600: "an hour", 7200: "2 hours"}
    assert {seconds: in_words(seconds) for seconds in said} == said
