"""A notebook server's output, for ``<prefix>/<workspace>/<image>/-/logs``.

Two sources: Kubernetes (the notebook container's log, through ``kube.py``)
and a local folder (the demo's spawner writes each server's output to
``<folder>/<user>/<server>.log``). Both give lines, the last ``tail`` of them,
or follow new ones as they come.
"""

import asyncio
import os
from collections import deque
from collections.abc import AsyncIterator

from .errors import NotFound


def local_log_path(folder: str, user: str, server_name: str, *, previous: bool = False) -> str:
    """Where a server's output goes: one file per run, the run before it as ``.previous.log``."""
    # user and server names are Hub names: no '/' (named servers are slugs; usernames are checked here)
    if "/" in user or user in (".", ".."):
        raise ValueError(f"unsafe user name for a log path: {user!r}")
    return os.path.join(folder, user, f"{server_name}{'.previous' if previous else ''}.log")


def start_local_log(folder: str, user: str, server_name: str):
    """A new output file for a run of the server (the last run's becomes the previous); open for appending."""
    path = local_log_path(folder, user, server_name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        os.replace(path, local_log_path(folder, user, server_name, previous=True))
    return open(path, "ab")  # noqa: SIM115 (the caller hands it to the server process)


class LocalLogs:
    """Output files in a folder, as the demo's spawner writes them."""

    def __init__(self, folder: str, poll: float = 0.5):
        self.folder = folder
        self.poll = poll

    def _path(self, user: str, server_name: str, previous: bool = False) -> str:
        path = local_log_path(self.folder, user, server_name, previous=previous)
        if not os.path.exists(path):
            if previous:
                raise NotFound("There is no previous run of this server.")
            raise NotFound("This server has written no output yet.")
        return path

    async def lines(
        self, workspace: str, user: str, server_name: str, *, tail: int, previous: bool = False
    ) -> list[str]:
        path = self._path(user, server_name, previous)
        with open(path, errors="replace") as f:
            return [line.rstrip("\n") for line in deque(f, maxlen=tail)]

    async def follow(self, workspace: str, user: str, server_name: str, *, tail: int) -> AsyncIterator[str]:
        path = self._path(user, server_name)
        with open(path, errors="replace") as f:
            for line in deque(f, maxlen=tail):
                yield line.rstrip("\n")
            partial = ""
            while True:
                chunk = f.readline()
                if not chunk:
                    await asyncio.sleep(self.poll)
                    continue
                partial += chunk
                if partial.endswith("\n"):
                    yield partial.rstrip("\n")
                    partial = ""
