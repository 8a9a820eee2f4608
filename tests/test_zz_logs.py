"""Runs last (by name): no log the suite wrote holds a secret, or a traceback of a client that left.

Every Hub's log (with its proxy's and its managed service's output) and every
standalone service's log is under the session's temporary folder. Known
secrets (the tokens the tests made) must not appear at all; nor may anything
shaped like a secret in a URL, a header or a JWT.
"""

import re
from pathlib import Path

import pytest

from conftest import ISSUED_SECRETS

SHAPES = {
    "secret query value": re.compile(
        r"[?&](?:token|code|state|_xsrf|access_token|refresh_token)=(?!\[secret\])[^&\s\"'\]\)]{6,}", re.IGNORECASE
    ),
    # a header's value: Authorization: token|Bearer <credential>, Cookie: name=<value>
    "credentials header": re.compile(
        r"\b(?:Authorization:\s+(?:token|bearer|basic)\s+|Cookie:\s+[\w-]+=)[\w+/=.-]{16,}", re.IGNORECASE
    ),
    "JWT": re.compile(r"eyJ[\w-]{10,}\.eyJ[\w-]{10,}\.[\w-]{10,}"),
}
#: what a departed client must not leave in the log
LEAVING = ("Future exception was never retrieved", "Task exception was never retrieved", "StreamClosedError")


def suite_logs(tmp_path_factory) -> list[Path]:
    return sorted(p for p in tmp_path_factory.getbasetemp().rglob("*.log") if p.is_file())


def test_no_log_of_the_suite_holds_a_secret(tmp_path_factory):
    logs = suite_logs(tmp_path_factory)
    if not logs:
        pytest.skip("no other test wrote a log in this session")
    found = []
    for path in logs:
        text = path.read_text(errors="replace")
        for secret in ISSUED_SECRETS:
            if secret in text:
                found.append(f"{path}: a token the tests issued ({secret[:4]}...)")
        for number, line in enumerate(text.splitlines(), 1):
            for shape, pattern in SHAPES.items():
                if pattern.search(line):
                    found.append(f"{path}:{number}: {shape}: {line[:300]}")
    assert not found, "\n".join(found[:30])


def test_no_log_of_the_suite_has_a_traceback_of_a_client_leaving(tmp_path_factory):
    logs = suite_logs(tmp_path_factory)
    if not logs:
        pytest.skip("no other test wrote a log in this session")
    found = []
    for path in logs:
        for number, block in tracebacks(path.read_text(errors="replace").splitlines()):
            # ours: through this package (a test kills a Hub on purpose, and its culler says so)
            if "notebooks_service" in block and any(marker in block for marker in LEAVING):
                found.append(f"{path}:{number}: {block[-300:]}")
    assert not found, "\n".join(found[:30])


def tracebacks(lines: list[str]):
    """(line number, text) of each logged traceback, and of each 'never retrieved' line."""
    number = 0
    while number < len(lines):
        line = lines[number]
        if "never retrieved" in line:
            yield number + 1, line + " notebooks_service"  # always a bug, whoever's
        if "Traceback (most recent call last)" in line:
            start, block = number, [line]
            number += 1
            while number < len(lines) and (lines[number].startswith((" ", "\t")) or not lines[number].strip()):
                block.append(lines[number])
                number += 1
            if number < len(lines):
                block.append(lines[number])  # the exception itself
            yield start + 1, "\n".join(block)
        number += 1
