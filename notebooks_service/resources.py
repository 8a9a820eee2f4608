"""Resource classes: the sizes a server can be started with (CPU, memory, GPUs, where it may run).

Configured once (``NotebooksService.resource_classes``); each image lists the
classes it allows (``resource_classes``) and its default
(``default_resource_class``); a workspace policy may narrow them per workspace.
The service offers and checks them, the Hub-side guard checks them again and
its placement applies the chosen one to KubeSpawner. With no classes
configured, there is nothing to choose and nothing is applied.
"""

from typing import Any

from .errors import InvalidRequest

#: a class's keys, and what KubeSpawner setting each becomes (see placement.WorkspacePlacement)
CLASS_KEYS = {
    "display_name",
    "description",
    "cpu_guarantee",
    "cpu_limit",
    "mem_guarantee",
    "mem_limit",
    "gpus",
    "gpu_resource",
    "node_selector",
    "tolerations",
}


def normalise_classes(classes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Check configured classes and fill in defaults; raise ValueError on a bad one."""
    checked = {}
    for name, entry in classes.items():
        if not isinstance(name, str) or not name or not name.replace("-", "").isalnum():
            raise ValueError(f"resource class name {name!r} must be letters, digits and hyphens")
        if not isinstance(entry, dict):
            raise ValueError(f"resource class {name!r} must be a dict of settings")
        unknown = sorted(set(entry) - CLASS_KEYS)
        if unknown:
            raise ValueError(f"resource class {name!r} has unknown setting {unknown[0]!r}")
        for key in ("cpu_guarantee", "cpu_limit"):
            value = entry.get(key, 1)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"resource class {name!r}: {key} must be a number of CPUs above 0, not {value!r}")
        for key in ("mem_guarantee", "mem_limit"):
            if key in entry:
                check_memory(name, key, entry[key])
        if not isinstance(entry.get("gpus", 0), int) or entry.get("gpus", 0) < 0:
            raise ValueError(f"resource class {name!r}: gpus must be a whole number")
        checked[name] = {
            "name": name,
            "display_name": entry.get("display_name") or name,
            "description": entry.get("description", ""),
            "gpus": entry.get("gpus", 0),
            "gpu_resource": entry.get("gpu_resource", "nvidia.com/gpu"),
            "node_selector": dict(entry.get("node_selector") or {}),
            "tolerations": list(entry.get("tolerations") or []),
            **{k: entry[k] for k in ("cpu_guarantee", "cpu_limit", "mem_guarantee", "mem_limit") if k in entry},
        }
    return checked


def check_memory(name: str, key: str, value: Any) -> int:
    """Bytes, read as KubeSpawner reads them (jupyterhub.traitlets.ByteSpecification: "2G", "512M", a number
    of bytes), above 0; ValueError naming the class and the key otherwise (at start-up, not at a count)."""
    from jupyterhub.traitlets import ByteSpecification
    from traitlets import TraitError

    try:
        amount = ByteSpecification().validate(None, value) if not isinstance(value, bool) else None
    except TraitError:
        amount = None
    if amount is None or amount <= 0:
        raise ValueError(
            f"resource class {name!r}: {key} {str(value)[:40]!r} is not an amount of memory above 0"
            " as KubeSpawner reads it (e.g. '2G', '512M', or a number of bytes)"
        )
    return amount


def check_catalogue_classes(images: dict[str, dict[str, Any]], classes: dict[str, dict[str, Any]]) -> None:
    """Raise ValueError if an image names a class that is not configured."""
    for image in images.values():
        named = list(image.get("resource_classes") or []) + [c for c in [image.get("default_resource_class")] if c]
        for name in named:
            if name not in classes:
                raise ValueError(f"image {image['name']!r} names resource class {name!r}, which is not configured")
        if image.get("default_resource_class") and image.get("resource_classes"):
            if image["default_resource_class"] not in image["resource_classes"]:
                raise ValueError(f"image {image['name']!r}: its default resource class is not among its classes")


def offered(image: dict[str, Any], classes: dict[str, dict[str, Any]], narrowed: list[str] | None = None) -> list[str]:
    """The classes ``image`` may run with (its own list, else all), within a workspace's ``narrowed`` list."""
    names = list(image.get("resource_classes") or classes)
    return [n for n in names if narrowed is None or n in narrowed]


def choose(
    image: dict[str, Any],
    classes: dict[str, dict[str, Any]],
    requested: Any,
    narrowed: list[str] | None = None,
) -> dict[str, Any] | None:
    """The class a start gets: the one asked for, if allowed; else the image's default. None without classes."""
    if not classes:
        if requested is not None:
            raise InvalidRequest("This service offers no resource classes: start without one.")
        return None
    allowed = offered(image, classes, narrowed)
    if requested is None:
        default = image.get("default_resource_class")
        name = default if default in allowed else (allowed[0] if allowed else None)
        if name is None:
            raise InvalidRequest(f"No resource class is allowed for {image['name']!r} here.")
        return classes[name]
    if not isinstance(requested, str) or requested not in allowed:
        choices = ", ".join(allowed) or "none"
        raise InvalidRequest(
            f"Resource class {str(requested)[:80]!r} is not offered for {image['name']!r} here: choose {choices}."
        )
    return classes[requested]


def described(classes: dict[str, dict[str, Any]], names: list[str]) -> dict[str, dict[str, Any]]:
    """The classes ``names``, each with its size in words, for a start form."""
    return {name: {**classes[name], "size": size(classes[name])} for name in names}


def size(resource_class: dict[str, Any]) -> str:
    """A class's size in a few words, for the start form."""
    parts = []
    if "cpu_limit" in resource_class:
        parts.append(f"{resource_class['cpu_limit']:g} CPU")
    if "mem_limit" in resource_class:
        parts.append(f"{resource_class['mem_limit']} memory")
    if resource_class["gpus"]:
        parts.append(f"{resource_class['gpus']} GPU" + ("s" if resource_class["gpus"] > 1 else ""))
    return ", ".join(parts)
