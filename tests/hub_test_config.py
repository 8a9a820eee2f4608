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
        "scopes": ["admin:users", "admin:servers", "tokens", "admin:groups", "read:users", "read:metrics"],
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
