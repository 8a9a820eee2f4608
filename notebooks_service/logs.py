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


def local_log_path(folder: str, user: str, server_name: str) -> str:
    # user and server names are Hub names: no '/' (named servers are slugs; usernames are checked below)
    if "/" in user or user in (".", ".."):
        raise ValueError(f"unsafe user name for a log path: {user!r}")
    return os.path.join(folder, user, f"{server_name}.log")


class LocalLogs:
    """Output files in a folder, as the demo's spawner writes them."""

    def __init__(self, folder: str, poll: float = 0.5):
        self.folder = folder
        self.poll = poll

    def _path(self, user: str, server_name: str) -> str:
        path = local_log_path(self.folder, user, server_name)
        if not os.path.exists(path):
            raise NotFound("This server has written no output yet.")
        return path

    async def lines(
        self, workspace: str, user: str, server_name: str, *, tail: int, previous: bool = False
    ) -> list[str]:
        path = self._path(user, server_name)
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
