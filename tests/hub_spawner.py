"""The test Hubs' spawner: the demo's, with servers that live inside the Hub's process.

Booting a real JupyterLab takes seconds of a 2-core machine's CPU for every start,
and most tests only need a server the Hub starts, proxies, polls and stops. This
one is a small Tornado app on its own port, up at once: it answers every path
under the server's prefix and writes start-up lines to the output file as the
demo's servers do (so <server>/-/logs has something to read).

Tests that need JupyterLab itself (the browser landing in it, OAuth into the
server, the demo's clean-up of its processes) ask for real ones: while
<run_dir>/real-servers exists, spawns start `jupyterhub-singleuser` as the demo does.
"""

import datetime
import os

from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from notebooks_service.demo.spawner import DemoSpawner
from notebooks_service.logs import start_local_log


class _Server(web.RequestHandler):
    def get(self, path: str = "") -> None:
        if path.rstrip("/") == "api/status":
            self.write({"started": self.settings["started"], "last_activity": self.settings["started"]})
        else:
            self.write({"server": "in-process test server", "path": path})

    head = get


class InProcessSpawner(DemoSpawner):
    """DemoSpawner whose server is a Tornado app in the Hub, unless <run_dir>/real-servers exists.

    While <run_dir>/idle-minutes exists, a server starts as one nobody has used for that many
    minutes (its last activity moved back), so that a test sees the idle culler's deadline near.
    """

    _http_server = None

    def _switch(self, name: str) -> str | None:
        path = os.path.join(os.environ["NOTEBOOKS_DEMO_RUN_DIR"], name)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return f.read()

    def _real(self) -> bool:
        return self._switch("real-servers") is not None

    async def start(self):
        idle = self._switch("idle-minutes")
        if idle and self.orm_spawner.last_activity:  # the Hub set it just before start()
            self.orm_spawner.last_activity -= datetime.timedelta(minutes=float(idle))
        if self._real():
            return await super().start()
        # bound here and served from this very socket: no other process can take the port between
        [sock] = bind_sockets(0, "127.0.0.1")
        port = sock.getsockname()[1]
        started = datetime.datetime.now(datetime.timezone.utc).isoformat()
        prefix = self.server.base_url
        app = web.Application([(f"{prefix}(.*)", _Server)], started=started)
        self._http_server = HTTPServer(app)
        self._http_server.add_sockets([sock])
        self.pid = os.getpid()  # DemoSpawner.progress waits for a pid; never saved (get_state)
        if self.logs_dir:
            with start_local_log(self.logs_dir, self.user.name, self.name) as output:
                output.write(
                    f"[I {started} ServerApp] in-process test server starting\n"
                    f"[I {started} ServerApp] Jupyter Server (in-process test server) is running at:\n"
                    f"[I {started} ServerApp] http://127.0.0.1:{port}{prefix}\n".encode()
                )
        return ("127.0.0.1", port)

    async def poll(self):
        if self._http_server is not None:
            return None
        return await super().poll() if self.pid and self.pid != os.getpid() else 0

    async def stop(self, now=False):
        if self._http_server is None:
            return await super().stop(now=now)
        self._http_server.stop()
        self._http_server = None
        self.clear_state()

    def get_state(self):
        # an in-process server dies with the Hub: nothing of it survives a restart
        return {} if self._http_server is not None else super().get_state()
