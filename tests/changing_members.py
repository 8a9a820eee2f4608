"""A workspace policy whose members a test can change while the Hub and the service run.

The demo's static members, unless <run_dir>/members.json exists: then its
{user: [workspaces]}. The session's test Hub runs the service and the Hub-side
guard with it (tests/conftest.py, ``hub``); ``set_members`` in conftest writes the file.
"""

import json
import os

from notebooks_service.workspaces import StaticWorkspacePolicy


class ChangingMembersPolicy(StaticWorkspacePolicy):
    def _members(self) -> dict:
        path = os.path.join(os.environ["NOTEBOOKS_DEMO_RUN_DIR"], "members.json")
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
        return self.members

    async def workspaces(self, user):
        return set(self._members().get(user["name"], []))

    async def known_members(self, workspace):
        return {name for name, workspaces in self._members().items() if workspace in workspaces}
