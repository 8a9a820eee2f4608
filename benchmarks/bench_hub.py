"""The Hub `make bench` measures: the demo with N_USERS members of "bench", its service reaching the
Hub through a metering proxy, the floor beside it; and what a figure reads of its processes."""

import os
import secrets
import tempfile

from notebooks_service.demo.app import SERVICE_CONFIG as DEMO_SERVICE_CONFIG
from notebooks_service.demo.app import DemoHub, free_port

from hub_meter import HubMeter

HERE = os.path.dirname(os.path.abspath(__file__))
N_USERS = 60


def user_names(count: int) -> list[str]:
    """The bench's users: u00, u01, ... (hub_bench_config.py allows the same)."""
    return [f"u{i:02d}" for i in range(count)]


def bench_hub(n_users: int = N_USERS, service_config_extra: str = "") -> tuple[DemoHub, HubMeter, str]:
    """The Hub (not started), the meter between its service and its API, and an admin token of it.

    ``BENCH_SERVICE_CONFIG`` in the environment (an experiment's; ``HUB_PORT`` in it becomes the
    Hub's own port) and ``service_config_extra`` are added to the service's configuration."""
    run_dir = tempfile.mkdtemp(prefix="notebooks-bench-")
    hub_port = free_port()
    meter = HubMeter(hub_port)
    users = user_names(n_users)
    service_config = os.path.join(run_dir, "notebooks_service_config.py")
    with open(service_config, "w") as f:
        f.write(
            f"load_subconfig({DEMO_SERVICE_CONFIG!r})\n"
            "c = get_config()\n"
            "c.NotebooksService.workspace_policy_class = 'static'\n"
            f"c.NotebooksService.workspace_members = {dict.fromkeys(users, ['bench'])!r}\n"
            f"c.NotebooksService.hub_api_url = {meter.url!r}\n"
            "c.NotebooksService.log_level = 'WARN'\n"
            + os.environ.get("BENCH_SERVICE_CONFIG", "").replace("HUB_PORT", str(hub_port))
            + service_config_extra
        )
    admin_token = secrets.token_hex(16)
    hub = DemoHub(
        run_dir,
        hub_port=hub_port,
        extra_config=os.path.join(HERE, "hub_bench_config.py"),
        service_config=service_config,
        env={
            "NOTEBOOKS_BENCH_ADMIN_TOKEN": admin_token,
            "NOTEBOOKS_BENCH_USERS": str(n_users),
            "NOTEBOOKS_BENCH_FLOOR_PORT": str(free_port()),
        },
    )
    return hub, meter, admin_token


def service_pid(hub: DemoHub, marker: bytes = b"notebooks_service") -> int:
    """A service process the Hub started: its child whose command line holds ``marker``."""
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdline = f.read().split(b"\0")
                with open(f"/proc/{pid}/status") as f:
                    ppid = int(next(line for line in f if line.startswith("PPid:")).split()[1])
            except OSError:
                continue
            if ppid == hub.process.pid and any(part == marker or part.endswith(b"/" + marker) for part in cmdline):
                return int(pid)
    raise RuntimeError("service process not found")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS:")).split()[1]) / 1024
