"""The OpenAPI description, held against the running service with a real Hub behind it.

schemathesis generates requests from the description and checks every answer
against it (no 5xx, documented status codes, content types and bodies); the
hostile requests below are the ones a fuzzer may not think of.
"""

import json
import os
import subprocess
import sys

import pytest
import requests

from notebooks_service import __version__
from notebooks_service.naming import WORKSPACE_MAX_LENGTH
from notebooks_service.openapi import describe
from notebooks_service.routes import ROUTES

from conftest import stop_all_servers

#: generated cases per operation; `make fuzz` runs many more (NOTEBOOKS_FUZZ_EXAMPLES)
FUZZ_EXAMPLES = int(os.environ.get("NOTEBOOKS_FUZZ_EXAMPLES", "70"))
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "ignored_auth",
    "unsupported_method",
]


@pytest.fixture
def description(hub) -> dict:
    response = requests.get(hub.direct_service_url + "api/openapi.json", timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    return response.json()


HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def test_the_document_describes_exactly_the_route_tables_api():
    document = describe("/any/prefix/", "0.0.0")
    described = {path: HTTP_METHODS & set(item) for path, item in document["paths"].items()}
    assert described == {r.path: r.described_methods for r in ROUTES if r.api}
    assert all(described.values())
    # what it says of names is what naming.py does
    workspace = document["components"]["parameters"]["workspace"]["description"]
    assert f"at most {WORKSPACE_MAX_LENGTH} lowercase" in workspace


def test_every_route_answers_only_its_methods(hub):
    # a route the table refuses a method for says which it takes (RFC 9110's Allow)
    response = requests.delete(hub.direct_service_url + "alpha/python/notes.ipynb", timeout=10)
    assert response.status_code == 405 and response.headers["Allow"] == "GET, POST, OPTIONS"


def test_the_service_serves_the_document_with_its_prefix_and_version(description, hub):
    assert description["openapi"].startswith("3.1")
    assert description["servers"] == [{"url": "/services/notebooks"}]
    assert description["info"]["version"] == __version__
    assert description == describe("/services/notebooks/", __version__)
    # and it is what the service says through the Hub's proxy too
    assert requests.get(hub.service_url + "api/openapi.json", timeout=10).json() == description


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_description(hub, tokens, tmp_path):
    report = tmp_path / "schemathesis.json"
    command = [
        os.path.join(os.path.dirname(sys.executable), "st"),
        "run",
        hub.direct_service_url + "api/openapi.json",
        f"--max-examples={FUZZ_EXAMPLES}",
        "--checks=" + ",".join(CHECKS),
        "--phases=examples,coverage,fuzzing",
        "--seed=20261125",
        "--workers=2",
        "--request-timeout=30",
        "--generation-database=none",
        "--report=json",
        f"--report-json-path={report}",
        "--no-color",
        "-H",
        f"Authorization: token {tokens['bob']}",
        "-H",
        "Accept: application/json",
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    finally:
        stop_all_servers(hub, "bob")
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    generated = json.loads(report.read_text())["test_cases"]["generated"]
    assert generated >= min(500, 8 * FUZZ_EXAMPLES), f"only {generated} cases ran"
