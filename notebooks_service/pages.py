"""The service's HTML pages: jinja2 templates, loaded at the first page a browser asks for.

A deployment that serves only JSON clients never loads jinja2 (about 1.6 MB of
the process's memory).
"""

from typing import Any


class Pages:
    """Renders the page templates found in ``paths`` (the first folder that has a name wins)."""

    def __init__(self, paths: list[str]):
        self.paths = list(paths)
        self._environment = None

    def render(self, name: str, **context: Any) -> str:
        if self._environment is None:
            import jinja2

            loader = jinja2.FileSystemLoader(self.paths)
            self._environment = jinja2.Environment(loader=loader, autoescape=True)
            self._environment.filters["duration"] = in_words
        return self._environment.get_template(name).render(**context)


def in_words(seconds: float) -> str:
    """A duration as a page says it: "10 seconds", "a minute", "5 minutes", "2 hours"."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = round(seconds / size)
            return f"an {unit}" if count == 1 and unit == "hour" else "a minute" if count == 1 else f"{count} {unit}s"
    count = max(1, round(seconds))
    return "a second" if count == 1 else f"{count} seconds"
