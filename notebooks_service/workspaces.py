"""Who may use which workspace.

A policy answers one question: which workspaces may this Hub user use? It is
given the Hub's full user model (name, groups, and ``auth_state`` when the
service may read it). Policies never authenticate anyone: ``auth.py`` has
resolved the caller before they are asked. The code has no dependency on the
service process, so the Hub side can import it too.
"""

from dataclasses import dataclass
from typing import Any

from traitlets import Dict, Instance, List, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from .errors import NotAMember, ServiceError
from .idp import IdentityProvider

#: what a membership check may answer: only "left" may ever take anything away
MEMBER, LEFT, UNKNOWN = "member", "left", "unknown"


@dataclass(frozen=True)
class Membership:
    """A check's answer: ``state`` is MEMBER, LEFT (the records say no) or UNKNOWN (they could not
    be read: the Hub or the identity provider did not answer, a token could not be verified), and
    why, in words for the log."""

    state: str
    reason: str = ""

    @property
    def left(self) -> bool:
        return self.state == LEFT

    @property
    def member(self) -> bool:
        return self.state == MEMBER


async def recorded_membership(policy: "WorkspacePolicy", user: dict[str, Any], workspace: str) -> Membership:
    """Whether ``user`` (a Hub user model, not the caller) is a member of ``workspace`` as the records
    say now. A policy that cannot answer makes it UNKNOWN, never LEFT."""
    try:
        workspaces = await policy.recorded_workspaces(user)
    except NotAMember as e:  # a definite no (the token is not one for us, or there is none)
        return Membership(LEFT, e.message)
    except ServiceError as e:  # 5xx, 429, a token that cannot be verified (401): not an answer
        return Membership(UNKNOWN, e.message)
    if workspace in workspaces:
        return Membership(MEMBER)
    return Membership(LEFT, f"not a member of {workspace}")


class WorkspacePolicy(LoggingConfigurable):
    """Base class: decide the set of workspaces a user may use."""

    workspace_resource_classes = Dict(
        value_trait=List(Unicode()),
        help="""Workspace -> the resource classes allowed there (within each image's own list).
        A workspace not named here may use every class its images allow.""",
    ).tag(config=True)

    def resource_classes_in(self, workspace: str) -> list[str] | None:
        """The classes ``workspace`` is narrowed to, or None (no narrowing). Subclasses may ask elsewhere."""
        return self.workspace_resource_classes.get(workspace)

    def check_config(self) -> None:
        """Raise ValueError at start-up if the policy cannot work as configured."""

    async def workspaces(self, user: dict[str, Any]) -> set[str]:
        """The workspaces ``user`` (a Hub user model) is a member of."""
        raise NotImplementedError

    async def recorded_workspaces(self, user: dict[str, Any]) -> set[str]:
        """The workspaces another user (not the caller) is a member of, as far as the Hub's records
        say now: for the recipients of shares. Policies whose evidence expires may be lenient."""
        return await self.workspaces(user)

    #: whether ``known_members`` names every member (the policy's own records, as the static one's):
    #: then a kept workspace group is kept from them, without reading any user
    knows_every_member = False
    #: whether it reads ``auth_state``, which the Hub fills in a user's own model only, never in its
    #: lists: then memberships are read user by user, never from a listing (reconciler, Directory)
    reads_auth_state = False

    async def known_members(self, workspace: str) -> set[str]:
        """The members of ``workspace`` this policy can name without being asked about each user
        (a workspace-wide share adds them to its group). Most policies cannot: none."""
        return set()

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

    knows_every_member = True

    async def known_members(self, workspace: str) -> set[str]:
        return {name for name, workspaces in self.members.items() if workspace in workspaces}


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
        if "groups" not in user:  # the Hub shows groups only to a role with read:users(:groups)
            raise ServiceError("The Hub did not say which groups this user is in (the role lacks read:users).", 503)
        prefix, suffix = self.group_template.split("{workspace}")
        found = set()
        for group in user.get("groups") or []:
            if group.startswith(prefix) and group.endswith(suffix):
                workspace = group[len(prefix) : len(group) - len(suffix)]
                if workspace:
                    found.add(workspace)
        return found


class ClaimsWorkspacePolicy(WorkspacePolicy):
    """Membership from a verified OIDC access token's claims (e.g. Keycloak's ``workspaces``).

    The token is the one the identity provider gave at Hub login, kept in the
    Hub's ``auth_state`` (the service then needs the ``admin:auth_state``
    scope), or the Bearer JWT the caller authenticated with. The identity
    provider (``IdentityProvider``: JWKS, issuer, audience) verifies it.
    """

    reads_auth_state = True

    workspaces_claim = Unicode(
        "workspaces", help="Claim that lists the user's workspaces; a dotted path for nested claims."
    ).tag(config=True)
    auth_state_token_key = Unicode("access_token", help="Key of the access token in the Hub's auth_state.").tag(
        config=True
    )
    identity_provider = Instance(IdentityProvider, help="Verifies the tokens (shared with the service's login).")

    @default("identity_provider")
    def _identity_provider(self):
        return getattr(self.parent, "identity_provider", None) or IdentityProvider(parent=self)

    def check_config(self) -> None:
        self.identity_provider.check_config()

    def token_of(self, user: dict[str, Any]) -> str | None:
        """The access token for ``user``: one presented with this request, else the Hub's auth_state."""
        return user.get("access_token") or (user.get("auth_state") or {}).get(self.auth_state_token_key)

    async def workspaces(self, user: dict[str, Any]) -> set[str]:
        token = self.token_of(user)
        if not token:
            raise NotAMember(
                "No access token is known for you, so your workspaces cannot be checked: log in again. "
                "(Operators: enable auth_state in the Hub and give the service 'admin:auth_state'.)"
            )
        return workspaces_in(await self.identity_provider.verify(token), self.workspaces_claim)

    async def recorded_workspaces(self, user: dict[str, Any]) -> set[str]:
        # the Hub renews a user's token only while they are active: read the last one it kept,
        # expired or not (still signed by the provider), rather than drop every idle recipient
        if "auth_state" not in user:  # the Hub shows it only to a role with admin:auth_state
            raise ServiceError("The Hub did not show this user's auth_state (the role lacks admin:auth_state).", 503)
        token = (user.get("auth_state") or {}).get(self.auth_state_token_key)
        if not token:
            return set()
        return workspaces_in(await self.identity_provider.verify(token, allow_expired=True), self.workspaces_claim)


def workspaces_in(claims: dict[str, Any], path: str) -> set[str]:
    """The workspace names under a dotted claim path: a list, the keys of a dict, or one string."""
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        value = list(value)
    return {v for v in value or [] if isinstance(v, str)} if isinstance(value, list) else set()
