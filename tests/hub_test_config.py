# Added to the demo Hub configuration for the tests (loaded with load_subconfig).
import asyncio
import os

from notebooks_service.demo import select_local_image

c = get_config()  # noqa: F821
run_dir = os.environ["NOTEBOOKS_DEMO_RUN_DIR"]

# an admin service, only for test set-up (creating users and their tokens)
c.JupyterHub.services.append({"name": "test-admin", "api_token": os.environ["NOTEBOOKS_TEST_ADMIN_TOKEN"]})
c.JupyterHub.load_roles.append(
    {
        "name": "test-admin",
        "scopes": ["admin:users", "admin:servers", "tokens", "admin:groups", "read:users"],
        "services": ["test-admin"],
    }
)


async def slow_when_asked(spawner):
    """While <run_dir>/spawn-delay exists, spawns wait that many seconds (a slow cluster)."""
    path = os.path.join(run_dir, "spawn-delay")
    if os.path.exists(path):
        with open(path) as f:
            await asyncio.sleep(float(f.read()))
    return select_local_image(spawner)


c.Spawner.pre_spawn_hook = slow_when_asked
