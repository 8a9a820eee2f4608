"""The image catalogue: which notebook images users may start."""

from typing import Any

from .errors import NotFound


def normalise_catalogue(images: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Check a configured catalogue and fill in defaults; raise ValueError on a bad entry.

    An entry is either a container image reference (``"python": "quay.io/jupyter/base-notebook"``)
    or a dict with ``image`` and optional ``display_name``, ``description`` and any
    extra keys a spawner hook may use.
    """
    catalogue = {}
    for name, entry in images.items():
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"image name {name!r} must be a non-empty string without '/'")
        if isinstance(entry, str):
            entry = {"image": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("image"), str):
            raise ValueError(f"image {name!r} needs an 'image' (container image reference)")
        catalogue[name] = {
            "name": name,
            "display_name": entry.get("display_name") or name,
            "description": entry.get("description", ""),
            **{k: v for k, v in entry.items() if k not in {"display_name", "description"}},
        }
    return catalogue


def lookup_image(catalogue: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    """The catalogue entry for ``name``, or a 404 that lists what is on offer."""
    try:
        return catalogue[name]
    except KeyError:
        offered = ", ".join(sorted(catalogue)) or "none"
        raise NotFound(f"Unknown image {name[:80]!r}. Available images: {offered}") from None
