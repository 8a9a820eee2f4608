"""What a workspace server gets: where its pod runs, as whom, and which storage it sees.

``WorkspacePlacement`` is read twice, from the one configuration file the service and the
Hub share: inside the Hub, the guard applies it to each checked spawn (on KubeSpawner the
namespace, image, volume, ServiceAccount, env and labels; on any spawner the env the images
read); in the service, it says in words where a workspace's data is (the server model,
``GET <prefix>/workspaces``, the server's page). No credential passes through either: a pod
gets the workspace's cloud identity from its ServiceAccount (IRSA, Workload Identity) or
from a Secret in its own namespace, which Kubernetes reads, not us.
"""

import copy
import posixpath
from typing import Any

from traitlets import TraitError, Unicode, validate
from traitlets.config import LoggingConfigurable

from .naming import (
    IMAGE_LABEL,
    IMAGE_REF_ANNOTATION,
    RESOURCE_CLASS_LABEL,
    SERVER_LABEL,
    USER_LABEL,
    WORKSPACE_LABEL,
    label_value,
    namespace,
    pod_name,
)

#: the KubeSpawner traits the placement (and a resource class) sets
PLACED_TRAITS = (
    "namespace",
    "image",
    "pod_name",
    "dns_name",
    "service_account",
    "volumes",
    "volume_mounts",
    "environment",
    "extra_container_config",
    "extra_labels",
    "extra_annotations",
    "cpu_guarantee",
    "cpu_limit",
    "mem_guarantee",
    "mem_limit",
    "extra_resource_guarantees",
    "extra_resource_limits",
    "node_selector",
    "tolerations",
)
#: ... and on any other spawner (the demo's): only the env the images read
ENV_TRAITS = ("environment",)


def is_kubespawner(spawner: Any) -> bool:
    try:
        from kubespawner import KubeSpawner
    except ImportError:
        return False
    return isinstance(spawner, KubeSpawner)


def _with(configured: list | dict, item: dict) -> list | dict:
    """``configured`` volumes (or mounts) plus ``item``, in the form configured: KubeSpawner takes a
    list, or (as z2jh sets them) a dict that it orders by key."""
    if isinstance(configured, dict):
        # last in that order: the workspace is mounted inside the home volume, so after it
        return {**configured, f"zz-notebooks-{item['name']}": item}
    return [*configured, item]


def _workspace_template(value: str, name: str) -> str:
    """A template may name {workspace} and nothing else: refuse the rest when configured, not at a spawn."""
    try:
        value.format(workspace="w")
    except (KeyError, IndexError, ValueError) as e:
        raise TraitError(f"WorkspacePlacement.{name} {value!r} may use only {{workspace}}: {e}") from None
    return value


class WorkspacePlacement(LoggingConfigurable):
    """Where and how a workspace server runs (KubeSpawner), and the workspace storage its images read (any spawner)."""

    pvc_name_template = Unicode(
        "pvc-{workspace}", help="PersistentVolumeClaim with the workspace's storage, in its namespace."
    ).tag(config=True)
    volume_mount_path = Unicode("/home/jovyan/workspace", help="Where the workspace storage is mounted.").tag(
        config=True
    )
    env_configmap_template = Unicode(
        "",
        help="ConfigMap in the workspace namespace whose keys become env vars, e.g. 'ws-{workspace}-env'; empty: none.",
    ).tag(config=True)
    pod_name_template = Unicode(
        "",
        help="""Pod name as a KubeSpawner template (e.g. 'jupyter-{user_server}'); it must include
        the server so one user can run several. Empty (default): naming.pod_name,
        'jupyter-<user>--<server>', which the service computes too, to show the events of a
        failed start's pod after the pod is gone.""",
    ).tag(config=True)
    service_account_template = Unicode(
        "",
        help="""ServiceAccount the pod runs as, in the workspace's namespace, e.g. 'notebooks': the
        one the platform binds to the workspace's cloud role (EKS IRSA or Pod Identity, GKE or
        Azure Workload Identity), so that the SDKs in the pod find the workspace's credentials
        themselves. It must exist in every workspace namespace: Kubernetes refuses a pod whose
        ServiceAccount does not, and the start fails saying so. Its token is mounted unless
        the ServiceAccount says otherwise (KubeSpawner's rule for a named one; the identity
        webhooks project a token of their own). Empty (default): the namespace's default
        ServiceAccount, with no token mounted.""",
    ).tag(config=True)
    secret_env_template = Unicode(
        "",
        help="""Secret in the workspace namespace whose keys become env vars, e.g.
        'ws-{workspace}-storage' (for storage that takes keys rather than a cloud identity).
        Optional: a workspace without that Secret starts without it. The Hub and the service
        never read it: the kubelet does. Empty (default): none.""",
    ).tag(config=True)
    s3_bucket_template = Unicode(
        "",
        help="""The workspace's S3 bucket, given to its servers as WORKSPACE_S3_BUCKET, e.g.
        'eo-{workspace}'. Empty (default): the workspace has no object storage.""",
    ).tag(config=True)
    s3_prefix_template = Unicode(
        "",
        help="""The workspace's prefix in that bucket (WORKSPACE_S3_PREFIX), e.g.
        'workspaces/{workspace}', for one bucket shared by all workspaces. Empty (default): the
        whole bucket.""",
    ).tag(config=True)
    s3_endpoint_url = Unicode(
        "",
        help="""AWS_ENDPOINT_URL of the servers, for S3-compatible storage (MinIO, Ceph, a cloud
        other than AWS). Empty (default): the SDKs' own (AWS's regional endpoints).""",
    ).tag(config=True)
    s3_file_browser_path = Unicode(
        "s3",
        help="""Where the images show the bucket in JupyterLab's file browser (s3contents mounted by
        notebooks_service.singleuser.contents, as in docs/workspace-data.rst). Only said to users: the image decides.""",
    ).tag(config=True)
    file_browser_root = Unicode(
        "/home/jovyan",
        help="""Where JupyterLab's file browser starts in the images (their home): pages say
        where volume_mount_path appears in it ('workspace/' for the defaults).""",
    ).tag(config=True)

    @validate(
        "pvc_name_template",
        "env_configmap_template",
        "service_account_template",
        "secret_env_template",
        "s3_bucket_template",
        "s3_prefix_template",
    )
    def _check_template(self, proposal):
        return _workspace_template(proposal["value"], proposal["trait"].name)

    # -- what the images read, and what users are told ---------------------------

    def environment(self, workspace: str) -> dict[str, str]:
        """The env a workspace server's images read: WORKSPACE, and its object storage if it has one."""
        env = {"WORKSPACE": workspace}
        if self.s3_bucket_template:
            env["WORKSPACE_S3_BUCKET"] = self.s3_bucket_template.format(workspace=workspace)
            env["WORKSPACE_S3_PREFIX"] = self.s3_prefix_template.format(workspace=workspace).strip("/")
            if self.s3_endpoint_url:
                env["AWS_ENDPOINT_URL"] = self.s3_endpoint_url
        return env

    def files_path(self) -> str:
        """Where the workspace volume appears in the file browser: relative to its root, else absolute."""
        root = posixpath.normpath(self.file_browser_root)
        mount = posixpath.normpath(self.volume_mount_path)
        return posixpath.relpath(mount, root) if mount.startswith(root.rstrip("/") + "/") else mount

    def storage(self, workspace: str) -> list[dict[str, Any]]:
        """What storage a server of ``workspace`` has, for models and pages: each with words for people."""
        files = self.files_path()
        described = [
            {
                "kind": "files",
                "path": files,
                "mount_path": self.volume_mount_path,
                "text": f"The {workspace} workspace's shared files: every member's server of this "
                "workspace sees the same files.",
            }
        ]
        env = self.environment(workspace)
        if "WORKSPACE_S3_BUCKET" in env:
            bucket, prefix = env["WORKSPACE_S3_BUCKET"], env["WORKSPACE_S3_PREFIX"]
            url = f"s3://{bucket}/{prefix + '/' if prefix else ''}"
            described.append(
                {
                    "kind": "s3",
                    "path": self.s3_file_browser_path,
                    "bucket": bucket,
                    "prefix": prefix,
                    "url": url,
                    "text": f"The {workspace} workspace's object storage, {url}: code in the server "
                    "reaches it with the workspace's own identity, no keys to paste.",
                }
            )
        return described

    # -- applied inside the Hub -----------------------------------------------------

    def reset(self, spawner: Any) -> None:
        """Give a Spawner back the values it was configured with, before any spawn changed them.

        A Spawner may be spawned more than once: JupyterHub keeps the Spawner of a failed
        start (its REST API and spawn pages replace a failed one, other callers of
        ``user.spawn`` need not). Without this, a second spawn would build on the first's
        placement (a second workspace volume, the GPU of a class no longer asked for, the
        bucket of the workspace it started in before). The first spawn records the
        configured values.
        """
        baseline = getattr(spawner, "_workspace_baseline", None)
        if baseline is None:
            traits = PLACED_TRAITS if is_kubespawner(spawner) else ENV_TRAITS
            spawner._workspace_baseline = {
                t: copy.deepcopy(getattr(spawner, t)) for t in traits if spawner.has_trait(t)
            }
            return
        for trait, value in baseline.items():
            setattr(spawner, trait, copy.deepcopy(value))  # copies: profiles merge into dicts in place

    def apply_environment(self, spawner: Any, workspace: str) -> None:
        """The images' env on any spawner (KubeSpawner gets it in ``apply``, after its profiles)."""
        spawner.environment = {**spawner.environment, **self.environment(workspace)}

    def apply(
        self,
        spawner: Any,
        workspace: str,
        image: dict[str, Any],
        namespace_template: str,
        resource_class: dict[str, Any] | None = None,
    ) -> None:
        """Set the KubeSpawner's namespace, image, pod name, identity, volume, env, labels, annotations and resources."""
        ns = namespace(workspace, namespace_template)
        spawner.namespace = ns
        spawner.image = image["image"]
        spawner.pod_name = (
            spawner._expand_user_properties(self.pod_name_template)
            if self.pod_name_template
            else pod_name(spawner.user.name, spawner.name)
        )
        spawner.dns_name = spawner.dns_name_template.format(namespace=ns, name=spawner.pod_name)
        if self.service_account_template:
            spawner.service_account = self.service_account_template.format(workspace=workspace)
        # copy, never mutate: these lists and dicts come from shared configuration
        claim = {"claimName": self.pvc_name_template.format(workspace=workspace)}
        spawner.volumes = _with(spawner.volumes, {"name": "workspace", "persistentVolumeClaim": claim})
        spawner.volume_mounts = _with(spawner.volume_mounts, {"name": "workspace", "mountPath": self.volume_mount_path})
        self.apply_environment(spawner, workspace)
        env_from = [
            {ref: {"name": template.format(workspace=workspace), "optional": True}}
            for ref, template in (
                ("configMapRef", self.env_configmap_template),
                ("secretRef", self.secret_env_template),
            )
            if template
        ]
        if env_from:
            container = dict(spawner.extra_container_config)
            container["envFrom"] = [*container.get("envFrom", []), *env_from]
            spawner.extra_container_config = container
        # our own labels, so kube.py can find the pod without KubeSpawner's slug rules
        spawner.extra_labels = {
            **spawner.extra_labels,
            WORKSPACE_LABEL: label_value(workspace),
            IMAGE_LABEL: label_value(image["name"]),
            USER_LABEL: label_value(spawner.user.name),
            SERVER_LABEL: label_value(spawner.name),
        }
        spawner.extra_annotations = {
            **spawner.extra_annotations,
            WORKSPACE_LABEL: workspace,
            IMAGE_LABEL: image["name"],
            IMAGE_REF_ANNOTATION: image["image"],
        }
        if resource_class:
            self._size(spawner, resource_class)

    @staticmethod
    def _size(spawner: Any, resource_class: dict[str, Any]) -> None:
        """The class's CPU, memory and GPUs, and where it may run (after any profile: the class decides)."""
        for key in ("cpu_guarantee", "cpu_limit", "mem_guarantee", "mem_limit"):
            if key in resource_class:
                setattr(spawner, key, resource_class[key])
        if resource_class["gpus"]:
            gpus = {resource_class["gpu_resource"]: str(resource_class["gpus"])}
            spawner.extra_resource_guarantees = {**spawner.extra_resource_guarantees, **gpus}
            spawner.extra_resource_limits = {**spawner.extra_resource_limits, **gpus}
        spawner.node_selector = {**spawner.node_selector, **resource_class["node_selector"]}
        spawner.tolerations = [*spawner.tolerations, *resource_class["tolerations"]]
        spawner.extra_labels = {**spawner.extra_labels, RESOURCE_CLASS_LABEL: label_value(resource_class["name"])}
