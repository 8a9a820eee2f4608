# What an image does to show its workspace's object storage in JupyterLab's file browser, as
# the platform's own images do: the bucket at s3/ (s3contents), beside the files of the home
# (notebooks_service.singleuser.contents, from notebooks-service[singleuser]). It reads only the
# env the placement gives every workspace server (WORKSPACE_S3_BUCKET, WORKSPACE_S3_PREFIX,
# AWS_ENDPOINT_URL); credentials come from the SDK's own chain (a ServiceAccount's web identity
# on Kubernetes, the demo's keys locally): none here.
# The demo's servers load it (DemoSpawner.image_config_dir); an image copies it to /etc/jupyter/.
import os

c = get_config()  # noqa: F821

bucket = os.environ.get("WORKSPACE_S3_BUCKET")
if bucket:
    import fsspec.config
    from jupyter_server.services.contents.largefilemanager import LargeFileManager
    from s3contents import S3ContentsManager

    from notebooks_service.singleuser.contents import MountedContentsManager

    s3 = {"bucket": bucket, "prefix": os.environ.get("WORKSPACE_S3_PREFIX", "")}
    if os.environ.get("AWS_ENDPOINT_URL"):
        s3["endpoint_url"] = os.environ["AWS_ENDPOINT_URL"]
    if os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"):
        s3["region_name"] = os.environ.get("AWS_REGION") or os.environ["AWS_DEFAULT_REGION"]
    # others write to the same bucket: s3fs must not answer from listings it read before
    # (it would call a colleague's new object missing, 404, until the server restarts)
    fsspec.config.conf.setdefault("s3", {})["use_listings_cache"] = False
    c.ServerApp.contents_manager_class = MountedContentsManager
    c.MountedContentsManager.manager_classes = {"": LargeFileManager, "s3": S3ContentsManager}
    # the home's files as before; the server starts in the home
    c.MountedContentsManager.manager_kwargs = {"": {"root_dir": os.getcwd()}, "s3": s3}

# Access that ends on the Hub (a share revoked, a member gone from the workspace) ends here within
# NOTEBOOKS_ACCESS_RECHECK_SECONDS (default 60; the demo sets 10), open terminals and kernels included:
# the Hub's answers are kept that long, not JupyterHub's 300 s, and open connections are asked about
# again as often (notebooks_service.singleuser.access). docs/security.rst has the figures.
recheck = int(os.environ.get("NOTEBOOKS_ACCESS_RECHECK_SECONDS") or 60)
c.ServerApp.authorizer_class = "notebooks_service.singleuser.access.RevocableAuthorizer"
c.RevocableAuthorizer.recheck_interval = recheck
c.HubOAuth.cache_max_age = recheck
