"""Every item of a list the Hub pages, in one place (as jupyterhub-idle-culler's fetch_paginated).

The Hub answers a list asked with ``Accept: application/jupyterhub-pagination+json`` as
``{"items": [...], "_pagination": {"offset", "limit", "total", "next"}}``, and caps ``limit`` at its
``api_page_max_limit``: a page shorter than asked for is not the last one. Only ``next`` says so.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .hub import HubClient

PAGINATED = "application/jupyterhub-pagination+json"
#: the page size asked for (the Hub may answer with fewer)
PAGE = 200


async def every_item(hub: "HubClient", path: str, what: str, *, missing_ok: bool = False) -> list[dict[str, Any]]:
    """All items of ``path``, page by page as ``_pagination.next`` leads; [] for a 404 if ``missing_ok``."""
    items: list[dict[str, Any]] = []
    offset = 0
    separator = "&" if "?" in path else "?"
    while True:
        response = await hub.api_request("GET", f"{path}{separator}offset={offset}&limit={PAGE}", accept=PAGINATED)
        if response.code == 404 and missing_ok:
            return []
        body = response.body
        page = body.get("items") if isinstance(body, dict) else None
        if response.code != 200 or not isinstance(page, list):
            raise hub.unexpected_answer(what, response)
        items.extend(page)
        following = (body.get("_pagination") or {}).get("next")
        next_offset = following.get("offset") if isinstance(following, dict) else None
        # no next page, or one that would not move on (a Hub's bug must not loop us forever)
        if not isinstance(next_offset, int) or next_offset <= offset or not page:
            return items
        offset = next_offset
