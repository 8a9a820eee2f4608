"""Who may use which workspace.

A policy answers one question: which workspaces may this Hub user use? It is
given the Hub's full user model (name, groups, and ``auth_state`` when the
service may read it), so later policies (verified OIDC claims) fit the same
interface. The code has no dependency on the service process, so the Hub side
can import it too.
"""

from typing import Any

from traitlets import Dict, List, Unicode, validate
from traitlets.config import LoggingConfigurable

from .errors import NotAMember


class WorkspacePolicy(LoggingConfigurable):
    """Base class: decide the set of workspaces a user may use."""

    async def workspaces(self, user: dict[str, Any]) -> set[str]:
        """The workspaces ``user`` (a Hub user model) is a member of."""
        raise NotImplementedError

    async def check_member(self, user: dict[str, Any], workspace: str) -> None:
        """Raise a 403 unless ``user`` is a member of ``workspace``."""
        if workspace not in await self.workspaces(user):
            raise NotAMember(f"User {user['name']!r} is not a member of workspace {workspace!r}")


class StaticWorkspacePolicy(WorkspacePolicy):
    """Membership from configuration: ``NotebooksService.workspace_members``."""

    members = Dict(
        value_trait=List(Unicode()),
        help="Map of user name -> list of workspaces that user may use.",
    ).tag(config=True)

    async def workspaces(self, user: dict[str, Any]) -> set[str]:
        return set(self.members.get(user["name"], []))


class HubGroupsWorkspacePolicy(WorkspacePolicy):
    """Membership from Hub groups: a user may use workspace W if in group ``group_template``."""

    group_template = Unicode(
        "{workspace}",
        help="""Name of the Hub group whose members may use a workspace,
        e.g. ``ws-{workspace}``. Must contain ``{workspace}`` exactly once.""",
    ).tag(config=True)

    @validate("group_template")
    def _one_placeholder(self, proposal):
        if proposal.value.count("{workspace}") != 1:
            raise ValueError("group_template must contain '{workspace}' exactly once")
        return proposal.value

    async def workspaces(self, user: dict[str, Any]) -> set[str]:
        prefix, suffix = self.group_template.split("{workspace}")
        found = set()
        for group in user.get("groups") or []:
            if group.startswith(prefix) and group.endswith(suffix):
                workspace = group[len(prefix) : len(group) - len(suffix)]
                if workspace:
                    found.add(workspace)
        return found


# short names accepted by NotebooksService.workspace_policy_class
POLICY_ALIASES = {
    "static": StaticWorkspacePolicy,
    "hub-groups": HubGroupsWorkspacePolicy,
}
