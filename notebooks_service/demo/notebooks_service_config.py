# Configuration of notebooks-service for the demo Hub (see notebooks_service/demo/__init__.py).
import os

from notebooks_service.demo import (
    CULL_TIMEOUT,
    IMAGES,
    MEMBERSHIP_CHECK_INTERVAL,
    RESOURCE_CLASSES,
    S3_BUCKET_TEMPLATE,
    WORKSPACE_QUOTAS,
)

c = get_config()  # noqa: F821
c.NotebooksService.images = IMAGES
c.NotebooksService.resource_classes = RESOURCE_CLASSES
# a workspace's members are its Hub group's (jupyterhub_config.py loads them; admin changes them)
c.NotebooksService.workspace_policy_class = "hub-groups"
c.NotebooksService.workspace_quotas = WORKSPACE_QUOTAS
# members may share a server with their whole workspace: with hub-groups, the workspace's own group
# (the tests' Hubs use a static policy, and then a group per workspace that the service keeps)
c.Sharing.manage_workspace_groups = True
# the reconciler (notebooks-service reconcile) stops a leaver's servers within MEMBERSHIP_CHECK_INTERVAL (10 s) here (60 by default)
c.Reconciler.membership_check_interval = MEMBERSHIP_CHECK_INTERVAL
# the demo Hub's culler stops servers idle this long: pages say when, and offer "Keep running"
c.NotebooksService.idle_timeout = float(os.environ.get("NOTEBOOKS_DEMO_CULL_TIMEOUT", CULL_TIMEOUT))

# the demo's servers write their output into the run folder (DemoSpawner.logs_dir)
if os.environ.get("NOTEBOOKS_DEMO_RUN_DIR"):
    c.NotebooksService.server_logs = "local"
    c.NotebooksService.local_logs_dir = os.path.join(os.environ["NOTEBOOKS_DEMO_RUN_DIR"], "logs")

# each workspace's bucket in the demo's local S3: its servers get WORKSPACE_S3_BUCKET and
# AWS_ENDPOINT_URL (from the Hub-side placement, which reads this file), pages say where it is
if os.environ.get("NOTEBOOKS_DEMO_S3_URL"):
    c.WorkspacePlacement.s3_bucket_template = S3_BUCKET_TEMPLATE
    c.WorkspacePlacement.s3_endpoint_url = os.environ["NOTEBOOKS_DEMO_S3_URL"]
