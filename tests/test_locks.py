"""The lock files (locks/): what every install uses, tied to setup.cfg's ranges and to each other.

A lock that no longer satisfies setup.cfg (a range changed without `make lock`) fails here, before
a newcomer's install could. The z2jh ties are in test_chart.py."""

import os
import re

import pytest

from lock_files import LOCK_FILES, ROOT, hashed_entries, pins, requirements_in, setup_cfg_requirements, unmet

#: the Pythons the universal locks are checked for (setup.cfg: python_requires >=3.10)
PYTHONS = ("3.10", "3.11", "3.12", "3.13")


def read(path: str) -> str:
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


@pytest.mark.parametrize("lock", LOCK_FILES)
def test_every_locked_package_is_pinned_with_its_hashes(lock):
    entries = hashed_entries(lock)
    assert entries, f"{lock} pins nothing"
    assert [package for package, hashes in entries if hashes == 0] == []


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize(
    ("lock", "extras", "inputs"),
    [
        ("test.txt", ("test", "bench"), ()),
        ("jh5.txt", ("test",), ("jh5.in",)),
        ("service.txt", (), ()),
        ("hub-image.txt", (), ("hub-image.in",)),
    ],
)
def test_each_lock_satisfies_what_it_was_made_from(lock, extras, inputs, python):
    if lock == "hub-image.txt" and python != "3.12":
        pytest.skip("the hub image runs z2jh 4.4.0's Python, 3.12")
    requirements = setup_cfg_requirements(*extras) + [r for name in inputs for r in requirements_in(name)]
    assert unmet(requirements, pins(lock, python), python) == [], f"run `make lock`: {lock} is older than its inputs"


def test_the_installers_use_the_locks_and_nothing_else():
    makefile = read("Makefile")
    # both environments are synced to their locks with hashes checked; the project itself without deps
    assert re.search(r"pip sync .*--require-hashes \$\(LOCKS\)/test\.txt", makefile)
    assert re.search(r"pip sync .*--require-hashes \$\(LOCKS\)/jh5\.txt", makefile)
    assert "--require-hashes --no-deps -r $(LOCKS)/uv.txt" in makefile
    installs = [line for line in makefile.splitlines() if re.search(r"\bpip install\b", line)]
    assert installs and all("--no-deps" in line for line in installs), installs
    dockerfile = read("Dockerfile")
    assert "--require-hashes -r locks/service.txt" in dockerfile
    assert "--require-hashes -r /tmp/hub-image.txt" in dockerfile
    assert [line for line in dockerfile.splitlines() if "pip install" in line and "-r " not in line] == [
        line for line in dockerfile.splitlines() if "pip install" in line and "--no-deps" in line
    ]
    # CI proves a fresh install: no cache of an earlier run can hide a lock that does not install
    ci = read(".ci/run")
    assert "UV_NO_CACHE=1" in ci and "PIP_NO_CACHE_DIR=1" in ci


def test_the_test_environments_run_the_jupyterhub_versions_they_are_named_for():
    assert pins("test.txt")["jupyterhub"].startswith("6.")
    jh5 = {r.name: str(r.specifier) for r in requirements_in("jh5.in")}
    locked = pins("jh5.txt")
    assert {name: f"=={locked[name]}" for name in jh5} == jh5
