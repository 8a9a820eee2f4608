"""What the service and the Hub-side guard share: one configuration file, read by both.

``SharedConfig`` holds the catalogue, the workspace policy and where
workspaces' pods run. The service's Application inherits it; the guard builds
it straight from the service's file (``SharedConfig.from_file``) inside the
Hub, without importing the web application. Both read the same
``c.NotebooksService.*`` settings.
"""

import os

from jupyterhub.traitlets import EntryPointType
from traitlets import Dict, Instance, List, TraitError, Unicode, default, validate
from traitlets.config import Config, Configurable, PyFileConfigLoader

from .idp import IdentityProvider
from .images import normalise_catalogue
from .naming import DEFAULT_NAMESPACE_TEMPLATE
from .quotas import Quotas, normalise_quota
from .resources import check_catalogue_classes, normalise_classes
from .workspaces import StaticWorkspacePolicy, WorkspacePolicy


def env(name: str, fallback: str = "") -> str:
    """An environment variable the Hub sets for a managed service, or ``fallback``."""
    return os.environ.get(name) or fallback


class SharedConfig(Configurable):
    """The settings the service and the Hub-side guard must agree on."""

    @classmethod
    def section_names(cls) -> list[str]:
        # operators write c.NotebooksService.images, ...: read that section here too
        names = super().section_names()
        return names if "NotebooksService" in names else [*names, "NotebooksService"]

    service_name = Unicode(help="This service's name in the Hub ($JUPYTERHUB_SERVICE_NAME).").tag(config=True)

    @default("service_name")
    def _service_name(self):
        return env("JUPYTERHUB_SERVICE_NAME", "notebooks")

    images = Dict(
        help="""The image catalogue: name -> container image reference, or
        name -> {"image": ..., "display_name": ..., "description": ...}.
        Only these images can be started."""
    ).tag(config=True)

    @validate("images")
    def _check_images(self, proposal):
        try:
            return normalise_catalogue(proposal.value)
        except ValueError as e:
            raise TraitError(f"NotebooksService.images: {e}") from None

    resource_classes = Dict(
        help="""The sizes a server can be started with: name -> {"display_name", "description",
        "cpu_guarantee", "cpu_limit" (CPUs), "mem_guarantee", "mem_limit" (e.g. "4G"), "gpus",
        "gpu_resource" ("nvidia.com/gpu"), "node_selector", "tolerations"}. An image lists the
        ones it allows in "resource_classes" (default: all) and its "default_resource_class"
        (default: its first). Applied to KubeSpawner by the Hub-side placement; recorded only
        on other spawners. Empty (default): no classes.""",
    ).tag(config=True)

    @validate("resource_classes")
    def _check_classes(self, proposal):
        try:
            return normalise_classes(proposal.value)
        except ValueError as e:
            raise TraitError(f"NotebooksService.resource_classes: {e}") from None

    workspace_quotas = Dict(
        help="""Workspace -> what its running servers may hold at once, summed over all its
        members: {"servers": 2, "cpu": 8, "memory": "32G", "gpus": 1} (CPUs, memory and GPUs
        from each server's resource class: its limit, else its guarantee). "*": every workspace
        not named. A missing limit is no limit. The service refuses a start over it with a 403
        that says what runs, and the Hub-side guard refuses it inside the Hub too.""",
    ).tag(config=True)

    @validate("workspace_quotas")
    def _check_workspace_quotas(self, proposal):
        try:
            return {name: normalise_quota(name, quota) for name, quota in proposal.value.items()}
        except ValueError as e:
            raise TraitError(f"NotebooksService.workspace_quotas: {e}") from None

    user_quota = Dict(
        help="""What one user's running servers may hold at once, over all their workspaces:
        the keys of workspace_quotas. Empty (default): no limit.""",
    ).tag(config=True)

    @validate("user_quota")
    def _check_user_quota(self, proposal):
        try:
            return normalise_quota("each user", proposal.value)
        except ValueError as e:
            raise TraitError(f"NotebooksService.user_quota: {e}") from None

    def make_quotas(self) -> Quotas:
        return Quotas(self.workspace_quotas, self.user_quota, self.resource_classes, self.images)

    workspace_members = Dict(
        value_trait=List(Unicode()),
        help="User name -> workspaces that user may use (for the 'static' workspace policy).",
    ).tag(config=True)

    workspace_policy_class = EntryPointType(
        default_value=StaticWorkspacePolicy,
        klass=WorkspacePolicy,
        entry_point_group="notebooks_service.workspace_policies",
        help="""Who may use which workspace: 'static' (workspace_members), 'hub-groups'
        (configure HubGroupsWorkspacePolicy.group_template), 'claims' (configure
        IdentityProvider and ClaimsWorkspacePolicy.workspaces_claim), or a WorkspacePolicy
        subclass (or its import path). Packages add names with the entry point group
        'notebooks_service.workspace_policies', as JupyterHub's authenticators do.""",
    ).tag(config=True)

    namespace_template = Unicode(
        DEFAULT_NAMESPACE_TEMPLATE,
        help="Kubernetes namespace of a workspace's notebook pods (read by the Hub-side placement too).",
    ).tag(config=True)

    identity_provider = Instance(
        IdentityProvider,
        help="The identity provider whose JWTs are trusted (configure IdentityProvider): claims, Bearer logins.",
    )

    @default("identity_provider")
    def _identity_provider(self):
        return IdentityProvider(parent=self)

    @classmethod
    def read_file(cls, path: str) -> Config:
        """The configuration the service's file makes now (running it: it may read files beside it,
        as the chart's reads values.json); raises on a missing file, a syntax error, any error in it."""
        if not os.path.exists(path):
            raise FileNotFoundError(f"notebooks-service config file not found: {path}")
        # not Application.load_config_file(): its error handling exits the process, and the Hub runs this
        loader = PyFileConfigLoader(os.path.basename(path), os.path.dirname(os.path.abspath(path)))
        config = loader.load_config()
        if "NotebooksService" in config:  # the web service's own settings there are not ours to read
            shared = set(cls.class_trait_names(config=True))
            config["NotebooksService"] = Config({k: v for k, v in config.NotebooksService.items() if k in shared})
        return config

    @classmethod
    def from_file(cls, path: str) -> "SharedConfig":
        """An instance configured from the service's file; raises on a syntax error or a bad value."""
        return cls(config=cls.read_file(path))

    def make_policy(self) -> WorkspacePolicy:
        """The configured workspace policy, checked (and the identity provider, if callers log in with its JWTs)."""
        policy = self.workspace_policy_class(parent=self)
        if isinstance(policy, StaticWorkspacePolicy) and not policy.members:
            policy.members = self.workspace_members
        policy.check_config()
        check_catalogue_classes(self.images, self.resource_classes)
        if self.identity_provider.accept_bearer_jwt:
            self.identity_provider.check_config()
        return policy
