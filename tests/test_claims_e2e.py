"""End to end with the claims policy: a real Hub with auth_state, a local identity provider's JWKS.

Only the workspaces in a validly signed token can be started, through the
service (Hub token, cookie or the provider's own JWT) or around it.
"""

import json
import secrets
import time

import jwt
import pytest

from notebooks_service.demo.ports import free_port

from conftest import (
    ServiceClient,
    Tokens,
    admin_request,
    running_hub,
    start_around_the_service,
    start_body,
    stop_all_servers,
    wait_for,
)
from identity_provider import AUDIENCE, ISSUER, tampered, unsigned
from reconciler_metrics import member_checks

pytestmark = pytest.mark.hub_version  # the second pass of `make test` runs it on z2jh 4.4.0's Hub too


@pytest.fixture(scope="module")
def claims_hub(tmp_path_factory, idp):
    run_dir = tmp_path_factory.mktemp("claims-hub")
    reconciler_metrics_port = free_port()
    service_config = run_dir / "notebooks_service_config.py"
    service_config.write_text(
        "from notebooks_service.demo import IMAGES, RESOURCE_CLASSES\n"
        "c = get_config()\n"
        "c.NotebooksService.images = IMAGES\n"
        "c.NotebooksService.resource_classes = RESOURCE_CLASSES\n"
        "c.NotebooksService.workspace_policy_class = 'claims'\n"
        f"c.IdentityProvider.jwks_url = {idp.jwks_url!r}\n"
        f"c.IdentityProvider.issuer = {ISSUER!r}\n"
        "c.IdentityProvider.accept_bearer_jwt = True\n"
        f"c.IdentityProvider.audience = {AUDIENCE!r}\n"
        "c.IdentityProvider.token_type = 'Bearer'\n"
        "c.IdentityProvider.jwks_refetch_cooldown = 0\n"
        # these tests replace auth_state between two requests: the 1 s cache would show the old one
        "c.HubClient.user_cache_seconds = 0\n"
        # the reconciler checks often, and counts where a test reads it
        "c.Reconciler.membership_check_interval = 1\n"
        f"c.Reconciler.metrics_port = {reconciler_metrics_port}\n"
    )
    with running_hub(
        run_dir,
        extra_config="hub_claims_config.py",
        service_config=str(service_config),
        env={"JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32), "NOTEBOOKS_TEST_IDP_TOKEN_URL": idp.token_url},
    ) as hub:
        hub.reconciler_metrics = f"http://127.0.0.1:{reconciler_metrics_port}/metrics"
        yield hub


@pytest.fixture(scope="module")
def claims_tokens(claims_hub):
    return Tokens(claims_hub)


@pytest.fixture
def as_user(claims_hub, claims_tokens):
    """``as_user("alice")`` with alice's Hub token; ``as_user(None, jwt=...)`` with a provider JWT."""
    made = []

    def make(user, jwt=None):
        c = ServiceClient(claims_hub, claims_tokens[user] if user else None)
        if jwt:
            c.extra_headers = {"Authorization": f"Bearer {jwt}"}
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
    for user in ("alice", "bob", "dave"):
        stop_all_servers(claims_hub, user)


def new_user(hub, user: str) -> str:
    """A user (of Authenticator.allowed_users) no other test uses, whose login the Hub has not
    renewed yet: its first renewal is not held back by Authenticator.auth_refresh_age (the Hub
    renews a user's login at most that often)."""
    status, model = admin_request(hub, "GET", f"/users/{user}")
    assert status == 200 and model["auth_state"] is None, model
    return user


def give_token(hub, user: str, token: str, refresh_token: str | None = None) -> None:
    """What the authenticator would store at login: the provider's tokens in auth_state."""
    state = {"access_token": token, **({"refresh_token": refresh_token} if refresh_token else {})}
    status, body = admin_request(hub, "PATCH", f"/users/{user}", {"auth_state": state})
    assert status == 200, body


async def test_through_the_service_only_the_tokens_workspaces_start(claims_hub, idp, as_user):
    give_token(claims_hub, "alice", idp.token(workspaces=["beta"]))
    alice = as_user("alice")
    code, _ = await alice.json("POST", "beta/minimal")
    assert code in (201, 202)
    code, body = await alice.json("POST", "alpha/minimal")  # the demo's static map would allow alpha
    assert code == 403 and "not a member of workspace 'alpha'" in body["message"]


async def test_around_the_service_only_the_tokens_workspaces_start(claims_hub, claims_tokens, idp, as_user):
    give_token(claims_hub, "alice", idp.token(workspaces=["beta"]))
    token = claims_tokens["alice"]
    message = await start_around_the_service(
        claims_hub, token, "alice", "alpha-minimal", {"workspace": "alpha", "image": "minimal"}
    )
    assert "not a member of workspace 'alpha'" in message
    # the same path with a workspace the token lists is let through by the Hub
    response = await as_user("alice").request(
        "POST",
        f"{claims_hub.url}/hub/api/users/alice/servers/beta-minimal",
        body=json.dumps(start_body(claims_hub, {"workspace": "beta", "image": "minimal"})),
    )
    assert response.code in (201, 202)
    assert (await as_user("alice").wait_ready("beta/minimal"))["workspace"] == "beta"


async def test_bearer_jwt_client_uses_the_tokens_workspaces(claims_hub, idp, as_user):
    # the username claim is normalised as the Hub's authenticator does (lowercase)
    bob = as_user(None, jwt=idp.token(preferred_username="Bob", workspaces=["alpha"]))
    code, model = await bob.json("GET", "user")
    assert code == 200 and model["name"] == "bob" and "auth_state" not in model
    code, _ = await bob.json("POST", "alpha/minimal")
    assert code in (201, 202)
    assert (await bob.wait_ready("alpha/minimal"))["url"].startswith("/user/bob/")
    code, body = await bob.json("POST", "beta/minimal")
    assert code == 403


@pytest.mark.parametrize(
    "make_token, status, says",
    [
        (
            lambda idp: tampered(idp.token(preferred_username="bob", workspaces=["alpha"]), preferred_username="alice"),
            401,
            "signature",
        ),
        (lambda idp: unsigned(idp.token(preferred_username="bob")), 401, "'none' are not accepted"),
        (lambda idp: idp.token(preferred_username="bob", expires_in=-600), 401, "expired"),
        (lambda idp: idp.token(preferred_username="bob", iss="https://elsewhere.test"), 403, "not issued by"),
        (lambda idp: idp.token(preferred_username="mallory"), 403, "not a user of this Hub"),
        (lambda idp: idp.token(preferred_username="bob", aud="some-other-app"), 403, "not meant for"),
        (lambda idp: idp.token(preferred_username="bob", typ="ID"), 403, "not an access token"),
    ],
    ids=["tampered", "alg-none", "expired", "wrong-issuer", "unknown-user", "foreign-audience", "id-token"],
)
async def test_bad_bearer_jwts_are_refused_with_a_reason(claims_hub, idp, as_user, make_token, status, says):
    client = as_user(None, jwt=make_token(idp))
    for method, path in [("GET", ""), ("POST", "alpha/minimal")]:
        code, body = await client.json(method, path)
        assert code == status, body
        assert body["status"] == status and says in body["message"]
    _, model = admin_request(claims_hub, "GET", "/users/bob")
    assert model["servers"] == {}


async def test_jwt_callers_need_the_same_access_scope_as_hub_token_callers(claims_hub, claims_tokens, idp, as_user):
    # carol is a Hub user, but no role gives her access:services!service=notebooks
    status, _ = admin_request(claims_hub, "POST", "/users/carol")
    assert status in (201, 409)
    give_token(claims_hub, "carol", idp.token(preferred_username="carol", workspaces=["alpha"]))
    refusals = []
    for client in (as_user("carol"), as_user(None, jwt=idp.token(preferred_username="carol", workspaces=["alpha"]))):
        code, body = await client.json("POST", "alpha/minimal")
        refusals.append((code, body["message"]))
    assert refusals == [(403, "carol may not use the notebooks service.")] * 2
    _, model = admin_request(claims_hub, "GET", "/users/carol")
    assert model["servers"] == {}
    # bob holds it: his JWT is let in, and the Hub's answer leaves no token behind
    code, body = await as_user(None, jwt=idp.token(preferred_username="bob", workspaces=["alpha"])).json("GET", "")
    assert code == 200, body
    _, tokens = admin_request(claims_hub, "GET", "/users/bob/tokens")
    assert not [t for t in tokens["api_tokens"] if "access check" in (t.get("note") or "")]


async def test_expired_login_token_asks_to_log_in_again(claims_hub, idp, as_user):
    give_token(claims_hub, "alice", idp.token(workspaces=["beta"], expires_in=-600))
    code, body = await as_user("alice").json("POST", "beta/minimal")
    assert code == 401 and "log in again" in body["message"]


async def test_an_expired_login_token_is_renewed_through_the_hub(claims_hub, idp, as_user):
    # Keycloak's access tokens last 5 minutes: the Hub keeps a refresh token and renews them
    dave = new_user(claims_hub, "dave")
    renewable = idp.refresh_token(preferred_username=dave, workspaces=["alpha"])
    give_token(claims_hub, dave, idp.token(preferred_username=dave, workspaces=["alpha"], expires_in=-600), renewable)
    code, body = await as_user(dave).json("POST", "alpha/minimal")
    assert code in (201, 202), body
    _, model = admin_request(claims_hub, "GET", f"/users/{dave}")
    stored = model["auth_state"]["access_token"]
    assert jwt.decode(stored, options={"verify_signature": False})["exp"] > time.time()  # the Hub keeps the new one


async def test_a_login_whose_refresh_is_refused_asks_to_log_in_again(claims_hub, idp, as_user):
    erin = new_user(claims_hub, "erin")
    revoked = "refresh-token-the-provider-no-longer-knows"
    give_token(claims_hub, erin, idp.token(preferred_username=erin, workspaces=["alpha"], expires_in=-600), revoked)
    code, body = await as_user(erin).json("POST", "alpha/minimal")
    # JupyterHub 6 renews when the service asks it to, and the service says so; 5.5 renews at the
    # first lookup of erin's token already, and then refuses the token itself: both ask for a login
    assert code == 401, body
    assert body["message"] in (
        "Your login has expired and could not be renewed: log in again.",
        "Authentication required: log in through the Hub or send a Hub API token.",
    )
    assert revoked in idp.refused_refresh_tokens  # the Hub did ask the provider, which refused


async def test_rotated_keys_are_fetched(claims_hub, idp, as_user):
    new_kid = idp.add_key("ES256")
    give_token(claims_hub, "alice", idp.token(new_kid, workspaces=["beta"]))
    code, _ = await as_user("alice").json("POST", "beta/minimal")
    assert code in (201, 202)


async def test_without_kubernetes_the_model_says_it_is_the_hubs_view(claims_hub, idp, as_user):
    give_token(claims_hub, "alice", idp.token(workspaces=["beta"]))
    alice = as_user("alice")
    await alice.json("POST", "beta/minimal")
    code, model = await alice.json("GET", "beta/minimal")
    assert code == 200
    assert model["status"]["kubernetes"] == "off" and "Hub's view only" in model["status"]["message"]


async def test_the_reconciler_reads_each_owners_claims_and_stops_only_a_leavers_server(claims_hub, idp, as_user):
    """The Hub's lists never hold auth_state: the reconciler reads each owner's own model for their
    claims. A member's server runs on, check after check; once the token no longer lists the
    workspace, it is stopped."""
    give_token(claims_hub, "alice", idp.token(workspaces=["beta"]))
    alice = as_user("alice")
    assert (await alice.json("POST", "beta/minimal"))[0] in (201, 202)
    await alice.wait_ready("beta/minimal")
    before = member_checks(claims_hub)
    wait_for(lambda: member_checks(claims_hub) >= before + 3, timeout=30, message="three checks of her membership")
    assert (await alice.json("GET", "beta/minimal"))[1]["ready"] is True  # still running
    give_token(claims_hub, "alice", idp.token(workspaces=["alpha"]))  # she has left beta
    wait_for(
        lambda: "beta-minimal" not in admin_request(claims_hub, "GET", "/users/alice")[1]["servers"],
        timeout=30,
        message="her beta server to stop",
    )
