# Added to the demo Hub configuration for the tests (loaded with load_subconfig).
import asyncio
import os
import sys

from notebooks_service.demo import select_local_image

c = get_config()  # noqa: F821
run_dir = os.environ["NOTEBOOKS_DEMO_RUN_DIR"]

# servers inside the Hub's process, up at once; real JupyterLab while <run_dir>/real-servers exists
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
c.JupyterHub.spawner_class = "hub_spawner.InProcessSpawner"

# an admin service, only for test set-up (creating users and their tokens)
c.JupyterHub.services.append({"name": "test-admin", "api_token": os.environ["NOTEBOOKS_TEST_ADMIN_TOKEN"]})
c.JupyterHub.load_roles.append(
    {
        "name": "test-admin",
        "scopes": ["admin:users", "admin:servers", "tokens", "admin:groups", "read:users", "read:metrics", "shares"],
        "services": ["test-admin"],
    }
)


async def as_the_test_asks(spawner):
    """While <run_dir>/spawn-delay exists, spawns wait that many seconds (a slow cluster);
    while <run_dir>/spawn-fail exists, they fail with its text (a broken image)."""
    delay, fail = os.path.join(run_dir, "spawn-delay"), os.path.join(run_dir, "spawn-fail")
    if os.path.exists(delay):
        with open(delay) as f:
            await asyncio.sleep(float(f.read()))
    if os.path.exists(fail):
        with open(fail) as f:
            raise RuntimeError(f.read())
    return select_local_image(spawner)


c.Spawner.pre_spawn_hook = as_the_test_asks


from jupyterhub.auth import DummyAuthenticator  # noqa: E402
from tornado import web  # noqa: E402


class RenewingAuthenticator(DummyAuthenticator):
    """While <run_dir>/refresh-fail exists, renewing a login fails as OAuthenticator 17.4's does with
    an expired ID token: a 500 whose text quotes the token (oauthenticator#793)."""

    async def refresh_user(self, user, handler=None, **kwargs):
        path = os.path.join(run_dir, "refresh-fail")
        if os.path.exists(path):
            with open(path) as f:
                raise web.HTTPError(500, f"Unable to decode id token: {f.read()}: Signature has expired")
        return True


c.JupyterHub.authenticator_class = RenewingAuthenticator
c.Authenticator.refresh_pre_spawn = True  # as OAuthenticator deployments set it: a start renews the login first

# the real servers ask the Hub again about open connections as often as the test reconciler checks
# members (3 s): a test sees a revoked recipient's terminal close (tests/test_revocation.py)
c.Spawner.environment.update({"NOTEBOOKS_ACCESS_RECHECK_SECONDS": "3"})

# the test Hubs' service and reconciler run the static policy (changing_members.py) with groups the
# service keeps (the demo's hub-groups policy needs none): the roles the scope table says that needs
from notebooks_service.demo import RECONCILER_NAME, SERVICE_NAME  # noqa: E402
from notebooks_service.scopes import Settings, roles  # noqa: E402

for _role in roles(Settings(policy="static", quotas=True, kept_groups=True), SERVICE_NAME, RECONCILER_NAME, "tests"):
    c.JupyterHub.load_roles.append(_role)
