"""What runs inside the Hub: the workspace guard, which applies the placement (placement.py).

Users can call the Hub's API themselves with any ``user_options``, so the
service's checks alone do not protect a workspace. The guard makes the Hub
refuse, with the same policy code and the same configuration file as the
service, a workspace the user is not a member of, an image outside the
catalogue, a malformed workspace name, or a server name that does not belong
to the (workspace, image) pair. It then applies the workspace's placement: on
KubeSpawner the pod's namespace, identity and storage; on any spawner the
storage env the images read. One line in
``jupyterhub_config.py``::

    from notebooks_service.hubside import setup_workspace_guard
    setup_workspace_guard(c, "/etc/notebooks-service/notebooks_service_config.py")

Importing this module starts nothing: it needs only the service's package.
"""

import html
import inspect
import logging
import os
import time
from typing import Any

from traitlets import Bool, default
from traitlets.config import Config, LoggingConfigurable

from . import resources
from .config import SharedConfig
from .errors import InvalidRequest, NotAMember, ServiceError
from .images import lookup_image
from .naming import USER_OPTION_KEYS, check_workspace, display_name, server_name
from .placement import WorkspacePlacement, is_kubespawner
from .quotas import admit_in_hub


class HubGuardMissing(ServiceError):
    """The Hub's configuration bypasses the guard: refuse rather than run unchecked."""

    status_code = 503


#: what the guard decided of a spawn: (workspace, catalogue entry, resource class or None)
Checked = tuple[str, dict[str, Any], dict[str, Any] | None]


class WorkspaceGuard(LoggingConfigurable):
    """Checks a spawn's ``user_options`` against the catalogue and the workspace policy."""

    allow_unscoped_servers = Bool(
        False,
        help="""Let servers start without a workspace and image (e.g. the Hub's own
        'Start My Server'). Off: every server on this Hub is a workspace server.""",
    ).tag(config=True)

    trust_service_membership_checks = Bool(
        help="""For spawns the notebooks service itself requests, rely on the service's
        membership check instead of repeating it here. Needed when the service accepts
        identity-provider JWTs from JSON clients (IdentityProvider.accept_bearer_jwt):
        the Hub never sees those tokens. The catalogue, workspace-name and server-name
        checks apply to every spawn regardless. Default: on exactly when the service
        accepts Bearer JWTs.""",
    ).tag(config=True)

    @default("trust_service_membership_checks")
    def _trust_when_bearer_jwts(self):
        return self.service.identity_provider.accept_bearer_jwt

    def __init__(self, service: SharedConfig, **kwargs):
        self.service = service  # the service's shared settings: catalogue, policy, namespaces
        self.policy = service.make_policy()
        self.quotas = service.make_quotas()
        super().__init__(**kwargs)
        self.placement = WorkspacePlacement(parent=self)

    async def check(self, spawner: Any, user_options: dict[str, Any] | None) -> Checked | None:
        """(workspace, catalogue entry, resource class or None) if this spawn may go ahead; None for an
        allowed unscoped server."""
        options = user_options or {}
        workspace, image = options.get("workspace"), options.get("image")
        if workspace is None and image is None:
            if self.allow_unscoped_servers:
                return None
            raise NotAMember("This Hub starts workspace servers only: start one from the notebooks service.")
        if not isinstance(workspace, str) or not isinstance(image, str):
            raise InvalidRequest("user_options need both 'workspace' and 'image' as strings.")
        # e.g. KubeSpawner's 'profile' or 'image--unlisted-choice': what runs is the catalogue's choice
        unknown = sorted(set(options) - set(USER_OPTION_KEYS))
        if unknown:
            allowed = ", ".join(repr(k) for k in USER_OPTION_KEYS)
            raise InvalidRequest(
                f"user_options may not contain {unknown[0][:80]!r}: a workspace server takes only {allowed}."
            )
        check_workspace(workspace)
        entry = lookup_image(self.service.images, image)
        expected = server_name(workspace, image)
        if spawner.name != expected:
            raise InvalidRequest(f"The server for {display_name(workspace, image)} must be named {expected!r}.")
        if self.trust_service_membership_checks and requested_by(spawner) == ("service", self.service.service_name):
            self.log.debug("Membership of %s in %s was checked by the service", spawner.user.name, workspace)
        else:
            await self.policy.check_member(await hub_user_model(spawner.user), workspace)
        narrowed = self.policy.resource_classes_in(workspace)
        resource_class = resources.choose(entry, self.service.resource_classes, options.get("resource_class"), narrowed)
        return workspace, entry, resource_class

    def record_class(self, spawner: Any, checked: Checked | None) -> None:
        """Write the class this spawn is placed at into its ``user_options``, where every quota count
        (this guard's, the service's, the reconciler's) reads it: a start asked of the Hub without a
        class runs at the image's default and is counted as such. The Hub shows and keeps them."""
        if checked is None or checked[2] is None:
            return
        name = checked[2]["name"]
        if spawner.user_options.get("resource_class") != name:
            spawner.user_options = {**spawner.user_options, "resource_class": name}
            spawner.orm_spawner.user_options = spawner.user_options  # what a start without options reuses

    async def admit(self, spawner: Any, checked: Checked | None) -> None:
        """Admit a checked workspace spawn under the quotas (quotas.py: one lock for the whole Hub)."""
        if checked is not None:
            workspace, _, resource_class = checked
            await admit_in_hub(spawner, self.quotas, workspace, (resource_class or {}).get("name"))

    def place(self, spawner: Any, checked: Checked | None) -> None:
        """Apply the placement of a checked workspace spawn (KubeSpawner: after its profiles)."""
        if checked is None:
            return
        workspace, entry, resource_class = checked
        self.log.info(
            "Starting %s/%s for %s in workspace %s%s",
            spawner.user.name,
            spawner.name,
            entry["name"],
            workspace,
            f" ({resource_class['name']})" if resource_class else "",
        )
        if not is_kubespawner(spawner):
            self.placement.apply_environment(spawner, workspace)  # what the images read, on any spawner
            return
        # this spawn's decision; a retry on the same Spawner replaces it
        spawner._workspace_placement = (
            self.placement,
            workspace,
            entry,
            self.service.namespace_template,
            resource_class,
        )
        if getattr(spawner, "_workspace_placement_installed", False):
            return
        # KubeSpawner applies profile_list overrides in load_user_options(), inside start():
        # place the pod after them, so that no profile decides image, namespace, volumes or labels
        load_profiles = spawner.load_user_options

        async def load_user_options():
            await load_profiles()
            placement, *decision = spawner._workspace_placement
            placement.apply(spawner, *decision)

        spawner.load_user_options = load_user_options
        spawner._workspace_placement_installed = True


async def hub_user_model(user: Any) -> dict[str, Any]:
    """The parts of the Hub's user model a workspace policy reads, from inside the Hub."""
    return {
        "name": user.name,
        "groups": [group.name for group in user.groups],
        "auth_state": await user.get_auth_state(),
    }


def requested_by(spawner: Any) -> tuple[str, str] | None:
    """(kind, name) of whoever asked the Hub for this spawn, if the Hub says."""
    who = getattr(getattr(spawner, "handler", None), "current_user", None)
    if who is None:
        return None
    return getattr(who, "kind", "user"), who.name


def load_guard(service_config: str, hub_config: Config | None = None) -> WorkspaceGuard:
    """A guard from the service's configuration file (and WorkspaceGuard/Placement settings in the Hub's)."""
    return guard_for(SharedConfig.read_file(service_config), hub_config)


def guard_for(service_config: Config, hub_config: Config | None = None) -> WorkspaceGuard:
    """A guard from the configuration the service's file made (and the Hub's WorkspaceGuard/Placement settings)."""
    service = SharedConfig(config=service_config)
    config = Config(service.config)
    if hub_config is not None:
        config.merge(Config({k: v for k, v in hub_config.items() if k in ("WorkspaceGuard", "WorkspacePlacement")}))
    return WorkspaceGuard(service, config=config)


class GuardConfigError(ServiceError):
    """The service's configuration file cannot be read: refuse spawns, saying why."""

    status_code = 503


class GuardLoader:
    """The guard for what the service's configuration file says now.

    The file is run on every spawn (it is small, and spawns are rare next to
    everything else the Hub does), and the guard rebuilt when the configuration
    it makes differs from the last: so a ``helm upgrade`` that changes only the
    chart's ``values.json`` beside it reaches the Hub at the next spawn, without
    a restart. A file that cannot be loaded refuses that spawn with the reason,
    rather than run on a stale catalogue; the next good read is used at once.
    """

    def __init__(self, path: str, hub_config: Config):
        self.path = path
        self.hub_config = hub_config
        self.loaded: Config | None = None  # what the current guard was built from
        self.guard: WorkspaceGuard | None = None
        self.loaded_at = 0.0  # when the file was last read (monotonic)

    def __call__(self) -> WorkspaceGuard:
        try:
            config = SharedConfig.read_file(self.path)
            if self.guard is None or config != self.loaded:
                guard = guard_for(config, self.hub_config)
                guard.log.info(
                    "Workspace guard %s %s (%d images)",
                    "loaded" if self.guard is None else "reloaded",
                    self.path,
                    len(guard.service.images),
                )
                self.guard, self.loaded = guard, config
            self.loaded_at = time.monotonic()
        except SyntaxError as e:
            raise self._refuse(f"line {e.lineno}: {e.msg}") from None
        except OSError as e:
            raise self._refuse(f"cannot read it: {e.strerror or e}") from None
        except Exception as e:  # any mistake in the file: name it, never run on a guess
            raise self._refuse(f"{type(e).__name__}: {e}") from None
        return self.guard

    def recent(self, seconds: float) -> WorkspaceGuard:
        """The guard, as the file was read within ``seconds`` (else read again now)."""
        if self.guard is not None and time.monotonic() - self.loaded_at < seconds:
            return self.guard
        return self()

    def _refuse(self, error: str) -> GuardConfigError:
        logging.getLogger(__name__).error("Workspace guard: %s: %s", self.path, error)
        return GuardConfigError(
            f"The workspace guard cannot use the notebooks service's configuration {self.path}: "
            f"{error}. No workspace server can start until an operator fixes it."
        )


_installed: dict[str, Any] = {}

#: how long the Hub's quota-usage answers reuse the guard before reading the file again (spawns always do)
GUARD_REUSE_SECONDS = 5.0


def current_guard() -> "WorkspaceGuard":
    """The guard for the service's configuration as it is now, read again at most every few seconds."""
    return _installed["get_guard"].recent(GUARD_REUSE_SECONDS)


def setup_workspace_guard(c: Config, service_config: str) -> None:
    """Install the guard in a ``jupyterhub_config.py``: ``setup_workspace_guard(c, path)``.

    ``path`` is the service's configuration file, so the Hub and the service
    share the catalogue, the workspace policy and the namespace template.
    The guard is built at the first spawn, so settings made later in the
    Hub's configuration (``c.WorkspaceGuard...``) still apply, and rebuilt
    whenever the configuration the file makes changes (see ``GuardLoader``).

    The guard runs in ``Spawner.run_pre_spawn_hook``, which the Hub calls on
    every spawn after ``apply_user_options``: it checks first, then runs the
    configured ``pre_spawn_hook``, then places the server. It wraps the method
    on the class, so no later configuration can remove it, and it composes with
    every hook that is configured. An ``apply_user_options`` hook (composed with
    one already configured) refuses every spawn if the spawner class overrides
    ``run_pre_spawn_hook`` and so bypasses the guard: it fails closed.
    """
    _installed["get_guard"] = GuardLoader(os.path.abspath(service_config), c)
    _wrap_run_pre_spawn_hook()
    # what quotas hold, counted here, for the service (hubquotas.py)
    from .hubquotas import HOLD_ROUTE, ROUTE, QuotaUsageHandler, RoomHoldHandler

    c.JupyterHub.extra_handlers = [
        *c.JupyterHub.get("extra_handlers", []),
        (ROUTE, QuotaUsageHandler),
        (HOLD_ROUTE, RoomHoldHandler),
    ]

    configured = c.Spawner.get("apply_user_options")  # the trait exists from JupyterHub 5.3; we require 5.5

    async def apply_user_options(spawner, user_options):
        if configured is not None:
            await maybe_future(configured(spawner, user_options))
        try:
            check_guard_in_place(spawner)
        except ServiceError as e:
            raise with_link_to_the_service(e, spawner) from None

    c.Spawner.apply_user_options = apply_user_options


def _wrap_run_pre_spawn_hook() -> None:
    from jupyterhub.spawner import Spawner

    if getattr(Spawner.run_pre_spawn_hook, "_workspace_guard", False):
        return
    run_configured_hook = Spawner.run_pre_spawn_hook

    async def run_pre_spawn_hook(spawner):
        guard = None
        try:
            guard = _installed["get_guard"]()
            checked = await guard.check(spawner, spawner.user_options)  # refuse before any hook acts on the options
        except ServiceError as e:
            raise with_link_to_the_service(e, spawner, guard) from None
        guard.record_class(spawner, checked)  # before admission: once admitted, others count it
        try:
            await guard.admit(spawner, checked)
        except ServiceError as e:
            raise with_link_to_the_service(e, spawner, guard) from None
        guard.placement.reset(spawner)  # a retry on the same Spawner starts from its configured values
        await maybe_future(run_configured_hook(spawner))
        guard.place(spawner, checked)  # last: what runs and where is the guard's decision

    run_pre_spawn_hook._workspace_guard = True
    Spawner.run_pre_spawn_hook = run_pre_spawn_hook


def with_link_to_the_service(error: ServiceError, spawner: Any, guard: "WorkspaceGuard | None" = None) -> ServiceError:
    """The refusal as JupyterHub shows it on its own pages (its spawn page, "Start My Server"): the
    reason (ServiceError.jupyterhub_message), and a link to the notebooks service, where workspace
    servers are started."""
    hub_prefix = getattr(getattr(spawner, "hub", None), "base_url", None) or "/hub/"
    name = guard.service.service_name if guard is not None else "notebooks"
    url = hub_prefix[: -len("hub/")] + f"services/{name}/" if hub_prefix.endswith("hub/") else f"/services/{name}/"
    error.jupyterhub_html_message = (
        f'{html.escape(error.message)} <a href="{html.escape(url)}">Open the notebooks service</a>'
    )
    return error


def check_guard_in_place(spawner: Any) -> None:
    """Refuse every spawn if the spawner's class bypasses the guard (it overrides run_pre_spawn_hook)."""
    if not getattr(type(spawner).run_pre_spawn_hook, "_workspace_guard", False):
        raise HubGuardMissing(
            f"The workspace guard is not in place: {type(spawner).__name__} overrides run_pre_spawn_hook. "
            "No server can start until an operator fixes the Hub's configuration."
        )


async def maybe_future(value: Any) -> Any:
    """The value, awaited if it is awaitable (hooks may be sync or async)."""
    return await value if inspect.isawaitable(value) else value
