"""The JSON API's OpenAPI 3.1 description: ``api.yml``, served at ``<prefix>/api/openapi.json``.

The document is written by hand beside the route table (``routes.py``) and held
to it by tests/test_openapi.py; here it is only filled with the prefix the
service is mounted at and its version. YAML is read on the first request for
it, so a process nobody asks pays nothing for it.
"""

import copy
import functools
import json
import os
from typing import Any

DOCUMENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "api.yml")


@functools.cache
def _document() -> dict[str, Any]:
    import yaml

    with open(DOCUMENT, encoding="utf-8") as f:
        return yaml.safe_load(f)


def describe(prefix: str, version: str) -> dict[str, Any]:
    """The OpenAPI document of the service mounted at ``prefix`` (e.g. /services/notebooks/)."""
    document = copy.deepcopy(_document())
    document["info"]["version"] = version
    document["servers"] = [{"url": prefix.rstrip("/")}]
    return document


@functools.cache
def described_json(prefix: str, version: str) -> str:
    """``describe`` as the JSON the service answers with (made once per process)."""
    return json.dumps(describe(prefix, version))
