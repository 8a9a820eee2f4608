"""The demo's spawner: a local Jupyter server that reports its progress like a cluster would."""

import asyncio
import subprocess

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Unicode

from ..logs import start_local_log


class DemoSpawner(SimpleLocalProcessSpawner):
    """SimpleLocalProcessSpawner with progress events, so the status page has something to show."""

    logs_dir = Unicode(
        help="Folder where each server's output goes (<user>/<server>.log), for the service's logs endpoint."
    ).tag(config=True)

    async def start(self):
        if self.logs_dir:
            output = start_local_log(self.logs_dir, self.user.name, self.name)  # the process keeps its own copy
            self.popen_kwargs = {**self.popen_kwargs, "stdout": output, "stderr": subprocess.STDOUT}
            try:
                return await super().start()
            finally:
                output.close()
        return await super().start()

    async def progress(self):
        options = self.user_options or {}
        yield {"progress": 10, "message": f"Preparing {options.get('workspace')}/{options.get('image')}"}
        while not self.pid:  # start() has not launched the process yet
            await asyncio.sleep(0.2)
        yield {"progress": 50, "message": "The server's process has started"}
        yield {"progress": 80, "message": "Waiting for the server to answer"}
