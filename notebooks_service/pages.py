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
        return self._environment.get_template(name).render(**context)
