"""RevocableAuthorizer's three answers, without a Hub: what HubAuth raises when the Hub cannot say
(a 5xx, no connection) closes nothing; a definite "no" closes and refuses; access given back lets in.
(tests/test_revocation.py does the same through a real Hub and JupyterLab.)"""

import asyncio

import pytest
from jupyter_server.auth.identity import IdentityProvider
from tornado.web import HTTPError
from tornado.websocket import WebSocketHandler

from notebooks_service.singleuser.access import CLOSE_REVOKED, RevocableAuthorizer

ACCESS = {"access:servers!server=alice/alpha"}


class HubAuth:
    """What the authorizer uses of JupyterHub's HubOAuth, answering as the test says."""

    cache_max_age = 60
    access_scopes = ACCESS

    def __init__(self):
        self.answer: object = {"name": "bob", "scopes": sorted(ACCESS)}
        self.asked = 0

    def get_token(self, handler):
        return handler.token

    async def user_for_token(self, token, use_cache=True, sync=True):
        assert use_cache is False  # never the cached answer
        self.asked += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def check_scopes(self, required, model):
        return set(required) & set(model["scopes"])


class Connection(WebSocketHandler):
    """An open websocket, as far as the authorizer can tell (not served: no request)."""

    def __init__(self, token):  # noqa: D107 - no Application: nothing here is served
        self.token = token
        self.ws_connection = object()
        self.closed_with = None

    def close(self, code=None, reason=None):
        self.closed_with = (code, reason)
        self.ws_connection = None


class WithHubAuth(IdentityProvider):
    """JupyterHub's identity provider, as far as the authorizer reads it."""

    hub_auth = None


class User:
    username = "bob"


@pytest.fixture
def authorizer():
    hub_auth = HubAuth()
    made = RevocableAuthorizer(recheck_interval=3600, identity_provider=WithHubAuth())
    made.identity_provider.hub_auth = hub_auth
    yield made, hub_auth
    if made._rechecking:
        made._rechecking.cancel()


@pytest.mark.parametrize(
    "unknown", [HTTPError(502, "Failed to check authorization (upstream problem)"), HTTPError(500, "Failed to connect")]
)
async def test_a_hub_that_cannot_say_closes_nothing_and_a_definite_no_closes_and_refuses(authorizer, unknown):
    auth, hub_auth = authorizer
    terminal, kernel, owners = Connection("bob-token"), Connection("bob-token"), Connection("alice-token")
    for connection in (terminal, kernel, owners):
        assert auth.is_authorized(connection, User(), "execute", "terminals") is True

    hub_auth.answer = unknown
    for _ in range(3):  # several checks in a row
        await auth.recheck()
    assert (terminal.closed_with, kernel.closed_with, owners.closed_with) == (None, None, None)
    assert hub_auth.asked == 6  # each token asked once per check

    # bob's share is revoked: his token has no access scope any more; alice's has
    answers = {"bob-token": {"name": "bob", "scopes": ["read:users:name!user=bob"]}}
    hub_auth.user_for_token = lambda token, **kw: _answer(answers.get(token, {"name": "alice", "scopes": list(ACCESS)}))
    await auth.recheck()
    assert terminal.closed_with == kernel.closed_with == (CLOSE_REVOKED, "Your access to this server has ended.")
    assert owners.closed_with is None
    # refused from now on, for a new connection and any other call, cached answer or not
    assert auth.is_authorized(Connection("bob-token"), User(), "execute", "kernels") is False
    assert auth.is_authorized(Connection("alice-token"), User(), "execute", "kernels") is True

    # a token the Hub no longer knows at all (None: revoked, expired) is refused the same way
    gone = Connection("gone-token")
    auth.is_authorized(gone, User(), "execute", "terminals")
    answers["gone-token"] = None
    await auth.recheck()
    assert gone.closed_with[0] == CLOSE_REVOKED

    # shared again: let in at the next check, not after the refusal's hold
    answers["bob-token"] = {"name": "bob", "scopes": list(ACCESS)}
    await auth.recheck()
    assert auth.is_authorized(Connection("bob-token"), User(), "execute", "kernels") is True


async def _answer(model):
    await asyncio.sleep(0)
    return model


async def test_without_a_token_it_lets_in_as_jupyter_servers_own_authorizer(authorizer):
    auth, _ = authorizer
    assert auth.is_authorized(Connection(None), User(), "read", "contents") is True
    assert auth._rechecking is None  # nothing to check again
