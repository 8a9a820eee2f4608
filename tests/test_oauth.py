"""The OAuth state any replica can complete: signed, expiring, and with no secret in it."""

import base64
import hashlib
import json
import time

import pytest

from notebooks_service.oauth import SharedStateHubOAuth

pytestmark = pytest.mark.hub_version  # HubOAuth's state API

SECRET = b"the replicas' shared cookie secret"


def auth(secret: bytes = SECRET) -> SharedStateHubOAuth:
    return SharedStateHubOAuth(state_secret=secret, api_token="unused", api_url="http://127.0.0.1:9/hub/api")


def payload_of(state: str) -> dict:
    encoded = state.rsplit(".", 1)[0]
    return json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))


def test_a_state_made_by_one_replica_is_read_by_another():
    verifier, challenge, method = auth().generate_pkce_code_challenge()
    state = auth().generate_state("/services/notebooks/alpha/python", code_verifier=verifier, cookie_name="c-xyz")
    other = auth()  # another process, the same secret
    assert other.get_next_url(state) == "/services/notebooks/alpha/python"
    assert other.get_state_cookie_name(state) == "c-xyz"
    assert other._decode_state(state)["code_verifier"] == verifier
    # RFC 7636: S256 of the verifier, in its alphabet and length
    assert method == "S256" and 43 <= len(verifier) <= 128
    assert set(verifier) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    assert challenge == base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    assert auth().generate_state("/x") != auth().generate_state("/x")  # each login its own


def test_the_state_holds_no_secret():
    verifier, _, _ = auth().generate_pkce_code_challenge()
    state = auth().generate_state("/next", code_verifier=verifier)
    assert verifier not in state and verifier.split(".")[1] not in state
    assert set(payload_of(state)) == {"next_url", "issued", "nonce", "pkce_seed"}


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s[:-2] + ("AA" if not s.endswith("AA") else "BB"),  # another signature
        lambda s: base64.urlsafe_b64encode(b'{"next_url":"https://evil.example"}').decode() + "." + s.rsplit(".")[-1],
        lambda s: "",
        lambda s: "no-dot-at-all",
        lambda s: "." * 5000,
        lambda s: "%%%." + s.rsplit(".")[-1],
    ],
)
def test_a_forged_or_foreign_state_counts_as_none(change):
    state = auth().generate_state("/next")
    assert auth()._decode_state(change(state)) == {}
    assert auth().get_next_url(change(state)) == auth().base_url  # HubOAuth's default
    assert auth(b"another deployment")._decode_state(state) == {}


def test_a_state_expires_like_huboauths(monkeypatch):
    state = auth().generate_state("/next")
    reader = auth()
    monkeypatch.setattr(time, "time", lambda: payload_of(state)["issued"] + reader.oauth_state_max_age + 1)
    assert reader._decode_state(state) == {}


def test_a_verifier_it_did_not_make_is_refused_rather_than_sent_in_clear():
    with pytest.raises(ValueError, match="not made by generate_pkce_code_challenge"):
        auth().generate_state("/next", code_verifier="a-random-verifier-someone-else-made-0123456789")


def user_with(*scopes: str, name: str = "alice") -> dict:
    return {"name": name, "kind": "user", "scopes": list(scopes)}


#: what a user's expanded scopes look like to HubAuth: their own, filtered by their name
OWN = ("read:users!user={0}", "servers!user={0}", "users:activity!user={0}", "read:tokens!user={0}")


@pytest.mark.parametrize(
    "required",
    [
        {"access:services!service=notebooks"},
        "access:services!service=notebooks",
        {"access:services!service=notebooks", "access:services"},
        {"read:metrics"},
        {"access:servers!server=alice/alpha-python", "access:services!service=notebooks"},
    ],
)
@pytest.mark.parametrize(
    "held",
    [
        (),
        ("access:services",),
        ("access:services!service=notebooks",),
        ("access:services!service=other",),
        ("access:services!service=other", "access:services!service=notebooks"),
        ("read:metrics",),
        ("access:servers!user=alice",),
        ("access:servers!group=alpha", "access:services!service=other"),
        ("admin:users", "read:users", "access:servers!server=alice/alpha-python"),
    ],
)
@pytest.mark.filterwarnings("ignore:.*combinations of filters present:UserWarning")  # JupyterHub's, both ways
def test_the_scope_check_answers_as_hubauths(required, held):
    from jupyterhub.services.auth import HubAuth

    user = user_with(*held, *[scope.format("alice") for scope in OWN])
    assert auth().check_scopes(required, user) == HubAuth.check_scopes(auth(), required, user)


def test_the_scope_check_is_memoised_once_for_every_user(monkeypatch):
    """JupyterHub memoises an intersection by the scope sets it is given: the same set for every
    user with the same access, not one (of about 10 KB) per user."""
    import jupyterhub.services.auth as hub_auth

    seen = []
    original = hub_auth._intersect_expanded_scopes

    def spy(required, held, db=None):
        seen.append(frozenset(held))
        return original(required, held, db)

    monkeypatch.setattr(hub_auth, "_intersect_expanded_scopes", spy)
    required = {"access:services!service=notebooks"}
    for name in ("alice", "bob", "carol"):
        user = user_with("access:services!service=notebooks", *[s.format(name) for s in OWN], name=name)
        assert auth().check_scopes(required, user) == required
    assert seen == [frozenset({"access:services!service=notebooks"})] * 3
