"""Sharing a workspace server with other members of its workspace.

Built on JupyterHub's own sharing (``hubshares.py``): a share is the Hub's, and the
Hub's proxy and the server's own login decide who gets in. The service adds the
workspace's rule: only members may receive a share. A recipient who leaves the
workspace loses it: the reconciler (``reconciler.py``, one per deployment) checks
the shares of every active server every ``Reconciler.membership_check_interval``,
and a recipient's own list drops what they may no longer open at once. A read
costs no Hub call about other users.
"""

import asyncio
import time
from typing import Any

from traitlets import Bool, Integer, Unicode
from traitlets.config import LoggingConfigurable

from .errors import InvalidRequest, NotFound, ServiceError, ServiceUnavailable
from .hubpages import every_item
from .hubshares import HubGroups, HubShares
from .metrics import MEMBERSHIP_CHECKS, SHARES_REVOKED
from .naming import display_name, server_name
from .workspaces import LEFT, UNKNOWN, HubGroupsWorkspacePolicy, Membership, recorded_membership

#: the longest user name a share request may name (JupyterHub's own limit is the database's)
MAX_NAME = 255


#: how long a member the Hub does not know (never logged in) is not offered to a kept group again
NOT_IN_HUB_SECONDS = 600


class Sharing(LoggingConfigurable):
    """Who may reach a member's server: named members of its workspace."""

    max_recipients = Integer(
        50, help="Members one server may be shared with at most; a request past it is a 400 that says so."
    ).tag(config=True)
    manage_workspace_groups = Bool(
        False,
        help="""Let members share a server with their whole workspace (members who join later
        included, while the share is on) where a workspace is no Hub group of its own (the static
        and claims policies): the service then keeps a Hub group per workspace
        (``workspace_group_template``), adds members as it sees them (all of the static policy's
        at once) and removes those who have left. The service's role then needs ``admin:groups``,
        which can change any group's members: off by default. With the hub-groups policy a
        workspace-wide share goes to the workspace's own group, and needs nothing more.""",
    ).tag(config=True)
    workspace_group_template = Unicode(
        "notebooks-workspace-{workspace}",
        help="The Hub group of a workspace's members that the service keeps, for workspace-wide shares.",
    ).tag(config=True)

    def __init__(self, *, hub: Any, policy: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.hub = hub
        self.policy = policy
        self.hub_shares = HubShares(hub)
        self.groups = HubGroups(hub)
        self._not_in_hub: dict[str, float] = {}  # name -> until when a kept group does not try to add them

    # -- one server's shares, for its owner ------------------------------------------------------

    def workspace_group(self, workspace: str) -> tuple[str | None, bool]:
        """The Hub group a workspace-wide share goes to (None: none may be made here), and whether
        the service keeps its members."""
        if isinstance(self.policy, HubGroupsWorkspacePolicy):
            return self.policy.group_template.format(workspace=workspace), False
        if self.manage_workspace_groups:
            return self.workspace_group_template.format(workspace=workspace), True
        return None, False

    async def shared_with(self, request: Any) -> dict[str, Any]:
        """``{"users": [...], "workspace": bool}``: the members the caller's server is shared with
        (others revoked now), and whether the whole workspace may open it."""
        owner = request.user["name"]
        shares = await self.hub_shares.of_server(owner, request.name)
        names = sorted({s["user"]["name"] for s in shares if s.get("user")})
        group, _ = self.workspace_group(request.workspace)
        whole = group is not None and any((s.get("group") or {}).get("name") == group for s in shares)
        return {"users": await self._keep_members(owner, request.name, request.workspace, names), "workspace": whole}

    async def share(self, request: Any, users: Any, workspace: bool = False) -> dict[str, Any]:
        """Share the caller's server with ``users``, all members of its workspace (and, with
        ``workspace``, with the whole workspace), or nothing changes."""
        if users is None and not workspace:
            raise InvalidRequest('Name the members: {"users": ["name", ...]}, or {"workspace": true}.')
        names = self._check_names(request, users) if users is not None else []
        _require_server(request)
        group, managed = self.workspace_group(request.workspace) if workspace else (None, False)
        if workspace and group is None:
            raise ServiceError(
                "Sharing with a whole workspace is off here: share with members by name. "
                "(Operators: see Sharing.manage_workspace_groups.)",
                403,
            )
        verdicts = await asyncio.gather(*(self.membership(n, request.workspace) for n in names))
        unknown = [n for n, verdict in zip(names, verdicts, strict=True) if verdict.state == UNKNOWN]
        if unknown:  # neither granted nor refused on a guess: the user tries again
            raise ServiceUnavailable(
                f"Cannot check whether {unknown[0][:80]!r} is a member of workspace {request.workspace} "
                "right now: nothing was shared. Try again in a moment.",
                retry_after=10,
            )
        outsiders = [n for n, verdict in zip(names, verdicts, strict=True) if verdict.left]
        if outsiders:
            listed = ", ".join(repr(n[:80]) for n in outsiders)
            raise InvalidRequest(
                f"Only members of workspace {request.workspace} may be given a share: "
                f"{listed} {'is' if len(outsiders) == 1 else 'are'} not."
            )
        current = (await self.shared_with(request))["users"]
        if len(set(current) | set(names)) > self.max_recipients:
            raise InvalidRequest(f"A server may be shared with at most {self.max_recipients} members.")
        owner = request.user["name"]
        for name in names:
            if name not in current:
                await self.hub_shares.grant(owner, request.name, name)
                self.log.info("%s shared %s with %s", owner, request.name, name)
        if group is not None:
            if managed:
                await self.groups.create(group)
                await self.keep_group(request.workspace, seen={owner})  # flat in members: see keep_group
            await self.hub_shares.grant(owner, request.name, group=group)
            self.log.info("%s shared %s with workspace %s (group %s)", owner, request.name, request.workspace, group)
        return await self.shared_with(request)

    async def revoke(self, request: Any, users: Any | None, workspace: bool = False) -> dict[str, Any]:
        """Revoke the shares of ``users``, and with ``workspace`` the workspace-wide one (neither: all)."""
        owner = request.user["name"]
        if users is None and not workspace:
            await self.hub_shares.revoke_all(owner, request.name)
        if users is not None:
            for name in self._check_names(request, users, revoking=True):
                await self.hub_shares.revoke(owner, request.name, name)
        group, _ = self.workspace_group(request.workspace)
        if workspace and group is not None:
            await self.hub_shares.revoke(owner, request.name, group=group)
        self.log.info("%s revoked shares of %s: %s", owner, request.name, "all" if users is None else users)
        return await self.shared_with(request)

    def _check_names(self, request: Any, users: Any, *, revoking: bool = False) -> list[str]:
        if not isinstance(users, list) or not users or not all(isinstance(u, str) and u for u in users):
            raise InvalidRequest('Name the members: {"users": ["name", ...]}.')
        if len(users) > self.max_recipients:
            raise InvalidRequest(f"A server may be shared with at most {self.max_recipients} members.")
        too_long = [u for u in users if len(u) > MAX_NAME]
        if too_long:
            raise InvalidRequest(f"No such user: {too_long[0][:80]!r}….")
        if not revoking and request.user["name"] in users:
            raise InvalidRequest("Your server is yours already: share it with other members.")
        return sorted(set(users))

    # -- membership ----------------------------------------------------------------------------

    async def membership(self, name: str, workspace: str) -> Membership:
        """Whether user ``name`` is a member of ``workspace`` as the Hub's records say now: member, left
        (a deleted user has left), or unknown (the Hub or the identity provider did not answer)."""
        try:
            model = await self.hub.get_user(name)
        except NotFound:
            model = None
        except ServiceError as e:
            return self._counted(Membership(UNKNOWN, e.message), name, workspace)
        return await self.membership_in(model, name, workspace)

    async def membership_in(self, model: dict[str, Any] | None, name: str, workspace: str) -> Membership:
        """``membership`` from ``name``'s model as read already (None: no such user)."""
        if model is None:
            return self._counted(Membership(LEFT, "no such user"), name, workspace)
        return self._counted(await recorded_membership(self.policy, model, workspace), name, workspace)

    def _counted(self, verdict: Membership, name: str, workspace: str) -> Membership:
        MEMBERSHIP_CHECKS.labels(verdict.state).inc()
        if verdict.state == UNKNOWN:
            self.log.warning(
                "Cannot check %s's membership of %s: %s (nothing changes until a check can)",
                name,
                workspace,
                verdict.reason,
            )
        return verdict

    async def keep_group(
        self, workspace: str, seen: set[str] = frozenset(), directory: "Directory | None" = None
    ) -> None:
        """A kept workspace group's members: add the members known (and ``seen``), remove those who left.
        Nothing if the service keeps no group for the workspace, or none was made yet.

        With a policy that names every member (static), from its records alone: a few Hub calls
        whatever the workspace's size. Otherwise each member of the group is asked about, from one
        paged listing of the Hub's users (``directory``, shared by a sweep's workspaces)."""
        group, managed = self.workspace_group(workspace)
        if not managed:
            return
        current = await self.groups.members(group)
        if current is None:
            return
        known = await self.policy.known_members(workspace) | set(seen)
        if self.policy.knows_every_member:
            joining, leaving = sorted(known - current), sorted(current - known)
        else:
            candidates = sorted(current | known)
            directory = directory or Directory(self)
            verdicts = [await directory.membership(n, workspace) for n in candidates]
            joining = [n for n, v in zip(candidates, verdicts, strict=True) if v.member and n not in current]
            leaving = [n for n, v in zip(candidates, verdicts, strict=True) if v.left and n in current]
        now = time.monotonic()
        joining = [n for n in joining if self._not_in_hub.get(n, 0) <= now]
        if joining:
            added = await self.groups.add(group, joining)
            # members the Hub does not know yet (they never logged in): not asked about again for a while
            self._not_in_hub = {n: t for n, t in self._not_in_hub.items() if t > now}
            self._not_in_hub.update(dict.fromkeys(set(joining) - set(added), now + NOT_IN_HUB_SECONDS))
        if leaving:
            self.log.info("Removing %s from %s: no members of %s now", leaving, group, workspace)
            await self.groups.remove(group, leaving)

    async def _keep_members(self, owner: str, server: str, workspace: str, names: list[str]) -> list[str]:
        """Revoke the shares of those who have left; those who could not be checked keep theirs."""
        verdicts = await asyncio.gather(*(self.membership(n, workspace) for n in names))
        for name, verdict in zip(names, verdicts, strict=True):
            if verdict.left:
                self.log.info(
                    "Revoking %s's share of %s/%s: %s (workspace %s)", name, owner, server, verdict.reason, workspace
                )
                await self.hub_shares.revoke(owner, server, name)
                SHARES_REVOKED.inc()
        return [n for n, verdict in zip(names, verdicts, strict=True) if not verdict.left]

    # -- what others shared with the caller -----------------------------------------------------

    async def received(self, user: dict[str, Any], mine: list[str]) -> list[dict[str, Any]]:
        """The workspace servers shared with ``user`` (the caller), in ``mine`` (their workspaces, as
        just checked) only."""
        if self.manage_workspace_groups:  # a member who joined since: into the groups of their workspaces
            for workspace in sorted(mine):
                await self.join_group(workspace, user["name"])
        shares = await self.hub_shares.received(user["name"])
        found = []
        for share in shares:
            server = share.get("server") or {}
            owner, name = (server.get("user") or {}).get("name"), server.get("name")
            if not owner or not name:
                continue
            options = await self._options_of(owner, name)
            workspace, image = options.get("workspace"), options.get("image")
            if not isinstance(workspace, str) or not isinstance(image, str) or server_name(workspace, image) != name:
                continue  # not one of this service's servers
            if workspace not in mine:  # they left the workspace: no share of it, theirs or their group's
                await self._take_back(share, user["name"], owner, name, workspace)
                continue
            found.append(
                {
                    "owner": owner,
                    "name": name,
                    "workspace": workspace,
                    "image": image,
                    "display_name": display_name(workspace, image),
                    "url": server.get("url"),
                    "ready": bool(server.get("ready")),
                }
            )
        return sorted(found, key=lambda s: (s["owner"], s["name"]))

    async def join_group(self, workspace: str, name: str) -> None:
        """Add ``name`` (a member, just checked) to the kept group of ``workspace``, if there is one:
        one Hub call, whatever the size of the workspace (the reconciler removes those who leave)."""
        group, managed = self.workspace_group(workspace)
        if managed:
            current = await self.groups.members(group)
            if current is not None and name not in current:
                await self.groups.add(group, [name])

    async def revoke_received(self, name: str, workspace: str) -> None:
        """Take away what was shared with ``name`` in ``workspace`` (they left it)."""
        for share in await self.hub_shares.received(name):
            server = share.get("server") or {}
            owner, server_name_ = (server.get("user") or {}).get("name"), server.get("name")
            if owner and server_name_ and (await self._options_of(owner, server_name_)).get("workspace") == workspace:
                await self._take_back(share, name, owner, server_name_, workspace)

    async def _take_back(self, share: dict[str, Any], name: str, owner: str, server: str, workspace: str) -> None:
        """One share ``name`` received of ``owner``'s ``server`` in a workspace they left: a direct share
        is revoked, their place in the kept workspace group it came through is taken away."""
        group, managed = self.workspace_group(workspace)
        via = (share.get("group") or {}).get("name")
        if via is None:
            self.log.info("Revoking %s's share of %s/%s: they left workspace %s", name, owner, server, workspace)
            await self.hub_shares.revoke(owner, server, name)
            SHARES_REVOKED.inc()
        elif via == group and managed:
            await self.groups.remove(group, [name])

    async def _options_of(self, owner: str, name: str) -> dict[str, Any]:
        try:
            model = await self.hub.get_user(owner)
        except NotFound:
            return {}
        server = (model.get("servers") or {}).get(name) or (model.get("stopped_servers") or {}).get(name) or {}
        return server.get("user_options") or {}

    # -- checking shares as time goes by (the reconciler calls these) ----------------------------

    async def reconcile_owner(self, owner: str) -> None:
        """Check the recipients of every share of ``owner``'s workspace servers; revoke non-members."""
        recipients: dict[str, set[str]] = {}  # server -> its recipients
        for share in await self.hub_shares.of_owner(owner):
            server, user = (share.get("server") or {}).get("name"), (share.get("user") or {}).get("name")
            if server and user:
                recipients.setdefault(server, set()).add(user)
        if not recipients:
            return
        for name, names in sorted(recipients.items()):
            workspace = (await self._options_of(owner, name)).get("workspace")
            if isinstance(workspace, str):
                await self._keep_members(owner, name, workspace, sorted(names))


def _require_server(request: Any) -> None:
    """A share needs the server to exist in the Hub (running, or stopped and not removed)."""
    if request.server is None and request.name not in (request.user.get("stopped_servers") or {}):
        raise NotFound(f"You have no server for {request.display_name}: start it, then share it.")


class Directory:
    """Memberships read from Hub users' models fetched once for a sweep: ``models`` given (the active
    listing the reconciler has), else every user's, listed (paged) when first needed: what keeping a
    workspace group costs a policy that cannot name its members (O(users / page) calls). A policy that
    reads ``auth_state``, which the Hub's lists never hold (claims), is asked user by user."""

    def __init__(self, sharing: Sharing, models: dict[str, dict[str, Any]] | None = None):
        self.sharing = sharing
        self._models = models
        self._reading: asyncio.Lock = asyncio.Lock()

    async def membership(self, name: str, workspace: str) -> Membership:
        if self.sharing.policy.reads_auth_state:
            return await self.sharing.membership(name, workspace)
        async with self._reading:
            if self._models is None:
                users = await every_item(self.sharing.hub, "/users", "the list of users")
                self._models = {u["name"]: u for u in users if isinstance(u, dict) and "name" in u}
        return await self.sharing.membership_in(self._models.get(name), name, workspace)
