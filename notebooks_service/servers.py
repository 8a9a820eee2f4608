"""The launcher: between the handlers and the Hub, for the servers of this service.

``Launcher`` checks a request about (workspace, image) for the caller (the
workspace's name, the catalogue, the notebook path, membership with a fresh
identity, the resource class), starts, stops and lists servers, builds the
server model the API answers with, and counts launches. Handlers parse the
request, call it, and render what it returns; it never sees a request.
"""

import dataclasses
import datetime
import math
import posixpath
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from traitlets import Float, Unicode
from traitlets.config import LoggingConfigurable

from . import resources
from .admission import Admission
from .errors import (
    HubError,
    HubUnavailable,
    InvalidRequest,
    NotFound,
    ServerBusy,
    ServiceError,
    SpawnFailed,
    TokenExpired,
    Unauthorized,
)
from .images import lookup_image
from .metrics import LAUNCH_CLOCK, LAUNCH_FAILURES, LAUNCHES
from .naming import check_workspace, display_name, server_name
from .offers import rooms, workspace_offers
from .placement import WorkspacePlacement
from .quotas import Quotas

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Identity(Protocol):
    """Who is asking, as the launcher needs to know it (a handler is one)."""

    async def caller_model(self) -> dict[str, Any]:
        """The caller's Hub user model (with the JWT they presented, if any)."""

    async def renew_identity(self) -> None:
        """Have the Hub renew the identity provider's tokens it keeps for the caller."""


@dataclass
class ServerRequest:
    """A checked request about the caller's server for (workspace, image)."""

    user: dict[str, Any]  # the caller's Hub model, as read for this request
    workspace: str
    image: dict[str, Any]  # the catalogue entry
    notebook: str | None
    name: str  # the named server's name

    @property
    def server(self) -> dict[str, Any] | None:
        """The Hub's model of the server if it is active (running or pending), else None."""
        return (self.user.get("servers") or {}).get(self.name)

    @property
    def display_name(self) -> str:
        return display_name(self.workspace, self.image["name"])

    @property
    def last_class(self) -> str | None:
        """The resource class the server runs with, or last ran with (a stopped one), if any."""
        for group in ("servers", "stopped_servers"):
            server = (self.user.get(group) or {}).get(self.name)
            if server is not None:
                return (server.get("user_options") or {}).get("resource_class")
        return None


class Launcher(LoggingConfigurable):
    """Starts, stops and lists the caller's workspace servers through the Hub client."""

    notebook_url_template = Unicode(
        "{server_url}lab/tree/{notebook}",
        help="Where a requested notebook opens in a ready server; {server_url} ends with '/'.",
    ).tag(config=True)
    keep_running_interval = Float(
        10,
        help="""Seconds within which a second "Keep running" of the same server is answered
        without asking the Hub again (the culler counts in minutes; the Hub writes its database
        for each report): a user pressing it, or a script calling it in a loop, costs the Hub
        at most one activity report per server per interval and replica. Never more than a
        tenth of NotebooksService.idle_timeout.""",
    ).tag(config=True)

    def __init__(
        self,
        *,
        hub: Any,
        policy: Any,
        catalogue: dict[str, dict[str, Any]],
        resource_classes: dict[str, dict[str, Any]],
        prefix: str,
        diagnostics: Any,
        quotas: Quotas | None = None,
        idle_timeout: float = 0,
        placement: WorkspacePlacement | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        # the placement the Hub-side guard applies, read from the same file: what storage a workspace has
        self.placement = placement or WorkspacePlacement(parent=self)
        self.quotas = quotas or Quotas({}, {}, resource_classes)
        self.admission = Admission(hub, self.quotas)  # starts under the quotas (admission.py)
        self.idle_timeout = idle_timeout  # NotebooksService.idle_timeout: the culler's, 0 if none is known
        self._kept: dict[tuple, float] = {}  # (user, server, started) -> when Keep running last reached the Hub
        self.hub = hub
        self.policy = policy
        self.catalogue = catalogue
        self.resource_classes = resource_classes
        self.prefix = prefix
        self.diagnostics = diagnostics

    # -- who may ask for what -------------------------------------------------

    async def check(self, identity: Identity, workspace: str, image: str, notebook: str | None = None) -> ServerRequest:
        """A request about (workspace, image) for the caller, its input checked before any Hub call;
        else 400 (names, path), 404 (image), 403 (not a member)."""
        check_workspace(workspace)
        entry = lookup_image(self.catalogue, image)
        notebook = check_notebook_path(notebook)
        user, _ = await self.with_fresh_identity(identity, self.policy.check_member, workspace)
        return ServerRequest(user, workspace, entry, notebook, server_name(workspace, image))

    async def workspaces(self, identity: Identity) -> tuple[dict[str, Any], list[str]]:
        """The caller's model as it was asked about, and the workspaces they may use, sorted."""
        user, workspaces = await self.with_fresh_identity(identity, self.policy.workspaces)
        return user, sorted(workspaces)

    async def offers(self, identity: Identity) -> dict[str, Any]:
        """What the caller may start where, with each workspace's room (offers.py: GET /workspaces)."""
        user, workspaces = await self.with_fresh_identity(identity, self.policy.workspaces)
        configured = self.quotas.configured
        usage = await self.admission.usage.get(sorted(workspaces), user["name"]) if configured else None
        return workspace_offers(self, user, sorted(workspaces), usage)

    async def rooms(self, workspaces: list[str]) -> dict[str, dict[str, Any]]:
        """Workspace -> how much of its quota is in use (start forms: offers.rooms); {} without quotas."""
        if not self.quotas.configured:
            return {}
        return rooms(self.quotas, workspaces, (await self.admission.usage.get(workspaces, ""))[0])

    async def with_fresh_identity(self, identity: Identity, ask, *args: Any) -> tuple[dict[str, Any], Any]:
        """``ask(user, *args)`` of the policy, with the caller's model; if the identity token it reads
        has expired, renew it once and ask again. Returns the model asked about, and the answer."""
        user = await identity.caller_model()
        try:
            return user, await ask(user, *args)
        except TokenExpired:
            await identity.renew_identity()
        user = await identity.caller_model()
        try:
            return user, await ask(user, *args)
        except TokenExpired:  # the Hub kept the old token (no refresh token, or renewed too recently)
            raise Unauthorized("Your login has expired and could not be renewed: log in again.") from None

    # -- starting and stopping ------------------------------------------------

    def start_options(self, request: ServerRequest, requested_class: str | None) -> dict[str, Any]:
        """The user_options of a start: the workspace, the image, and the class asked for (checked: a 400
        if it is not offered) or else the image's default."""
        resource_class = resources.choose(
            request.image, self.resource_classes, requested_class, self.policy.resource_classes_in(request.workspace)
        )
        options = {"workspace": request.workspace, "image": request.image["name"]}
        if resource_class:
            options["resource_class"] = resource_class["name"]
        return options

    async def start(self, request: ServerRequest, requested_class: str | None) -> dict[str, Any]:
        """Start the server (or find it running or starting) and return its model; count the launch."""
        options = self.start_options(request, requested_class)
        running = request.server
        current = ((running or {}).get("user_options") or {}).get("resource_class")
        if requested_class and current and "resource_class" in options and current != requested_class:
            raise ClassConflict(current, requested_class)
        if running is not None:
            return await self._start(request, options)  # running or starting: nothing new to count
        return await self.admission.start(request, options, self._start)

    async def restart(self, request: ServerRequest, requested_class: str | None) -> dict[str, Any]:
        """Stop the server and start it again, with ``requested_class`` or else the class it ran with.

        The class is checked before anything stops (a 400 changes nothing); a server still
        starting is a 409. One that is not running is started: a restart asked again after a
        broken connection does not fail for having half-happened the first time.
        """
        running = request.server
        if running is not None and running.get("pending") == "spawn":
            raise ServerBusy("This server is still starting: restart it once it runs.")
        options = self.start_options(request, requested_class or request.last_class)
        user = request.user["name"]
        if running is None:
            request = dataclasses.replace(request, user=await self.hub.get_user(user, fresh=True))
            return await self.admission.start(request, options, self._start)

        async def stop(request: ServerRequest) -> ServerRequest:
            if not await self.hub.stop_server(user, request.name, remove=False):
                await self.hub.wait_until_stopped(user, request.name)
            self.log.info("Restarting %s/%s with %s", user, request.name, options.get("resource_class") or "no class")
            return dataclasses.replace(request, user=await self.hub.get_user(user, fresh=True))

        return await self.admission.restart(request, options, stop, self._start)

    async def keep_running(self, request: ServerRequest) -> None:
        """Record activity on the server now, through the Hub (the culler counts its idle time from it)."""
        if request.server is None:
            raise not_running(request, None)
        # one run of the server: after a restart its first report is news again
        key, now = (request.user["name"], request.name, request.server.get("started")), time.monotonic()
        interval = (
            min(self.keep_running_interval, self.idle_timeout / 10) if self.idle_timeout else self.keep_running_interval
        )
        if now - self._kept.get(key, -math.inf) < interval:
            return  # reported moments ago: the culler's clock has not moved in any way that matters
        await self.hub.record_activity(request.user["name"], request.name, utc_now())
        # forget the old ones first: the table holds only the servers kept within one interval
        self._kept = {k: t for k, t in self._kept.items() if now - t < interval}
        self._kept[key] = now

    async def _start(self, request: ServerRequest, options: dict[str, Any]) -> dict[str, Any]:
        image, running = request.image["name"], request.server
        user = request.user["name"]
        try:
            server, started = await self.hub.start_server(user, request.name, request.display_name, options)
        except ServiceError as e:
            LAUNCHES.labels(image, "failed").inc()
            LAUNCH_FAILURES.labels(_failure_reason(e)).inc()
            raise
        # the Hub answers 202 to a start already pending as to a new one: the model we read says which.
        # Only a pending one counts: the Hub refuses a running one (400), so a cached model that says
        # 'running' is stale (stopped from elsewhere since), and this start is a new one.
        started = started and not (running and running.get("pending") == "spawn")
        LAUNCHES.labels(image, "started" if started else "already_running").inc()
        if started:
            LAUNCH_CLOCK.started(user, request.name)
        return self.model(request.name, server, request.notebook)

    async def stop(self, user: str, workspace: str, image: str, *, remove: bool = False) -> bool:
        """Stop the user's server, keeping it to start again (its options and shares stay), or with
        ``remove`` remove it (the Hub deletes its shares); True once stopped, False while stopping.

        No membership or catalogue check: users may always stop their own servers,
        even after leaving the workspace or once the image is withdrawn.
        """
        check_workspace(workspace)
        return await self.hub.stop_server(user, server_name(workspace, image), remove=remove)

    # -- what there is --------------------------------------------------------

    async def status(self, request: ServerRequest) -> dict[str, Any]:
        """The model of the caller's active server with Kubernetes' view; notes a server seen ready."""
        model = self.model(
            request.name,
            request.server,
            request.notebook,
            await self.diagnostics.status(request.workspace, request.user["name"], request.name),
        )
        if model["ready"]:
            LAUNCH_CLOCK.seen_ready(request.user["name"], request.name)
        return model

    async def last_failure(self, request: ServerRequest) -> str | None:
        """Why the last start of the caller's (not active) server failed, if the Hub remembers."""
        return await self.hub.last_spawn_failure(request.user["name"], request.name)

    async def past_events(self, request: ServerRequest) -> list[dict[str, Any]]:
        """The last events of the server's pod: after a failed start it may be gone, its events not."""
        return await self.diagnostics.past_events(request.workspace, request.user["name"], request.name)

    def servers(self, user_model: dict[str, Any], member_of: Iterable[str]) -> list[dict[str, Any]]:
        """The user's servers that this service started, active and stopped, as our models. A stopped
        one (a failed start) takes a named-server slot until removed: listed with ``stopped: true``.
        One in a workspace not in ``member_of`` has ``member: false`` and no URL: only Stop works."""
        member_of = set(member_of)
        views = []
        for group in ("servers", "stopped_servers"):
            for name, server in sorted((user_model.get(group) or {}).items()):
                options = server.get("user_options") or {}
                workspace, image = options.get("workspace"), options.get("image")
                if isinstance(workspace, str) and isinstance(image, str) and server_name(workspace, image) == name:
                    views.append(self.model(name, server, member=workspace in member_of))
        return views

    def model(
        self,
        name: str,
        server: dict[str, Any],
        notebook: str | None = None,
        status: dict[str, Any] | None = None,
        *,
        member: bool = True,
    ) -> dict[str, Any]:
        """Our JSON model of one of the user's servers, from the Hub's model (and Kubernetes' view)."""
        options = server.get("user_options") or {}
        workspace, image = options.get("workspace", ""), options.get("image", "")
        status_url = self.status_url(workspace, image)
        model = {
            "name": name,
            "workspace": workspace,
            "image": image,
            "resource_class": options.get("resource_class"),
            "display_name": server.get("display_name") or display_name(workspace, image),
            "ready": bool(server.get("ready")),
            "pending": server.get("pending"),
            "stopped": bool(server.get("stopped")),
            "member": member,
            "url": server.get("url") if member else None,
            "progress_url": status_url + "/-/progress",  # ours: follows with the service's login
            "logs_url": status_url + "/-/logs",
            "hub_progress_url": server.get("progress_url"),
            "started": server.get("started"),
            "last_activity": server.get("last_activity"),
            "culls_at": self.culls_at(server),
            "status_url": status_url,
            "details_url": self.details_url(workspace, image),
            "storage": self.placement.storage(workspace) if workspace else [],
        }
        if status is not None:
            model["status"] = status
        if notebook:
            model["notebook_url"] = self.notebook_url_template.format(server_url=model["url"], notebook=quote(notebook))
        return model

    def culls_at(self, server: dict[str, Any]) -> str | None:
        """When the idle culler stops a running server that stays idle: its last activity (as the
        culler reads it, else its start) plus ``idle_timeout``; None if no timeout is known."""
        if not self.idle_timeout or not server.get("ready") or server.get("pending"):
            return None
        since = _parse_time(server.get("last_activity") or server.get("started"))
        if since is None:
            return None
        return _format_time(since + datetime.timedelta(seconds=self.idle_timeout))

    def details_url(self, workspace: str, image: str) -> str:
        """A running server's page (and its model)."""
        return self.status_url(workspace, image) + "/-/details"

    def status_url(self, workspace: str, image: str, notebook: str | None = None) -> str:
        """The service's page (and API path) of one server, optionally opening a notebook."""
        url = f"{self.prefix}{quote(workspace)}/{quote(image)}"
        return url + f"/{quote(notebook)}" if notebook else url

    # -- what a start form offers -----------------------------------------------

    def choices(self, workspaces: list[str]) -> dict[str, Any]:
        """The classes, each image's allowed ones and default, each workspace's narrowing."""
        classes = self.resource_classes
        if not classes:
            return {"resource_classes": {}}
        per_image = {}
        for name, entry in self.catalogue.items():
            default = resources.choose(entry, classes, None)
            per_image[name] = {"allowed": resources.offered(entry, classes), "default": default["name"]}
        return {
            "resource_classes": resources.described(classes, list(classes)),
            "class_rules": {
                "images": per_image,
                "workspaces": {w: self.policy.resource_classes_in(w) for w in workspaces},
            },
        }

    def classes_for(self, request: ServerRequest) -> tuple[dict[str, Any], str | None]:
        """The classes (described) the server may start with, and the default."""
        classes = self.resource_classes
        narrowed = self.policy.resource_classes_in(request.workspace)
        offered = resources.described(classes, resources.offered(request.image, classes, narrowed))
        default = (resources.choose(request.image, classes, None, narrowed) or {}).get("name") if classes else None
        return offered, default


def check_notebook_path(notebook: str | None) -> str | None:
    """A relative path inside the server, or a 400: no '..', nothing absolute, no control characters."""
    if not notebook:
        return None
    parts = notebook.split("/")
    if notebook.startswith(("/", "\\")) or "\\" in notebook or any(p in ("", ".", "..") for p in parts):
        raise InvalidRequest(f"Invalid notebook path {notebook[:200]!r}: use a relative path without '..'")
    if _CONTROL.search(notebook):
        raise InvalidRequest(f"Invalid notebook path {notebook[:200]!r}: no control characters")
    return posixpath.normpath(notebook)


class ClassConflict(ServiceError):
    """A start asks for another class than the server runs with: a restart, not a second server."""

    status_code = 409

    def __init__(self, current: str, requested: str):
        super().__init__(
            f"This server runs with the class {current!r}: restart it to run it with {requested!r}"
            f" (POST <server>/-/restart?resource_class={requested}), or stop it first."
        )
        self.current, self.requested = current, requested


def _parse_time(value: Any) -> datetime.datetime | None:
    """A time the Hub wrote (ISO 8601, 'Z' or an offset; naive means UTC), or None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def near_idle_stop(model: dict[str, Any], warning: float) -> bool:
    """Whether a server's ``culls_at`` is within ``warning`` seconds (0: never warn): pages then
    warn and offer "Keep running"."""
    left = seconds_until(model.get("culls_at"))
    return bool(warning) and left is not None and left <= warning


def seconds_until(value: str | None) -> float | None:
    """Seconds from now until a time the Hub (or ``culls_at``) wrote; None if there is none."""
    when = _parse_time(value)
    return None if when is None else (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds()


def utc_now() -> str:
    """Now, as the Hub writes times."""
    return _format_time(datetime.datetime.now(datetime.timezone.utc))


def _format_time(value: datetime.datetime) -> str:
    """As the Hub writes times: ISO 8601 in UTC with 'Z'."""
    return value.astimezone(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def not_running(request: ServerRequest, failure: str | None) -> NotFound:
    """The 404 of a server that is not active, with why its last start failed."""
    return NotFound(f"You have no server for {request.display_name}." + (f" {failure}" if failure else ""))


def _failure_reason(e: ServiceError) -> str:
    """A label for why a start failed."""
    if isinstance(e, SpawnFailed):
        return "spawn_failed"
    if isinstance(e, HubUnavailable):
        return "hub_unavailable"
    if isinstance(e, ServerBusy):
        return "busy"
    return "hub_error" if isinstance(e, HubError) else f"http_{e.status_code}"
