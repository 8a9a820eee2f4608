# JupyterHub configuration of the demo (started by `notebooks-service demo`, and by the tests).
# Everything machine-specific comes from NOTEBOOKS_DEMO_* variables that DemoHub sets.
import os
import sys

from notebooks_service.demo import (
    ADMIN_USER,
    CULL_TIMEOUT,
    CULLER_SCOPES,
    MEMBERSHIP_CHECK_INTERVAL,
    RECONCILER_NAME,
    RECONCILER_SCOPES,
    SERVICE_NAME,
    SERVICE_SCOPES,
    USER_SCOPES,
    USERS,
    WORKSPACE_GROUPS,
    object_storage,
    select_local_image,
)
from notebooks_service.demo.app import SERVICE_CONFIG
from notebooks_service.demo.object_storage import DEMO_CREDENTIALS
from notebooks_service.hubside import setup_workspace_guard

c = get_config()  # noqa: F821
env = os.environ
run_dir = env["NOTEBOOKS_DEMO_RUN_DIR"]
ip = env.get("NOTEBOOKS_DEMO_IP", "127.0.0.1")
bin_dir = os.path.dirname(sys.executable)
# the service and the Hub-side guard read the same file: one catalogue, one policy
service_config = env.get("NOTEBOOKS_DEMO_SERVICE_CONFIG") or SERVICE_CONFIG
# the culler's timeout, which the service shows users as "stops at ... if idle"
cull_timeout = env.get("NOTEBOOKS_DEMO_CULL_TIMEOUT", str(CULL_TIMEOUT))

# one run folder per Hub: database, secrets, pid files, user homes
c.JupyterHub.ip = ip
c.JupyterHub.port = int(env["NOTEBOOKS_DEMO_PORT"])
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(env["NOTEBOOKS_DEMO_HUB_PORT"])
c.JupyterHub.db_url = f"sqlite:///{run_dir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{run_dir}/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = f"{run_dir}/jupyterhub.pid"
c.ConfigurableHTTPProxy.pid_file = f"{run_dir}/proxy.pid"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{env['NOTEBOOKS_DEMO_PROXY_API_PORT']}"
c.ConfigurableHTTPProxy.command = [env["NOTEBOOKS_DEMO_PROXY_COMMAND"]]

# JupyterHub 6.1 answers 500 to a start whose spawn outlives slow_spawn_timeout; 0 makes it answer 202 at once
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}
c.JupyterHub.allow_named_servers = True
# the Hub's front door (/hub/, and after login) leads to the service, where workspace servers start
c.JupyterHub.default_url = f"/services/{SERVICE_NAME}/"

# any password logs in as alice, bob or admin (who changes the workspaces' members on /hub/admin)
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = {*USERS, ADMIN_USER}
c.Authenticator.admin_users = {ADMIN_USER}
# each workspace is a Hub group (the hub-groups policy); a restart of the demo restores these members
c.JupyterHub.load_groups = {workspace: {"users": members} for workspace, members in WORKSPACE_GROUPS.items()}

c.JupyterHub.spawner_class = "notebooks_service.demo.spawner.DemoSpawner"
# a home per server, as z2jh gives named servers; workspace/ in it is the workspace's shared folder
c.DemoSpawner.home_dir_template = f"{run_dir}/home/{{username}}/{{servername}}"
c.DemoSpawner.workspaces_dir = f"{run_dir}/workspaces"
c.DemoSpawner.logs_dir = f"{run_dir}/logs"
c.Spawner.cmd = [os.path.join(bin_dir, "jupyterhub-singleuser")]
c.Spawner.pre_spawn_hook = select_local_image
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60
if os.getuid() == 0:
    c.Spawner.args = ["--allow-root"]  # CI and these machines run as root

# where the servers' output is; how long the culler lets them idle; where the buckets are
service_environment = {
    "NOTEBOOKS_DEMO_RUN_DIR": run_dir,
    "NOTEBOOKS_DEMO_CULL_TIMEOUT": cull_timeout,
    "NOTEBOOKS_DEMO_S3_URL": env.get("NOTEBOOKS_DEMO_S3_URL", ""),
}
c.JupyterHub.services = [
    {
        "name": SERVICE_NAME,
        "url": f"http://127.0.0.1:{env['NOTEBOOKS_DEMO_SERVICE_PORT']}",
        "command": [sys.executable, "-m", "notebooks_service", "--config", service_config],
        "environment": service_environment,
        "oauth_no_confirm": True,
    },
    # membership over time, once for the deployment, from the service's own configuration
    {
        "name": RECONCILER_NAME,
        "command": [sys.executable, "-m", "notebooks_service", "reconcile", "--config", service_config],
        "environment": service_environment,
    },
]
# access that ends on the Hub ends in the servers within the reconciler's interval, open terminals too
# (the image's jupyter_server_config.py reads it; docs/security.rst)
c.Spawner.environment = {"NOTEBOOKS_ACCESS_RECHECK_SECONDS": str(MEMBERSHIP_CHECK_INTERVAL)}
# the workspaces' object storage: a local S3 API with a bucket per workspace, started and stopped
# by the Hub; its servers reach it with the demo's keys (on Kubernetes: the workspace's identity)
if env.get("NOTEBOOKS_DEMO_S3_URL"):
    c.JupyterHub.services.append(object_storage.hub_service(env["NOTEBOOKS_DEMO_S3_URL"]))
    c.Spawner.environment.update(DEMO_CREDENTIALS)
# stop servers idle for an hour, as z2jh does (its cull.timeout); removed servers are z2jh's cull.removeNamedServers
c.JupyterHub.services.append(
    {
        "name": "jupyterhub-idle-culler",
        "command": [
            sys.executable,
            "-m",
            "jupyterhub_idle_culler",
            f"--timeout={cull_timeout}",
            f"--cull-every={env.get('NOTEBOOKS_DEMO_CULL_EVERY', '600')}",
        ],
    }
)
# the Hub refuses workspaces, images and names the service would refuse, even via its own API
setup_workspace_guard(c, service_config)

c.JupyterHub.load_roles = [
    {"name": "notebooks-service", "scopes": SERVICE_SCOPES, "services": [SERVICE_NAME]},
    {"name": "user", "scopes": USER_SCOPES},
    {"name": "jupyterhub-idle-culler", "scopes": CULLER_SCOPES, "services": ["jupyterhub-idle-culler"]},
    {"name": RECONCILER_NAME, "scopes": RECONCILER_SCOPES, "services": [RECONCILER_NAME]},
]

# `notebooks-service demo` removes the demo's servers when it stops (and stale ones when it starts),
# so that the next start lists no stopped rows: its own token, with only what that needs
if env.get("NOTEBOOKS_DEMO_ADMIN_TOKEN"):
    c.JupyterHub.services.append({"name": "demo-cleanup", "api_token": env["NOTEBOOKS_DEMO_ADMIN_TOKEN"]})
    c.JupyterHub.load_roles.append(
        {
            "name": "demo-cleanup",
            "scopes": ["list:users", "read:servers", "delete:servers"],
            "services": ["demo-cleanup"],
        }
    )

if env.get("NOTEBOOKS_DEMO_EXTRA_CONFIG"):
    load_subconfig(env["NOTEBOOKS_DEMO_EXTRA_CONFIG"])  # noqa: F821
