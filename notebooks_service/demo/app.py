"""`notebooks-service demo`: a real local JupyterHub with this service registered.

``DemoHub`` runs one Hub process in its own run folder on free ports; the
demo command and the test suite both use it.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from traitlets import Integer, Unicode, default
from traitlets.config import Application

from . import SERVICE_NAME

_HERE = os.path.dirname(os.path.abspath(__file__))
HUB_CONFIG = os.path.join(_HERE, "jupyterhub_config.py")
SERVICE_CONFIG = os.path.join(_HERE, "notebooks_service_config.py")
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


_handed_out: set[int] = set()


def free_port() -> int:
    """A port free on 127.0.0.1 now, and never one this process handed out before: two asked for
    in a row (a service's port and its metrics port) could otherwise be the same."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def find_proxy_command() -> str | None:
    """configurable-http-proxy: from $CONFIGPROXY_COMMAND, the project's node_modules, or PATH."""
    candidates = [
        os.environ.get("CONFIGPROXY_COMMAND", ""),
        os.path.join(os.getcwd(), "node_modules", ".bin", "configurable-http-proxy"),
        os.path.join(_PROJECT_ROOT, "node_modules", ".bin", "configurable-http-proxy"),
        shutil.which("configurable-http-proxy") or "",
    ]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


class DemoHub:
    """One JupyterHub subprocess with the demo configuration, in its own run folder."""

    def __init__(
        self,
        run_dir: str,
        *,
        ip: str = "127.0.0.1",
        port: int = 0,
        extra_config: str | None = None,
        service_config: str | None = None,
        env: dict[str, str] | None = None,
    ):
        self.run_dir = os.path.abspath(run_dir)
        self.ip = ip
        self.port = port or free_port()
        self.hub_port = free_port()  # the Hub's own API, behind the proxy
        self.service_port = free_port()  # the service itself, behind the proxy
        self.extra_config = extra_config  # more Hub configuration, loaded last
        self.service_config = service_config  # instead of the demo's service configuration
        self.env = env or {}
        self.process: subprocess.Popen | None = None
        self.log_path = os.path.join(self.run_dir, "jupyterhub.log")

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    @property
    def service_url(self) -> str:
        return f"{self.url}/services/{SERVICE_NAME}/"

    @property
    def direct_service_url(self) -> str:
        """The service without the Hub's proxy in front."""
        return f"http://127.0.0.1:{self.service_port}/services/{SERVICE_NAME}/"

    def start(self, *, log_to_file: bool = True) -> None:
        proxy = find_proxy_command()
        if not proxy:
            raise RuntimeError(
                "configurable-http-proxy not found: run `npm ci` in the project (or `make demo`), "
                "or set CONFIGPROXY_COMMAND"
            )
        os.makedirs(self.run_dir, exist_ok=True)
        env = dict(
            os.environ,
            NOTEBOOKS_DEMO_RUN_DIR=self.run_dir,
            NOTEBOOKS_DEMO_IP=self.ip,
            NOTEBOOKS_DEMO_PORT=str(self.port),
            NOTEBOOKS_DEMO_HUB_PORT=str(self.hub_port),
            NOTEBOOKS_DEMO_PROXY_API_PORT=str(free_port()),
            NOTEBOOKS_DEMO_SERVICE_PORT=str(self.service_port),
            NOTEBOOKS_DEMO_PROXY_COMMAND=proxy,
            NOTEBOOKS_DEMO_EXTRA_CONFIG=self.extra_config or "",
            NOTEBOOKS_DEMO_SERVICE_CONFIG=self.service_config or "",
            **self.env,
        )
        # the Hub must find jupyterhub-singleuser and node next to this Python
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        output = open(self.log_path, "ab") if log_to_file else None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", HUB_CONFIG],
            cwd=self.run_dir,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        """Poll until the proxy routes both the Hub's API and this service's health page."""
        deadline = time.monotonic() + timeout
        for url in (f"{self.url}/hub/api/", f"{self.service_url}health"):
            while True:
                if self.process and self.process.poll() is not None:
                    raise RuntimeError(f"JupyterHub exited with {self.process.returncode}; see {self.log_path}")
                try:
                    with urllib.request.urlopen(url, timeout=2) as r:
                        if r.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{url} not ready after {timeout}s; see {self.log_path}")
                time.sleep(0.1)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM and wait: the Hub then stops the proxy, the service and the servers it started."""
        if not self.process or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.stop_orphans()

    # -- when the Hub dies -----------------------------------------------------
    # The proxy, the service, the culler and the notebook servers are the Hub's children, in
    # sessions of their own: if the Hub dies without stopping them, nothing else will. So the
    # demo keeps a list of the Hub's descendants while it lives, and stops what is left after.

    _descendants: dict | None = None

    def remember_descendants(self) -> None:
        import psutil

        self._descendants = self._descendants or {}
        try:
            for child in psutil.Process(self.process.pid).children(recursive=True):
                self._descendants[child.pid] = child.create_time()
        except psutil.Error:
            pass  # the Hub has just gone: keep what we knew

    def stop_orphans(self, timeout: float = 10) -> list[int]:
        """Stop the Hub's descendants that outlived it (SIGTERM, then SIGKILL); their pids."""
        import psutil

        orphans = []
        for pid, created in (self._descendants or {}).items():
            try:
                process = psutil.Process(pid)
                if process.create_time() == created:  # not a new process that got the pid
                    orphans.append(process)
            except psutil.Error:
                pass
        for process in orphans:
            with contextlib.suppress(psutil.Error):
                process.terminate()
        _, alive = psutil.wait_procs(orphans, timeout=timeout)
        for process in alive:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(alive, timeout=timeout)
        self._descendants = {}
        return [p.pid for p in orphans]

    def supervise(self, interval: float = 1) -> int:
        """Wait for the Hub to exit, noting its descendants; then stop those left. The Hub's exit code."""
        while self.process.poll() is None:
            self.remember_descendants()
            time.sleep(interval)
        return self.process.returncode


class DemoApp(Application):
    """Run a local JupyterHub with notebooks-service and demo users, workspaces and images."""

    name = "notebooks-service-demo"
    description = "Run a local JupyterHub with notebooks-service registered at /services/notebooks/."
    aliases = {"port": "DemoApp.port", "ip": "DemoApp.ip", "run-dir": "DemoApp.run_dir"}

    ip = Unicode("127.0.0.1", help="IP the Hub's proxy listens on.").tag(config=True)
    port = Integer(8000, help="Port the Hub's proxy listens on.").tag(config=True)
    run_dir = Unicode(help="Folder for the Hub's database, secrets, pid files and user homes.").tag(config=True)

    @default("run_dir")
    def _run_dir(self):
        return os.path.join(os.getcwd(), ".demo")

    def start(self) -> None:
        hub = DemoHub(self.run_dir, ip=self.ip, port=self.port)
        # SIGTERM must stop the Hub too, or its proxy and servers outlive us
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        hub.start(log_to_file=False)
        try:
            hub.wait_ready(timeout=120)
            print(
                f"\n  notebooks-service demo is up: open {hub.service_url}\n"
                "  log in as alice or bob (any password); press Ctrl-C to stop.\n"
                "  For this machine only: notebook servers run as your own OS user, like the Hub.\n",
                flush=True,
            )
            code = hub.supervise()
            stopped = hub.stop_orphans()
            print(
                f"\n  JupyterHub exited ({code}); stopped what it left running: {len(stopped)} process(es).", flush=True
            )
            raise SystemExit(1)
        except KeyboardInterrupt:
            pass
        finally:
            hub.stop()
