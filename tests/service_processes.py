"""The service as a process of its own, outside any Hub: a standalone run or a replica behind a test Hub."""

import os
import subprocess
import sys
import time
import urllib.request

from notebooks_service.demo.app import SERVICE_CONFIG as DEMO_SERVICE_CONFIG


def start_service(port: int, log_path, *args: str, **env: str) -> subprocess.Popen:
    """notebooks-service as its own process on ``port``: ``env`` adds to the JUPYTERHUB_* a Hub would set."""
    environment = dict(
        os.environ,
        JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{port}",
        JUPYTERHUB_SERVICE_PREFIX="/services/notebooks/",
        JUPYTERHUB_SERVICE_NAME="notebooks",
        **env,
    )
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "notebooks_service", *args],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(log_path.parent),
        )


def start_replica(port: int, hub_port: int, token: str, cookie_secret: str, log_path) -> subprocess.Popen:
    """A service process; its Hub API at ``hub_port`` (the proxy's, or the Hub's own)."""
    return start_service(
        port,
        log_path,
        "--config",
        DEMO_SERVICE_CONFIG,
        # the setting that made every replica check all shares on its own (now the reconciler's)
        "--NotebooksService.share_reconcile_interval=1",
        JUPYTERHUB_API_TOKEN=token,
        JUPYTERHUB_API_URL=f"http://127.0.0.1:{hub_port}/hub/api",
        JUPYTERHUB_CLIENT_ID="service-notebooks",
        JUPYTERHUB_OAUTH_CALLBACK_URL="/services/notebooks/oauth_callback",
        NOTEBOOKS_SERVICE_COOKIE_SECRET=cookie_secret,
    )


def wait_healthy(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            assert process.poll() is None, "replica exited"
            assert time.monotonic() < deadline, f"{url} not healthy"
            time.sleep(0.1)
