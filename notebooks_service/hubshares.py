"""JupyterHub's own sharing (5.0 and later: ``/hub/api/shares``), as the service uses it.

A share lets one user reach another's server through the Hub's proxy, as JupyterHub
grants it (``access:servers!server=<owner>/<name>``); the Hub deletes a server's shares
with the server. The service's role needs ``shares`` (which holds ``access:servers``:
JupyterHub lets only who may reach a server share it).
"""

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .errors import InvalidRequest, NotFound
from .hubpages import every_item

if TYPE_CHECKING:
    from .hub import HubClient


#: the Hub's refusal of a group change naming a user it does not know (apihandlers/groups.py)
_NO_SUCH_USER = re.compile(r"No such user: (.+)")


def _q(segment: str) -> str:
    return quote(segment, safe="")


class HubShares:
    """The Hub's share API for one server, and the shares a user received."""

    def __init__(self, hub: "HubClient"):
        self.hub = hub

    def _path(self, owner: str, server: str) -> str:
        return f"/shares/{_q(owner)}/{_q(server)}"

    async def _listed(self, path: str, what: str) -> list[dict[str, Any]]:
        """Every share of a list the Hub pages; none if the Hub has no such user or server."""
        return await every_item(self.hub, path, what, missing_ok=True)

    async def of_server(self, owner: str, server: str) -> list[dict[str, Any]]:
        """The server's shares."""
        return await self._listed(self._path(owner, server), "a list of shares")

    async def of_owner(self, owner: str) -> list[dict[str, Any]]:
        """Every share of every server of ``owner``."""
        return await self._listed(f"/shares/{_q(owner)}", "a list of shares")

    async def grant(self, owner: str, server: str, user: str | None = None, *, group: str | None = None) -> None:
        """Share the server with a user, or with a group (its members now and later)."""
        with_whom = {"user": user} if group is None else {"group": group}
        response = await self.hub.api_request("POST", self._path(owner, server), with_whom)
        if response.code == 404:
            raise NotFound(f"No such server: {owner}/{server}.")
        if response.code == 400 and "No such user" in response.message:
            raise InvalidRequest(f"No such user: {str(user)[:80]!r}.")
        if response.code != 200:
            raise self.hub.unexpected_answer("a share", response)

    async def revoke(self, owner: str, server: str, user: str | None = None, *, group: str | None = None) -> None:
        with_whom = {"user": user} if group is None else {"group": group}
        response = await self.hub.api_request("PATCH", self._path(owner, server), with_whom)
        if response.code not in (200, 404):  # 404: the server is gone, and its shares with it
            raise self.hub.unexpected_answer("a revocation of a share", response)

    async def revoke_all(self, owner: str, server: str) -> None:
        response = await self.hub.api_request("DELETE", self._path(owner, server))
        if response.code not in (204, 404):
            raise self.hub.unexpected_answer("a revocation of shares", response)

    async def received(self, user: str) -> list[dict[str, Any]]:
        """The shares ``user`` holds (directly or through a group)."""
        return await self._listed(f"/users/{_q(user)}/shared", "a list of shared servers")


class HubGroups:
    """The Hub groups a workspace-wide share goes to, where the service keeps their members
    (``Sharing.manage_workspace_groups``: the role then needs ``admin:groups``)."""

    def __init__(self, hub: "HubClient"):
        self.hub = hub

    async def members(self, group: str) -> set[str] | None:
        """The group's members; None if there is no such group."""
        response = await self.hub.api_request("GET", f"/groups/{_q(group)}")
        if response.code == 404:
            return None
        if response.code != 200 or not isinstance(response.body, dict):
            raise self.hub.unexpected_answer("a group", response)
        return set(response.body.get("users") or [])

    async def create(self, group: str) -> None:
        response = await self.hub.api_request("POST", f"/groups/{_q(group)}")
        if response.code not in (201, 409):  # 409: made already (by another replica, say)
            raise self.hub.unexpected_answer("a new group", response)

    async def add(self, group: str, users: list[str]) -> list[str]:
        """Add ``users`` in one call; those the Hub does not know yet (members named in a policy
        who never logged in) are left out, one more call each. Returns those added."""
        users = list(users)
        while users:
            response = await self.hub.api_request("POST", f"/groups/{_q(group)}/users", {"users": users})
            if response.code == 200:
                return users
            unknown = _NO_SUCH_USER.fullmatch(response.message or "") if response.code == 400 else None
            if unknown is None or unknown.group(1) not in users:
                raise self.hub.unexpected_answer("a change of a group's members", response)
            users.remove(unknown.group(1))
        return users

    async def remove(self, group: str, users: list[str]) -> None:
        response = await self.hub.api_request("DELETE", f"/groups/{_q(group)}/users", {"users": users})
        if response.code not in (200, 404):
            raise self.hub.unexpected_answer("a change of a group's members", response)
