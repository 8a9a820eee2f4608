# Added to the demo Hub configuration for `make bench` (loaded with load_subconfig).
# Servers are tiny HTTP servers inside the Hub process, so that 200 of them fit on a laptop;
# <run_dir>/spawn-delay holds how long a start takes (a slow cluster).
import asyncio
import os
import socket
import sys

from jupyterhub.spawner import Spawner
from tornado import web

from notebooks_service.demo import RECONCILER_NAME, SERVICE_NAME
from notebooks_service.scopes import Settings, roles

c = get_config()  # noqa: F821
run_dir = os.environ["NOTEBOOKS_DEMO_RUN_DIR"]
USERS = [f"u{i:02d}" for i in range(int(os.environ["NOTEBOOKS_BENCH_USERS"]))]  # bench_hub.user_names

c.Authenticator.allowed_users = set(USERS)
c.JupyterHub.services.append({"name": "bench-admin", "api_token": os.environ["NOTEBOOKS_BENCH_ADMIN_TOKEN"]})
c.JupyterHub.load_roles.append(
    {
        "name": "bench-admin",
        "scopes": ["admin:users", "admin:servers", "tokens", "shares", "admin:groups"],
        "services": ["bench-admin"],
    }
)
# the floor: a bare Tornado handler behind the same proxy (benchmarks/floor.py)
c.JupyterHub.services.append(
    {
        "name": "floor",
        "url": f"http://127.0.0.1:{os.environ['NOTEBOOKS_BENCH_FLOOR_PORT']}",
        "command": [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "floor.py")],
    }
)
c.JupyterHub.concurrent_spawn_limit = 0  # measure our crowd, not the Hub's throttle
# the bench's service runs the static policy with kept groups and quotas: the roles that needs
for role in roles(Settings(policy="static", quotas=True, kept_groups=True), SERVICE_NAME, RECONCILER_NAME, "bench"):
    c.JupyterHub.load_roles.append(role)
c.JupyterHub.log_level = "WARN"  # the Hub's access log would cost it more than the requests


class _Answer(web.RequestHandler):
    def get(self, *args):
        self.write({"ok": True})


class BenchSpawner(Spawner):
    """A 'server' that is a tornado app in the Hub's own process, up after <run_dir>/spawn-delay seconds."""

    _app_server = None

    async def start(self):
        delay_file = os.path.join(run_dir, "spawn-delay")
        if os.path.exists(delay_file):
            with open(delay_file) as f:
                await asyncio.sleep(float(f.read()))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self._app_server = web.Application([(r".*", _Answer)]).listen(port, "127.0.0.1")
        return ("127.0.0.1", port)

    async def poll(self):
        return None if self._app_server else 0

    async def stop(self, now=False):
        if self._app_server:
            self._app_server.stop()
            self._app_server = None

    async def progress(self):
        yield {"progress": 10, "message": "Starting"}
        while self._app_server is None:
            await asyncio.sleep(0.5)
        yield {"progress": 90, "message": "Started"}


c.JupyterHub.spawner_class = BenchSpawner
c.Spawner.pre_spawn_hook = None
