"""Ports for the demo's processes (the proxy, the Hub's API, the service, the object storage, servers).

Alone (``make demo``), a port is one the kernel calls free now. A test run starts dozens of demos
at once, on several pytest-xdist workers, each Hub handing its ports to processes that bind them
later; a port chosen free can be taken in between (seen: a test Hub's proxy API port answering as
another test's server). So a run sets ``NOTEBOOKS_PORT_REGISTRY`` to a file, and every process of
the run (workers, Hubs, their servers) then takes its ports from one range, below the kernel's
ephemeral range (which port-0 binds and outgoing connections use), each port written to that file
under a lock: no two processes of the run are ever handed the same port.
"""

import contextlib
import fcntl
import os
import random
import socket

REGISTRY_ENV = "NOTEBOOKS_PORT_REGISTRY"
#: the range handed out with a registry (``first-last``); capped below the ephemeral range
RANGE_ENV = "NOTEBOOKS_PORT_RANGE"
DEFAULT_RANGE = (20000, 32000)

_handed_out: set[int] = set()  # without a registry: what this process handed out


def free_port() -> int:
    """A port free on 127.0.0.1 now, never handed out before by this process, nor (with a
    registry) by any other process of the run."""
    registry = os.environ.get(REGISTRY_ENV)
    if registry:
        return _from_registry(registry)
    while True:
        port = _kernel_port()
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def _kernel_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_range() -> tuple[int, int]:
    first, last = DEFAULT_RANGE
    if os.environ.get(RANGE_ENV):
        first, _, last = os.environ[RANGE_ENV].partition("-")
        first, last = int(first), int(last)
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral_first = int(f.read().split()[0])
        last = min(last, ephemeral_first - 1)
    if not 1024 <= first <= last:
        raise ValueError(f"{RANGE_ENV}: no ports to hand out in {first}-{last} below the ephemeral range")
    return first, last


def _from_registry(path: str) -> int:
    first, last = port_range()
    with open(path, "a+") as registry:
        fcntl.flock(registry, fcntl.LOCK_EX)  # released when the file closes
        registry.seek(0)
        taken = [int(line) for line in registry.read().split()]
        # a new run starts at a random place: another run on this machine (its own registry) is
        # unlikely to be handed the same ports while both are young
        start = taken[-1] + 1 if taken else random.randint(first, last)
        taken = set(taken)
        size = last - first + 1
        for offset in range(size):
            port = first + (start - first + offset) % size
            if port not in taken and _bindable(port):
                registry.write(f"{port}\n")
                registry.flush()
                return port
    raise RuntimeError(
        f"no free port left in {first}-{last}: each was handed out in this run ({REGISTRY_ENV}={path}) "
        "or another program holds it"
    )
