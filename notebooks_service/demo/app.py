"""`notebooks-service demo`: a real local JupyterHub with this service registered.

``DemoHub`` runs one Hub process in its own run folder on free ports; the
demo command and the test suite both use it.
"""

import contextlib
import errno
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from traitlets import Integer, List, Unicode, default
from traitlets.config import Application

from . import SERVICE_NAME
from .ports import free_port

_HERE = os.path.dirname(os.path.abspath(__file__))
HUB_CONFIG = os.path.join(_HERE, "jupyterhub_config.py")
SERVICE_CONFIG = os.path.join(_HERE, "notebooks_service_config.py")
# how the proxy (node), the Hub and the service (Python), and moto say a port was taken
_PORT_TAKEN = re.compile(rb"EADDRINUSE|[Aa]ddress already in use")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def hub_api(hub_url: str, token: str, method: str, path: str, body=None, timeout: float = 30) -> tuple[int, object]:
    """One synchronous call of a Hub's REST API with ``token``: (status, the JSON answer, or its text)."""
    request = urllib.request.Request(
        f"{hub_url}/hub/api{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            data = r.read()
            return r.status, json.loads(data) if data else None
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


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
        hub_port: int = 0,
        extra_config: str | None = None,
        service_config: str | None = None,
        env: dict[str, str] | None = None,
        ports_chosen=None,
    ):
        self.run_dir = os.path.abspath(run_dir)
        self.ip = ip
        self._given_ports = (port, hub_port)
        self._ports_chosen = ports_chosen  # called with this Hub after each choice (a meter follows the API port)
        self.choose_ports()
        self.extra_config = extra_config  # more Hub configuration, loaded last
        self.service_config = service_config  # instead of the demo's service configuration
        self.env = env or {}
        self.process: subprocess.Popen | None = None
        self.log_path = os.path.join(self.run_dir, "jupyterhub.log")
        self._log_offset: int | None = None  # where the last start's output begins in log_path
        self.output = f"see {self.log_path}"  # where the Hub's output goes, for error messages

    def choose_ports(self) -> None:
        """The ports the Hub hands its parts; those given to the constructor stay."""
        port, hub_port = self._given_ports
        self.port = port or free_port()  # the proxy's public port
        self.hub_port = hub_port or free_port()  # the Hub's own API, behind the proxy
        self.proxy_api_port = free_port()
        self.service_port = free_port()  # the service itself, behind the proxy
        self.s3_url = f"http://127.0.0.1:{free_port()}"  # the workspaces' object storage (object_storage.py)
        if self._ports_chosen:
            self._ports_chosen(self)

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

    def start(self, *, log_to_file: bool = True, own_session: bool = False) -> None:
        """Start the Hub; its output goes to ``log_path`` (or this terminal). ``own_session``: a
        terminal's Ctrl-C reaches only us, and we stop the Hub once (SIGTERM), not it twice."""
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
            NOTEBOOKS_DEMO_PROXY_API_PORT=str(self.proxy_api_port),
            NOTEBOOKS_DEMO_SERVICE_PORT=str(self.service_port),
            NOTEBOOKS_DEMO_PROXY_COMMAND=proxy,
            NOTEBOOKS_DEMO_EXTRA_CONFIG=self.extra_config or "",
            NOTEBOOKS_DEMO_SERVICE_CONFIG=self.service_config or "",
            NOTEBOOKS_DEMO_S3_URL=self.s3_url,
            **self.env,
        )
        # the Hub must find jupyterhub-singleuser and node next to this Python
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        output = open(self.log_path, "ab") if log_to_file else None
        self._log_offset = output.tell() if output else None
        if not log_to_file:
            self.output = "see the Hub's output above"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", HUB_CONFIG],
            cwd=self.run_dir,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=own_session,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        """Poll until the proxy routes both the Hub's API and this service's health page, and the
        object storage holds every workspace's bucket (a server's file browser reads it at start)."""
        deadline = time.monotonic() + timeout
        for what, ready in (
            ("the Hub's API", lambda: _answers(f"{self.url}/hub/api/")),
            ("the service", lambda: _answers(f"{self.service_url}health")),
            (f"the workspaces' object storage ({self.s3_url})", self._buckets_ready),
        ):
            polls = 0
            while not ready():
                if self.process and self.process.poll() is not None:
                    raise RuntimeError(f"JupyterHub exited with {self.process.returncode}; {self.output}")
                polls += 1
                if polls % 10 == 0 and (taken := self.taken_port()):  # the Hub would wait for it in vain
                    raise PortTaken(taken)
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{what} is not ready after {timeout}s; {self.output}")
                time.sleep(0.1)
        # the proxy and the managed services, to stop should the Hub leave them behind (stop())
        self.remember_descendants()

    def start_ready(self, timeout: float = 60) -> None:
        """start() (output to ``log_path``) and wait_ready(). Once more, on new ports, where a part
        of the Hub found its port taken (another program bound it between choice and bind): the
        reason goes to the log. Any other failure is raised as it is."""
        for attempt in (1, 2):
            self.start()
            try:
                return self.wait_ready(timeout)
            except (RuntimeError, TimeoutError):
                taken = self.taken_port()
                if attempt == 2 or not taken:
                    raise
                self.stop()
                with open(self.log_path, "a") as log:
                    log.write(f"[notebooks-service demo] a port was taken ({taken}): starting again on new ports\n")
                self.choose_ports()

    def taken_port(self) -> str | None:
        """The first line of this start's output that says a port was in use, if any."""
        if self._log_offset is None:
            return None
        with open(self.log_path, "rb") as log:
            log.seek(self._log_offset)
            for line in log:
                if _PORT_TAKEN.search(line):
                    return _ANSI.sub("", line.decode(errors="replace")).strip()[:300]
        return None

    def _buckets_ready(self) -> bool:
        from .object_storage import filled

        return filled(self.s3_url)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM and wait: the Hub then stops the proxy, the service and the servers it started;
        what it left running of what it had started by wait_ready() is stopped after it."""
        if self.process and self.process.poll() is None:
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


class PortTaken(RuntimeError):
    """A part of the Hub could not listen on the port it was given: another program had it."""


class DemoError(Exception):
    """Something the person running the demo must fix: one line says what."""


class DemoApp(Application):
    """Run a local JupyterHub with notebooks-service and demo users, workspaces and images."""

    name = "notebooks-service-demo"
    description = "Run a local JupyterHub with notebooks-service registered at /services/notebooks/."
    aliases = {
        "port": "DemoApp.port",
        "ip": "DemoApp.ip",
        "run-dir": "DemoApp.run_dir",
        "allow-origin": "DemoApp.allow_origins",
    }

    ip = Unicode("127.0.0.1", help="IP the Hub's proxy listens on.").tag(config=True)
    port = Integer(8000, help="Port the Hub's proxy listens on.").tag(config=True)
    run_dir = Unicode(help="Folder for the Hub's database, secrets, pid files and user homes.").tag(config=True)
    allow_origins = List(
        Unicode(),
        help="""Origins of web pages that may call the JSON API from the browser
        (NotebooksService.allow_origins), to try a web presence such as examples/web_presence.html.
        Repeatable: --allow-origin http://localhost:8001 --allow-origin ...""",
    ).tag(config=True)

    @default("run_dir")
    def _run_dir(self):
        return os.path.join(os.getcwd(), ".demo")

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    def start(self) -> None:
        try:
            self._run()
        except DemoError as e:
            print(f"notebooks-service demo: {e}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None

    def _run(self) -> None:
        os.makedirs(self.run_dir, exist_ok=True)
        lock = self._lock_run_dir()  # first: a second demo here must change nothing
        self._check_port()
        token = secrets.token_hex(32)
        hub = DemoHub(
            self.run_dir,
            ip=self.ip,
            port=self.port,
            service_config=self._service_config(),
            env={"NOTEBOOKS_DEMO_ADMIN_TOKEN": token},
        )
        # SIGTERM must stop the Hub too, or its proxy and servers outlive us; and Ctrl-C must stop
        # it even where we were started in the background of a script, which ignores SIGINT
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        signal.signal(signal.SIGINT, signal.default_int_handler)
        hub.start(log_to_file=False, own_session=True)
        try:
            try:
                hub.wait_ready(timeout=120)
            except (RuntimeError, TimeoutError) as e:
                raise DemoError(str(e)) from None
            _note(lock, {"url": hub.service_url, "pid": os.getpid()})
            _remove_servers(hub, token, stopped_only=True)  # what a demo stopped by force left behind
            print(
                f"\n  notebooks-service demo is up: open {hub.service_url}\n"
                "  log in as alice or bob (any password); press Ctrl-C to stop.\n"
                "  For this machine only: notebook servers run as your own OS user, like the Hub.\n",
                flush=True,
            )
            code = hub.supervise()
            stopped = hub.stop_orphans()
            raise DemoError(f"JupyterHub exited ({code}); stopped what it left running: {len(stopped)} process(es).")
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
            print("\n  Stopping the demo: its servers, then the Hub…", flush=True)
            _remove_servers(hub, token)
        finally:
            hub.stop()
            lock.close()

    def _lock_run_dir(self):
        """Hold the run folder for this demo (the lock goes with the process), or say who holds it."""
        path = os.path.join(self.run_dir, "demo.lock")
        lock = open(path, "a+")  # noqa: SIM115 (held until the demo ends)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            try:
                running = json.loads(lock.read() or "{}")
            except ValueError:
                running = {}
            lock.close()
            where = f"{running.get('url', 'starting')} (pid {running.get('pid', '?')})"
            raise DemoError(
                f"a demo is already running in {self.run_dir}: {where}. Stop it first (Ctrl-C where it runs), "
                "or give this one another folder (--run-dir)."
            ) from None
        _note(lock, {"url": f"{self.url}/services/notebooks/", "pid": os.getpid()})
        return lock

    def _check_port(self) -> None:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed connection's TIME_WAIT is no owner
            try:
                s.bind((self.ip, self.port))
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    raise DemoError(
                        f"port {self.port} on {self.ip} is in use by another program: stop it, or choose "
                        f"another port (make demo PORT={self.port + 1}, or --port {self.port + 1})."
                    ) from None
                raise DemoError(f"cannot listen on {self.ip}:{self.port}: {e.strerror}") from None

    def _service_config(self) -> str | None:
        """The demo's service configuration, plus what the command line adds (allowed origins)."""
        if not self.allow_origins:
            return None
        path = os.path.join(self.run_dir, "notebooks_service_config.py")
        with open(path, "w") as f:
            f.write(
                f"load_subconfig({SERVICE_CONFIG!r})\n"
                "c = get_config()  # noqa: F821\n"
                f"c.NotebooksService.allow_origins = {list(self.allow_origins)!r}\n"
            )
        return path


def _note(lock, running: dict) -> None:
    """Say in the held lock file which demo runs here (a second one reads it)."""
    lock.truncate(0)  # (opened for appending: the write lands at the start)
    lock.write(json.dumps(running))
    lock.flush()


def _remove_servers(hub: DemoHub, token: str, *, stopped_only: bool = False, timeout: float = 30) -> None:
    """Remove the demo users' named servers through the Hub's API (stopping running ones), so that
    the next start lists no stale stopped rows. Best effort: the Hub stops what is left anyway."""

    def named_servers() -> list[tuple[str, str]]:
        status, users = hub_api(hub.url, token, "GET", "/users?include_stopped_servers=1", timeout=10)
        if status != 200:
            return []
        return [
            (u["name"], name)
            for u in users
            for name, server in (u.get("servers") or {}).items()
            if name and (server.get("stopped") or not stopped_only)
        ]

    deadline = time.monotonic() + timeout
    try:
        for user, name in named_servers():
            hub_api(hub.url, token, "DELETE", f"/users/{user}/servers/{name}", {"remove": True}, timeout=10)
        while named_servers() and time.monotonic() < deadline:
            time.sleep(0.2)
    except (OSError, ValueError):
        pass  # the Hub is going: it stops its servers itself
