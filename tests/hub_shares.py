"""Shares as tests make and read them: through the service, and as the Hub has them."""

import json

from conftest import admin_request

JSON = {"Content-Type": "application/json"}


def hub_shares(hub, owner: str, server: str | None = None) -> list[str]:
    """``user/server`` (``group:name/server``) of each of ``owner``'s shares, as the Hub has them."""
    path = f"/shares/{owner}" + (f"/{server}" if server else "")
    code, shares = admin_request(hub, "GET", path)
    assert code in (200, 404), shares
    if code == 404:
        return []
    return sorted(
        f"{s['user']['name'] if s.get('user') else 'group:' + s['group']['name']}/{s['server']['name']}"
        for s in shares["items"]
    )


async def share(client, path: str, users) -> tuple[int, dict]:
    """Share the server at ``path`` with ``users`` through the service: (status, answer)."""
    return await client.json("POST", path + "/-/shares", body=json.dumps({"users": users}), headers=JSON)
