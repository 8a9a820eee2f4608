"""The embedded demo: a local JupyterHub with this service, no Kubernetes needed.

The demo data lives here once; both the Hub's and the service's demo
configuration files import it.
"""

from ..scopes import RECONCILER, SERVICE, Settings, scopes

SERVICE_NAME = "notebooks"

#: the Hub roles the service and the reconciler (notebooks-service reconcile, one per deployment, beside
#: the Hub as the culler is) need for the demo's configuration, and nothing more: the table in
#: notebooks_service/scopes.py says which scope is for what (docs/deploying.rst, "Registering with a Hub")
_DEMO_SETTINGS = Settings(policy="hub-groups", quotas=True)
SERVICE_SCOPES = scopes(SERVICE, _DEMO_SETTINGS)
RECONCILER_NAME = "notebooks-reconciler"
RECONCILER_SCOPES = scopes(RECONCILER, _DEMO_SETTINGS)

#: the demo's reconciler checks members every this many seconds (60 by default), and its servers
#: ask the Hub again about open connections as often (NOTEBOOKS_ACCESS_RECHECK_SECONDS)
MEMBERSHIP_CHECK_INTERVAL = 10

#: the demo's idle culler stops servers idle this long (z2jh's cull.timeout default); the service shows when
CULL_TIMEOUT = 3600

#: what every user needs to reach the service (OAuth and API tokens)
USER_SCOPES = ["self", f"access:services!service={SERVICE_NAME}"]

#: jupyterhub-idle-culler's role: what it needs and nothing more, as z2jh gives it (tests/test_z2jh.py)
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]

USERS = ["alice", "bob"]
#: the demo's Hub admin: changes who is in which workspace (a Hub group) on /hub/admin or the groups API
ADMIN_USER = "admin"

#: beta is a small team's: one server at a time (the Hub-side guard holds it to that too)
WORKSPACE_QUOTAS = {"beta": {"servers": 1}}

#: who starts in which workspace: each workspace is a Hub group of that name (the hub-groups policy,
#: as OAuthenticator's manage_groups keeps them from an identity provider); loaded at each Hub start
WORKSPACE_MEMBERS = {
    "alice": ["alpha", "beta"],
    "bob": ["alpha"],
}
WORKSPACES = sorted({w for workspaces in WORKSPACE_MEMBERS.values() for w in workspaces})
WORKSPACE_GROUPS = {w: sorted(u for u, ws in WORKSPACE_MEMBERS.items() if w in ws) for w in WORKSPACES}

#: each workspace's bucket in the demo's local S3 (object_storage.py), as WorkspacePlacement names it
S3_BUCKET_TEMPLATE = "workspace-{workspace}"

# Locally, an image picks which single-user server starts; on Kubernetes it is a container image.
IMAGES = {
    "python": {
        "image": "quay.io/jupyter/scipy-notebook:latest",
        "display_name": "Python (JupyterLab)",
        "description": "JupyterLab with the scientific Python stack.",
        "local_default_url": "/lab",
        "resource_classes": ["small", "large", "gpu"],
        "default_resource_class": "small",
    },
    "minimal": {
        "image": "quay.io/jupyter/base-notebook:latest",
        "display_name": "Minimal (single document)",
        "description": "JupyterLab's simple single-document interface.",
        "local_default_url": "/doc",
        "resource_classes": ["small"],
    },
}

# Sizes to choose from; recorded and shown locally, applied on Kubernetes (docs/configuration.rst, "Resource classes").
RESOURCE_CLASSES = {
    "small": {"display_name": "Small", "cpu_limit": 1, "mem_limit": "2G", "mem_guarantee": "1G"},
    "large": {"display_name": "Large", "cpu_limit": 4, "mem_limit": "16G", "mem_guarantee": "8G"},
    "gpu": {
        "display_name": "GPU",
        "description": "One NVIDIA GPU, on the GPU nodes",
        "cpu_limit": 8,
        "mem_limit": "32G",
        "gpus": 1,
        "node_selector": {"nvidia.com/gpu.present": "true"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    },
}


def select_local_image(spawner) -> None:
    """Hub pre_spawn_hook of the demo: the catalogue's image picks which single-user server starts."""
    image = IMAGES.get((spawner.user_options or {}).get("image"), IMAGES["python"])
    spawner.default_url = image["local_default_url"]
