"""Reading the lock files in locks/ (uv pip compile's output) and setup.cfg's ranges, for the tests
that tie them together."""

import configparser
import os
import re

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCKS = os.path.join(ROOT, "locks")
#: what `make lock` writes, and what installs each (Makefile, Dockerfile)
LOCK_FILES = ("uv.txt", "build.txt", "test.txt", "jh5.txt", "service.txt", "hub-image.txt")

_PIN = re.compile(r"^([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def environment(python: str) -> dict[str, str]:
    """The marker environment of CPython ``python`` (e.g. "3.11") on Linux x86_64."""
    return {
        "python_version": python,
        "python_full_version": f"{python}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
        "platform_release": "",
        "platform_version": "",
        "extra": "",
    }


def read(name: str) -> str:
    with open(os.path.join(LOCKS, name)) as f:
        return f.read()


def pins(name: str, python: str = "3.11") -> dict[str, str]:
    """The lock's package -> version for that Python (a universal lock forks by Python version)."""
    found: dict[str, str] = {}
    for line in read(name).splitlines():
        match = _PIN.match(line)
        if match and (not match[3] or Marker(match[3]).evaluate(environment(python))):
            package = canonicalize_name(match[1])
            assert package not in found, f"{name}: {package} twice for Python {python}"
            found[package] = match[2]
    return found


def hashed_entries(name: str) -> list[tuple[str, int]]:
    """Each pinned entry of the lock with the number of hashes it carries."""
    entries: list[tuple[str, int]] = []
    for line in read(name).splitlines():
        if _PIN.match(line):
            entries.append((line.split("==")[0], 0))
        elif line.strip().startswith("--hash=sha256:") and entries:
            entries[-1] = (entries[-1][0], entries[-1][1] + 1)
    return entries


def requirements_in(name: str) -> list[Requirement]:
    """The requirements of a locks/*.in file."""
    with open(os.path.join(LOCKS, name)) as f:
        return [Requirement(line) for line in (raw.split("#")[0].strip() for raw in f) if line]


def setup_cfg_requirements(*extras: str) -> list[Requirement]:
    """setup.cfg's install_requires and those extras, %(other)s references expanded as setuptools does."""
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "setup.cfg"))
    lines = config["options"]["install_requires"].splitlines()
    for extra in extras:
        lines += config["options.extras_require"][extra].splitlines()
    return [Requirement(line) for line in (raw.split("#")[0].strip() for raw in lines) if line]


def unmet(requirements: list[Requirement], locked: dict[str, str], python: str) -> list[str]:
    """The requirements (for that Python) the locked versions do not satisfy, in words."""
    missing = []
    for requirement in requirements:
        if requirement.marker and not requirement.marker.evaluate(environment(python)):
            continue
        version = locked.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            missing.append(f"{requirement} (locked: {version})")
    return missing
