"""The identity provider's tokens and the claims workspace policy, against a local provider's JWKS over real HTTP."""

import base64
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from traitlets.config import Config

from notebooks_service.config import SharedConfig
from notebooks_service.errors import NotAMember, ServiceError, Unauthorized
from notebooks_service.idp import IdentityProvider
from notebooks_service.workspaces import ClaimsWorkspacePolicy, workspaces_in

from identity_provider import ISSUER, tampered, unsigned


def claims_policy(**settings) -> ClaimsWorkspacePolicy:
    return ClaimsWorkspacePolicy(identity_provider=IdentityProvider(**settings))


@pytest.fixture
def policy(idp):
    return claims_policy(jwks_url=idp.jwks_url, issuer=ISSUER, jwks_refetch_cooldown=0)


def user_with(token):
    return {"name": "alice", "auth_state": {"access_token": token}}


async def test_workspaces_come_from_a_valid_token_in_auth_state(idp, policy):
    token = idp.token(workspaces=["alpha", "beta"])
    assert await policy.workspaces(user_with(token)) == {"alpha", "beta"}
    await policy.check_member(user_with(token), "alpha")
    with pytest.raises(NotAMember):
        await policy.check_member(user_with(token), "gamma")


async def test_ec_keys_work_too(idp, policy):
    ec_kid = next(kid for kid in idp.published if idp.keys[kid][0] == "ES256")
    assert await policy.workspaces(user_with(idp.token(ec_kid, workspaces=["alpha"]))) == {"alpha"}


async def test_a_presented_token_wins_over_auth_state(idp, policy):
    user = {**user_with(idp.token(workspaces=["alpha"])), "access_token": idp.token(workspaces=["beta"])}
    assert await policy.workspaces(user) == {"beta"}


@pytest.mark.parametrize(
    "make_token, error, says",
    [
        (
            lambda idp: tampered(idp.token(workspaces=["alpha"]), workspaces=["alpha", "secret"]),
            Unauthorized,
            "signature does not verify",
        ),
        (lambda idp: unsigned(idp.token(workspaces=["alpha"])), Unauthorized, "'none' are not accepted"),
        (lambda idp: idp.token(workspaces=["alpha"], expires_in=-3600), Unauthorized, "expired"),
        (lambda idp: idp.token(workspaces=["alpha"], iss="https://evil.test"), NotAMember, "not issued by"),
        (lambda idp: "not-a-jwt", Unauthorized, "malformed"),
        (
            lambda idp: idp.token(idp.add_key("RS256", publish=False), workspaces=["alpha"]),
            Unauthorized,
            "does not publish",
        ),
    ],
    ids=["tampered", "alg-none", "expired", "wrong-issuer", "garbage", "unknown-key"],
)
async def test_bad_tokens_are_refused_with_a_reason(idp, policy, make_token, error, says):
    with pytest.raises(error) as e:
        await policy.workspaces(user_with(make_token(idp)))
    assert says in e.value.message
    assert e.value.status_code in (401, 403)


async def test_hmac_token_keyed_with_the_public_key_is_refused(idp, policy):
    """The algorithm-confusion attack: HS256 signed with the provider's published RSA key."""
    kid = idp.published[0]
    public_pem = idp.keys[kid][1].public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = b64(json.dumps({"iss": ISSUER, "exp": 9999999999, "workspaces": ["beta"]}).encode())
    signature = b64(hmac.new(public_pem, header + b"." + payload, hashlib.sha256).digest())
    forged = b".".join([header, payload, signature]).decode()
    with pytest.raises(Unauthorized, match="'HS256' are not accepted"):
        await policy.workspaces(user_with(forged))


async def test_audience_is_checked_when_configured(idp):
    policy = claims_policy(jwks_url=idp.jwks_url, issuer=ISSUER, audience="notebooks")
    assert await policy.workspaces(user_with(idp.token(aud="notebooks", workspaces=["alpha"]))) == {"alpha"}
    with pytest.raises(NotAMember, match="not meant for notebooks"):
        await policy.workspaces(user_with(idp.token(aud="other", workspaces=["alpha"])))


async def test_key_rotation_refetches_the_jwks_once_for_an_unknown_kid(idp, policy):
    await policy.workspaces(user_with(idp.token(workspaces=["alpha"])))
    fetched = idp.jwks_requests
    await policy.workspaces(user_with(idp.token(workspaces=["alpha"])))
    assert idp.jwks_requests == fetched  # keys are cached
    new_kid = idp.add_key("RS256")  # the provider rotates
    assert await policy.workspaces(user_with(idp.token(new_kid, workspaces=["beta"]))) == {"beta"}
    assert idp.jwks_requests == fetched + 1


async def test_no_token_is_a_clear_403(policy):
    with pytest.raises(NotAMember, match="No access token"):
        await policy.workspaces({"name": "alice", "auth_state": None})


async def test_unreachable_jwks_is_503(idp):
    policy = claims_policy(jwks_url="http://127.0.0.1:1/certs", issuer=ISSUER, jwks_timeout=2)
    with pytest.raises(ServiceError) as e:
        await policy.workspaces(user_with(idp.token(workspaces=["alpha"])))
    assert e.value.status_code == 503


def test_claim_paths():
    claims = {"workspaces": ["a", 3, "b"], "realm": {"ws": {"x": {}, "y": {}}}, "one": "solo"}
    assert workspaces_in(claims, "workspaces") == {"a", "b"}
    assert workspaces_in(claims, "realm.ws") == {"x", "y"}
    assert workspaces_in(claims, "one") == {"solo"}
    assert workspaces_in(claims, "missing.path") == set()


def test_symmetric_or_none_algorithms_cannot_be_configured():
    with pytest.raises(Exception, match="only public-key"):
        IdentityProvider(algorithms=["RS256", "HS256"])


def test_missing_jwks_url_fails_at_start_up():
    with pytest.raises(ValueError, match="jwks_url and issuer"):
        claims_policy().check_config()


def test_accepting_bearer_jwts_without_an_audience_is_a_start_up_error(idp):
    # whatever the workspace policy: it is the login that would trust any client's token
    shared = SharedConfig(config=Config({"IdentityProvider": {"jwks_url": idp.jwks_url, "issuer": ISSUER}}))
    shared.identity_provider.accept_bearer_jwt = True
    with pytest.raises(ValueError, match="accept_bearer_jwt needs IdentityProvider.audience"):
        shared.make_policy()


@pytest.mark.parametrize(
    "settings, claims, says",
    [
        ({"audience": "notebooks"}, {"aud": "some-other-app"}, "not meant for notebooks"),
        ({"token_type": "Bearer"}, {"typ": "ID"}, "not an access token"),
        ({"authorized_parties": ["jupyterhub", "portal"]}, {"azp": "someone-else"}, "issued to 'someone-else'"),
    ],
    ids=["audience", "type", "authorized-party"],
)
async def test_tokens_meant_for_something_else_are_refused(idp, settings, claims, says):
    policy = claims_policy(jwks_url=idp.jwks_url, issuer=ISSUER, jwks_refetch_cooldown=0, **settings)
    assert await policy.workspaces(user_with(idp.token(workspaces=["alpha"]))) == {"alpha"}  # as issued: fine
    with pytest.raises(NotAMember, match=says):
        await policy.workspaces(user_with(idp.token(workspaces=["alpha"], **claims)))


@pytest.mark.parametrize("token_type", ["Bearer", "at+jwt"])
async def test_rfc_9068_access_tokens_pass_as_keycloaks_do(idp, token_type):
    policy = claims_policy(
        jwks_url=idp.jwks_url, issuer=ISSUER, token_type=token_type, authorized_parties=["jupyterhub"]
    )
    assert await policy.workspaces(user_with(idp.token(workspaces=["alpha"]))) == {"alpha"}  # Keycloak's shape
    assert await policy.workspaces(user_with(idp.rfc9068_token(workspaces=["alpha"]))) == {"alpha"}
    # the same checks still refuse: another client, an ID token (no access-token type in header or claims)
    with pytest.raises(NotAMember, match="issued to 'elsewhere'"):
        await policy.workspaces(user_with(idp.rfc9068_token(workspaces=["alpha"], client_id="elsewhere")))
    with pytest.raises(NotAMember, match="not an access token"):
        await policy.workspaces(user_with(idp.token(workspaces=["alpha"], header={"typ": "JWT"}, typ="ID")))
    with pytest.raises(NotAMember, match="not an access token"):
        await policy.workspaces(user_with(idp.token(workspaces=["alpha"], typ=None)))


def test_usernames_are_normalised_like_the_hubs_authenticator():
    provider = IdentityProvider()
    assert provider.username({"preferred_username": " Alice "}) == "alice"
    provider.lowercase_usernames = False
    assert provider.username({"preferred_username": "Alice"}) == "Alice"
    provider.username_claim = "email"
    with pytest.raises(Unauthorized, match="no 'email' claim"):
        provider.username({"preferred_username": "alice"})


def test_the_policy_and_the_login_share_one_provider_configured_in_its_own_section(idp):
    config = Config({"IdentityProvider": {"jwks_url": idp.jwks_url, "issuer": ISSUER, "audience": "notebooks"}})
    shared = SharedConfig(config=config, workspace_policy_class="claims")
    policy = shared.make_policy()
    assert policy.identity_provider is shared.identity_provider
    assert policy.identity_provider.audience == "notebooks"
