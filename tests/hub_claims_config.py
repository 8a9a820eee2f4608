# The test Hub, with the claims policy: auth_state on, and the roles that reading it needs.
import os

from notebooks_service.demo import (  # noqa: E402
    CULLER_SCOPES,
    RECONCILER_NAME,
    RECONCILER_SCOPES,
    SERVICE_NAME,
    SERVICE_SCOPES,
    USER_SCOPES,
)

c = get_config()  # noqa: F821
c.Authenticator.enable_auth_state = True  # needs $JUPYTERHUB_CRYPT_KEY
ACCESS = [s for s in USER_SCOPES if s.startswith("access:services")]
c.JupyterHub.load_roles = [
    # auth_state for the claims policy; tokens to ask the Hub whether a JWT caller holds the access scope
    {
        "name": "notebooks-service",
        "scopes": [*SERVICE_SCOPES, "admin:auth_state", "tokens"],
        "services": [SERVICE_NAME],
    },
    {"name": "test-auth-state", "scopes": ["admin:auth_state"], "services": ["test-admin"]},
    # the service is for alice, bob, dave and erin, not for every Hub user: carol may log in to the Hub but not use it
    {"name": "user", "scopes": [s for s in USER_SCOPES if s not in ACCESS]},
    {"name": "notebooks-users", "scopes": ACCESS, "users": ["alice", "bob", "dave", "erin"]},
    {"name": "jupyterhub-idle-culler", "scopes": CULLER_SCOPES, "services": ["jupyterhub-idle-culler"]},
    # the reconciler reads the same claims, in the users' auth_state
    {"name": RECONCILER_NAME, "scopes": [*RECONCILER_SCOPES, "admin:auth_state"], "services": [RECONCILER_NAME]},
]
# after the list above: its roles are appended to it
load_subconfig(os.path.join(os.path.dirname(__file__), "hub_test_config.py"))  # noqa: F821

# An authenticator that renews the provider's tokens like OAuthenticator: refresh_user with the
# refresh token at the provider's token endpoint; a refused refresh means "log in again".
import json  # noqa: E402
import urllib.parse  # noqa: E402

from jupyterhub.auth import DummyAuthenticator  # noqa: E402
from tornado.httpclient import AsyncHTTPClient  # noqa: E402


class RefreshingAuthenticator(DummyAuthenticator):
    async def refresh_user(self, user, handler=None):
        state = await user.get_auth_state()
        if not state or not state.get("refresh_token"):
            return True  # nothing to renew with
        response = await AsyncHTTPClient().fetch(
            os.environ["NOTEBOOKS_TEST_IDP_TOKEN_URL"],
            method="POST",
            body=urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": state["refresh_token"]}),
            raise_error=False,
        )
        if response.code != 200:
            return False
        return {"name": user.name, "auth_state": {**state, "access_token": json.loads(response.body)["access_token"]}}


c.JupyterHub.authenticator_class = RefreshingAuthenticator
c.Authenticator.allowed_users = {"alice", "bob", "carol", "dave", "erin"}
c.Authenticator.auth_refresh_age = 1  # renew at most once a second (Keycloak's tokens last 5 minutes)
