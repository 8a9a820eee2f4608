"""The demo's spawner: a local Jupyter server that reports its progress like a cluster would, and
sees its workspace's data as a pod would (a shared folder at workspace/, the bucket at s3/)."""

import asyncio
import os
import subprocess

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Unicode, default

from ..logs import start_local_log
from .ports import free_port

#: the demo's "image": the Jupyter configuration its servers load (docs/workspace-data.rst shows it)
IMAGE_CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "image")


class DemoSpawner(SimpleLocalProcessSpawner):
    """SimpleLocalProcessSpawner with progress events, a home per server, and the workspace's files.

    As on Kubernetes (where z2jh gives each named server its own home volume and the placement
    mounts the workspace's volume into it), each server starts in its own folder,
    ``home_dir_template`` with ``{servername}``, where ``workspace`` leads to the folder every
    member's server of that workspace shares (``workspaces_dir``/<workspace>). It is a folder
    on this machine, so the isolation is the file browser's, not the operating system's.
    """

    logs_dir = Unicode(
        help="Folder where each server's output goes (<user>/<server>.log), for the service's logs endpoint."
    ).tag(config=True)
    workspaces_dir = Unicode(
        help="Folder with a folder per workspace that every member's server of it sees as `workspace_link`; empty: none."
    ).tag(config=True)
    workspace_link = Unicode(
        "workspace",
        help="Name of the workspace's folder in each server's home (WorkspacePlacement.volume_mount_path's, as pages say).",
    ).tag(config=True)
    image_config_dir = Unicode(
        IMAGE_CONFIG_DIR,
        help="Jupyter configuration the servers load (JUPYTER_CONFIG_PATH), as an image's /etc/jupyter; empty: none.",
    ).tag(config=True)

    @default("home_dir")
    def _home_per_server(self):
        return self.home_dir_template.format(username=self.user.name, servername=self.name)

    def prepare_workspace(self) -> None:
        """The server's home, with its workspace's shared folder linked in (the guard checked the name)."""
        workspace = (self.user_options or {}).get("workspace")
        os.makedirs(self.home_dir, 0o755, exist_ok=True)
        if not (self.workspaces_dir and isinstance(workspace, str)):
            return
        shared = os.path.join(self.workspaces_dir, workspace)
        os.makedirs(shared, 0o755, exist_ok=True)
        link = os.path.join(self.home_dir, self.workspace_link)
        if os.path.islink(link) and os.readlink(link) != shared:
            os.unlink(link)  # a folder from before: the link must lead to this workspace's
        if not os.path.lexists(link):
            os.symlink(shared, link)
        elif not os.path.islink(link):
            self.log.warning("%s is not the workspace's folder: %s's files are not there", link, workspace)

    def get_env(self):
        env = super().get_env()
        if self.image_config_dir:
            env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
                filter(None, [self.image_config_dir, env.get("JUPYTER_CONFIG_PATH")])
            )
        return env

    async def start(self):
        self.prepare_workspace()
        # as LocalProcessSpawner does when port is 0, but through the demo's allocator (ports.py)
        if self.port == 0:
            self.port = free_port()
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
