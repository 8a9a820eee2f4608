"""One table of the Hub scopes (notebooks_service/scopes.py): the demo's roles, the chart's NOTES and
the docs' lists agree with it, for every configuration the chart is tried with; and at start-up the
service says which ones its token lacks."""

import os
import re

import pytest
import yaml

from notebooks_service import scopes
from notebooks_service.demo import RECONCILER_SCOPES, SERVICE_SCOPES
from notebooks_service.demo.ports import free_port
from notebooks_service.scopes import RECONCILER, SERVICE, Settings

from chart_render import render
from conftest import wait_for
from service_processes import start_service

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VALUE_FILES = [os.path.join(ROOT, "helm-chart", "examples", "notebooks-service-values.yaml")] + [
    os.path.join(ROOT, "helm-chart", "ci", name) for name in sorted(os.listdir(os.path.join(ROOT, "helm-chart", "ci")))
]


def chart_settings(values_file: str | None) -> Settings:
    config = {}
    if values_file:
        with open(values_file) as f:
            config = (yaml.safe_load(f) or {}).get("config") or {}
    traitlets = config.get("traitlets") or {}
    policy = config.get("workspacePolicy", "static")
    return Settings(
        policy=policy,
        quotas=bool(config.get("workspaceQuotas") or config.get("userQuota")),
        kept_groups=policy != "hub-groups" and bool((traitlets.get("Sharing") or {}).get("manage_workspace_groups")),
        bearer_jwt=bool((traitlets.get("IdentityProvider") or {}).get("accept_bearer_jwt")),
    )


@pytest.mark.parametrize("values_file", [None, *VALUE_FILES], ids=lambda v: os.path.basename(v) if v else "default")
def test_the_charts_roles_are_the_tables(values_file):
    _, notes = render(values_file)
    roles = yaml.safe_load(notes.split("\n\n")[1])["hub"]["loadRoles"]
    settings = chart_settings(values_file)
    assert roles["notebooks-service"]["scopes"] == scopes.scopes(SERVICE, settings)
    assert roles["notebooks-reconciler"]["scopes"] == scopes.scopes(RECONCILER, settings)


def test_the_demos_roles_are_the_tables():
    demo = Settings(policy="hub-groups", quotas=True)  # the demo's configuration (notebooks_service_config.py)
    assert SERVICE_SCOPES == scopes.scopes(SERVICE, demo)
    assert RECONCILER_SCOPES == scopes.scopes(RECONCILER, demo)


def test_the_docs_role_is_the_tables_for_the_plain_configuration():
    with open(os.path.join(ROOT, "docs", "deploying.rst")) as f:
        text = f.read()
    listed = re.search(r'"name": "notebooks-service",\s*"scopes": \[(.*?)\]', text, re.S).group(1)
    listed = re.sub(r"#.*", "", listed)  # the comments say what each is for
    assert re.findall(r'"([^"]+)"', listed) == scopes.scopes(SERVICE, Settings())


def test_what_a_token_lacks_is_named_with_what_fails():
    settings = Settings(policy="claims", quotas=True)
    held = ["read:users", "read:users:name", "servers", "read:servers", "shares", "servers!user=alice"]
    assert [n.scope for n in scopes.missing(SERVICE, settings, held)] == [
        "users:activity",
        "list:users",
        "admin:auth_state",
    ]
    assert scopes.missing(SERVICE, Settings(), ["read:users", "servers", "users:activity", "shares"]) == []


def test_at_start_up_the_service_names_the_scopes_its_token_lacks(hub, tokens, tmp_path):
    # the session's service holds every one its configuration needs
    def hub_log() -> str:
        with open(hub.log_path, errors="replace") as f:
            return f.read()

    wait_for(
        lambda: "holds every scope its configuration needs" in hub_log(),
        timeout=30,
        message="the session's service to say its token holds every scope",
    )
    # a service run with a user's token (its own servers only, no list:users, no shares of others')
    port = free_port()
    process = start_service(
        port,
        tmp_path / "service.log",
        "--config",
        os.path.join(ROOT, "notebooks_service", "demo", "notebooks_service_config.py"),
        JUPYTERHUB_API_TOKEN=tokens["alice"],
        JUPYTERHUB_API_URL=f"{hub.url}/hub/api",
        JUPYTERHUB_CLIENT_ID="service-notebooks",
        JUPYTERHUB_OAUTH_CALLBACK_URL="/services/notebooks/oauth_callback",
    )
    try:
        lacking = lambda: re.findall(r"lacks the scope '([^']+)'", (tmp_path / "service.log").read_text())  # noqa: E731
        wait_for(lambda: len(lacking()) >= 5, timeout=30, message="the service to name what its token lacks")
        assert lacking() == ["read:users", "servers", "users:activity", "shares", "read:groups:name", "list:users"]
        assert "(start and stop users' named servers)" in (tmp_path / "service.log").read_text()
    finally:
        process.terminate()
        process.wait(30)
