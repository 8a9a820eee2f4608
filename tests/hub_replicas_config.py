# The test Hub with notebooks-service as an *external* service: replicas behind a load balancer.
import os
import sys

from notebooks_service.demo import RECONCILER_NAME, object_storage
from notebooks_service.demo.app import SERVICE_CONFIG

load_subconfig(os.path.join(os.path.dirname(__file__), "hub_test_config.py"))  # noqa: F821

c = get_config()  # noqa: F821
env = os.environ
# replaces the demo's managed service: the tests run the replicas themselves
c.JupyterHub.services = [
    {
        "name": "notebooks",
        "url": env["NOTEBOOKS_TEST_BALANCER_URL"],
        "api_token": env["NOTEBOOKS_TEST_SERVICE_TOKEN"],
        "oauth_client_id": "service-notebooks",
        "oauth_redirect_uri": "/services/notebooks/oauth_callback",
        "oauth_no_confirm": True,
    },
    {"name": "test-admin", "api_token": env["NOTEBOOKS_TEST_ADMIN_TOKEN"]},
    # the demo's culler keeps its role, so it keeps its entry (idle for an hour: it culls nothing here)
    {"name": "jupyterhub-idle-culler", "command": [sys.executable, "-m", "jupyterhub_idle_culler", "--timeout=3600"]},
    object_storage.hub_service(env["NOTEBOOKS_DEMO_S3_URL"]),  # the workspaces' buckets, as in the demo
    # one reconciler for the deployment, however many replicas serve (test_replicas)
    {
        "name": RECONCILER_NAME,
        "command": [
            sys.executable,
            "-m",
            "notebooks_service",
            "reconcile",
            "--config",
            env.get("NOTEBOOKS_DEMO_SERVICE_CONFIG") or SERVICE_CONFIG,
            "--Reconciler.membership_check_interval=1",
        ],
        "environment": {"NOTEBOOKS_DEMO_RUN_DIR": env["NOTEBOOKS_DEMO_RUN_DIR"]},
    },
]
# the Hub's periodic health check would be one more request through the balancer, shifting its turns
c.JupyterHub.service_check_interval = 0
