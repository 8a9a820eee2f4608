"""The demo's spawner: a local Jupyter server that reports its progress like a cluster would."""

import asyncio

from jupyterhub.spawner import SimpleLocalProcessSpawner


class DemoSpawner(SimpleLocalProcessSpawner):
    """SimpleLocalProcessSpawner with progress events, so the status page has something to show."""

    async def progress(self):
        options = self.user_options or {}
        yield {"progress": 10, "message": f"Preparing {options.get('workspace')}/{options.get('image')}"}
        while not self.pid:  # start() has not launched the process yet
            await asyncio.sleep(0.2)
        yield {"progress": 50, "message": f"Jupyter server process started (pid {self.pid})"}
        yield {"progress": 80, "message": "Waiting for the server to answer"}
