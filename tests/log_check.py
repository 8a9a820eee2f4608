"""What the session-finish check in conftest.py looks for in every log the suite wrote.

Every Hub's log (with its proxy's and its managed service's output) and every
standalone service's log is under the session's temporary folder. Known
secrets (the tokens the tests made) must not appear at all; nor may anything
shaped like a secret in a URL, a header or a JWT; nor a traceback of a client
that left.
"""

import re
from pathlib import Path

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


def suite_logs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.log") if p.is_file())


def secrets_in(logs: list[Path], issued: set[str]) -> list[str]:
    """Where a log holds a token the tests issued, or anything shaped like a secret."""
    found = []
    for path in logs:
        text = path.read_text(errors="replace")
        for secret in issued:
            if secret in text:
                found.append(f"{path}: a token the tests issued ({secret[:4]}...)")
        for number, line in enumerate(text.splitlines(), 1):
            for shape, pattern in SHAPES.items():
                if pattern.search(line):
                    found.append(f"{path}:{number}: {shape}: {line[:300]}")
    return found


def tracebacks_of_leaving_clients(logs: list[Path]) -> list[str]:
    """Where a log has a traceback, through this package, of a client that went away."""
    found = []
    for path in logs:
        for number, block in tracebacks(path.read_text(errors="replace").splitlines()):
            # ours: through this package (a test kills a Hub on purpose, and its culler says so)
            if "notebooks_service" in block and any(marker in block for marker in LEAVING):
                found.append(f"{path}:{number}: {block[-300:]}")
    return found


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
