"""What a caller may start: their workspaces, each with its images and classes, its quota, its
storage and what runs there (``GET <prefix>/workspaces``, and the room the start forms show).

Everything a web presence needs to draw its own launcher, computed by the same rules the
launcher and the Hub-side guard apply, so that what is offered is what a start accepts.
"""

from typing import Any

from . import resources
from .errors import InvalidRequest
from .naming import check_workspace
from .quotas import QUOTA_KEYS, Quotas, Tally, Usage, class_usage, format_bytes


def described_class(resource_class: dict[str, Any]) -> dict[str, Any]:
    """A class as clients see it: names, words, and what it holds (CPUs, bytes of memory, GPUs)."""
    holds = class_usage(resource_class)
    return {
        "name": resource_class["name"],
        "display_name": resource_class["display_name"],
        "description": resource_class["description"],
        "size": resources.size(resource_class),
        "cpu": holds.cpu,
        "memory": holds.memory,
        "gpus": holds.gpus,
    }


def images_in(launcher: Any, workspace: str) -> list[dict[str, Any]]:
    """The catalogue's images as they may start in ``workspace``: with the classes allowed there."""
    classes, narrowed = launcher.resource_classes, launcher.policy.resource_classes_in(workspace)
    images = []
    for name, entry in launcher.catalogue.items():
        allowed = resources.offered(entry, classes, narrowed) if classes else []
        if classes and not allowed:
            continue  # nothing of it may start here
        default = resources.choose(entry, classes, None, narrowed) if classes else None
        images.append(
            {
                "name": name,
                "display_name": entry["display_name"],
                "description": entry.get("description", ""),
                "resource_classes": [described_class(classes[c]) for c in allowed],
                "default_resource_class": default["name"] if default else None,
            }
        )
    return images


def room(limits: dict[str, float], usage: Usage) -> dict[str, Any] | None:
    """A quota and its use: {"quota": {...}, "usage": {...}, "text": "1 of 1 running servers in use"}."""
    if not limits:
        return None
    used = usage.as_dict()
    parts = []
    for key in QUOTA_KEYS:
        if key in limits:
            show = format_bytes if key == "memory" else (lambda v: f"{v:g}")
            unit = {"servers": " running servers", "cpu": " CPUs", "memory": " of memory", "gpus": " GPUs"}[key]
            parts.append(f"{show(used[key])} of {show(limits[key])}{unit}")
    return {"quota": dict(limits), "usage": used, "text": ", ".join(parts) + " in use"}


def rooms(quotas: Quotas, workspaces: list[str], tallies: dict[str, Tally]) -> dict[str, dict[str, Any]]:
    """Workspace -> its room, for the start forms (only those with a quota): in words, whether its
    running servers are as many as it allows (``full``: no start can fit), and whose they are."""
    found = {}
    for w in workspaces:
        limits, tally = quotas.for_workspace(w), tallies[w]
        shown = room(limits, tally.usage)
        if shown:
            full = "servers" in limits and tally.usage.servers >= limits["servers"]
            found[w] = {"text": shown["text"], "full": full, "held_by": list(tally.named) if full else []}
    return found


def workspace_offers(
    launcher: Any, user: dict[str, Any], workspaces: list[str], usage: tuple[dict[str, Tally], Tally] | None
) -> dict[str, Any]:
    """The caller's workspaces with what may start there, each one's room, and the caller's own."""
    quotas: Quotas = launcher.quotas
    tallies, own = usage or ({}, Tally())
    mine = launcher.servers(user, workspaces)
    listed = []
    for workspace in workspaces:
        try:
            check_workspace(workspace)
        except InvalidRequest:
            continue  # a claim (say) that no start could use
        listed.append(
            {
                "name": workspace,
                "images": images_in(launcher, workspace),
                "room": room(quotas.for_workspace(workspace), tallies.get(workspace, Tally()).usage),
                "storage": launcher.placement.storage(workspace),
                "servers": [s for s in mine if s["workspace"] == workspace],
            }
        )
    return {"workspaces": listed, "room": room(quotas.user_quota, own.usage)}
