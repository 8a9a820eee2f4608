"""Thin Tornado handlers: parse, authorize, call the Hub client, render.

``BaseHandler`` owns authentication (HubOAuth cookies for browsers, Hub API
tokens for JSON clients), the choice between HTML and JSON, and the one error
shape: ``{"status": <code>, "message": "..."}`` or an error page.
"""

import asyncio
import contextlib
import json
import posixpath
import re
from http.client import responses
from typing import Any
from urllib.parse import quote

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated, check_scopes
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tornado import web
from tornado.iostream import StreamClosedError
from tornado.log import app_log

from . import __version__, resources
from .auth import Caller, identify, renew_identity
from .errors import (
    HubError,
    HubUnavailable,
    InvalidRequest,
    NotAMember,
    NotFound,
    ServerBusy,
    ServiceError,
    ServiceUnavailable,
    SpawnFailed,
    TokenExpired,
    TooManyRequests,
    Unauthorized,
)
from .hub import Deadline, request_deadline
from .images import lookup_image
from .log import client_address, request_summary
from .metrics import LAUNCH_CLOCK, LAUNCH_FAILURES, LAUNCHES, REGISTRY
from .naming import check_workspace, display_name, server_name
from .openapi import describe
from .progress import QUIET

_DIGITS = re.compile(r"[0-9]{1,6}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

KUBERNETES_OFF = {
    "kubernetes": "off",
    "message": "Kubernetes diagnostics are off: this is the Hub's view only.",
    "details": {},
}


class RequestsInFlight:
    """The requests being served now, so that a shutdown can wait for them."""

    def __init__(self):
        self._handlers: set[web.RequestHandler] = set()
        self._empty = asyncio.Event()
        self._empty.set()

    def __len__(self) -> int:
        return len(self._handlers)

    def add(self, handler: web.RequestHandler) -> None:
        self._handlers.add(handler)
        self._empty.clear()

    def discard(self, handler: web.RequestHandler) -> None:
        self._handlers.discard(handler)
        if not self._handlers:
            self._empty.set()

    async def wait_empty(self, timeout: float) -> bool:
        """True once no request is in flight; False if some still are after ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._empty.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False


class BaseHandler(HubOAuthenticated, web.RequestHandler):
    """Authentication, content negotiation and errors for every page and API call."""

    #: False for handlers anyone may call (health probes)
    requires_user = True

    @property
    def hub_auth(self):
        return self.settings["hub_auth"]

    @hub_auth.setter
    def hub_auth(self, value):  # HubAuthenticated defines a setter; keep ours read-only in effect
        pass

    @property
    def hub(self):
        return self.settings["hub_client"]

    @property
    def policy(self):
        return self.settings["workspace_policy"]

    @property
    def identity_provider(self):
        return self.settings["identity_provider"]

    @property
    def catalogue(self) -> dict[str, dict[str, Any]]:
        return self.settings["image_catalogue"]

    @property
    def prefix(self) -> str:
        return self.settings["service_prefix"]

    def wants_json(self) -> bool:
        """JSON for clients that ask for it, and for token clients that do not ask for HTML."""
        accept = self.request.headers.get("Accept", "")
        if "application/json" in accept:
            return True
        return "Authorization" in self.request.headers and "text/html" not in accept

    current_user: Caller | None

    def get_current_user(self) -> None:
        # resolved asynchronously in prepare() (auth.identify); never block the loop on the Hub here
        return None

    #: what a page on an allowed origin may send (CORS preflight answers)
    cors_methods = "GET, POST, DELETE"
    cors_headers = "Authorization, Content-Type, Accept"

    def visited_from_here(self) -> bool:
        """Whether the browser says the person came from this site or on their own (a bookmark, a
        typed URL): Sec-Fetch-Site 'same-origin' or 'none'. A page elsewhere that sends them here,
        or a browser that does not say, gets the one-click start instead of a start by itself."""
        return self.request.headers.get("Sec-Fetch-Site") in ("same-origin", "none")

    def set_default_headers(self) -> None:
        # on every answer, errors included: no other site may frame our pages (clickjacking)
        for name, value in self.settings.get("security_headers", {}).items():
            self.set_header(name, value)
        # on every answer, errors included, so that an allowed page can read why
        origin = self.request.headers.get("Origin")
        if origin:
            self.set_header("Vary", "Origin")
            if origin in self.settings.get("allow_origins", ()):
                self.set_header("Access-Control-Allow-Origin", origin)
                self.set_header("Access-Control-Expose-Headers", "Retry-After")

    def options(self, *args: Any, **kwargs: Any) -> None:
        """A CORS preflight: allowed origins may send the API's methods and headers; no login needed."""
        if self.request.headers.get("Origin") not in self.settings.get("allow_origins", ()):
            raise ServiceError("Cross-origin requests from this origin are not allowed.", 403)
        self.set_header("Access-Control-Allow-Methods", self.cors_methods)
        self.set_header("Access-Control-Allow-Headers", self.cors_headers)
        self.set_header("Access-Control-Max-Age", "600")
        self.set_status(204)
        self.finish()

    async def prepare(self) -> None:
        self.request.remote_ip = client_address(self.request, self.settings["trusted_proxies"])
        self.settings["in_flight"].add(self)
        # one time budget for everything this request asks of the Hub: login check, retries, lock waits
        request_deadline.set(Deadline(self.settings["request_budget"]))
        if self.settings["draining"].is_set():
            self.set_header("Connection", "close")  # let the client find another replica
        if not self.requires_user or self.request.method == "OPTIONS":
            return  # probes, and CORS preflights (which never carry credentials)
        self.current_user = await identify(self)
        if self.current_user:
            return
        if self.request.method in ("GET", "HEAD") and not self.wants_json():
            self.redirect(self.get_login_url())
            return
        if self.hub_auth.cookie_name in self.request.cookies and self.request.method not in ("GET", "HEAD"):
            raise web.HTTPError(
                403, "Missing or invalid XSRF token: send the '_xsrf' form field or the X-XSRFToken header."
            )
        raise web.HTTPError(401, "Authentication required: log in through the Hub or send a Hub API token.")

    def on_finish(self) -> None:
        self.settings["in_flight"].discard(self)

    def _request_summary(self) -> str:
        # tornado logs this for every error; keep tokens in the URL out of it
        return request_summary(self)

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, web.HTTPError):
            super().log_exception(typ, value, tb)
        else:  # tornado's default would log repr(request), URL and all
            app_log.error("Uncaught exception %s", self._request_summary(), exc_info=(typ, value, tb))

    async def caller_model(self) -> dict[str, Any]:
        """The caller's Hub user model, for policy checks (with the JWT they presented, if any)."""
        model = await self.hub.get_user(self.current_user.name)
        if self.current_user.access_token:
            model = {**model, "access_token": self.current_user.access_token}
        return model

    async def with_fresh_identity(self, ask, user: dict[str, Any], *args: Any) -> Any:
        """``ask(user, *args)`` of the policy; if the identity token it reads has expired, renew it once and ask again."""
        try:
            return await ask(user, *args)
        except TokenExpired:
            await renew_identity(self)
        try:
            return await ask(await self.caller_model(), *args)
        except TokenExpired:  # the Hub kept the old token (no refresh token, or renewed too recently)
            raise Unauthorized("Your login has expired and could not be renewed: log in again.") from None

    # -- rendering ------------------------------------------------------------

    def render_template(self, name: str, **context: Any) -> None:
        template = self.settings["jinja_env"].get_template(name)
        self.finish(
            template.render(
                prefix=self.prefix,
                hub_prefix=self.settings["hub_prefix"],
                user=self.current_user,
                xsrf=self.xsrf_token.decode() if self.current_user else "",
                static_url=self.settings["hub_prefix"] + "static/",
                **context,
            )
        )

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = user_message(exc)
        if not message:
            # never a traceback to the client: a 500 means our bug, and is logged
            message = responses.get(status_code, "Unknown error")
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            self.set_header("Retry-After", str(retry_after))
        if status_code == 405:
            self.set_header("Allow", ", ".join(self.allowed_methods()))  # RFC 9110 asks for it
        if self.wants_json():
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"status": status_code, "message": message}))
            return
        try:
            self.render_template(
                "error.html", status_code=status_code, reason=responses.get(status_code, "Error"), message=message
            )
        except Exception:
            app_log.exception("Failed to render the error page")
            self.set_header("Content-Type", "text/plain")
            self.finish(f"{status_code}: {message}")

    def class_choices(self, workspaces: list[str]) -> dict[str, Any]:
        """What the start forms offer: the classes, each image's allowed ones and default, each workspace's narrowing."""
        classes = self.settings["resource_classes"]
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

    def begin_event_stream(self) -> None:
        """Answer with server-sent events, unbuffered on the way (progress, followed logs)."""
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")  # nginx: do not buffer the stream

    def allowed_methods(self) -> list[str]:
        """The methods this handler implements (OPTIONS: CORS preflights)."""
        return [
            m
            for m in ("GET", "HEAD", "POST", "DELETE", "OPTIONS")
            if getattr(type(self), m.lower()) is not getattr(web.RequestHandler, m.lower())
        ]

    # -- servers of this service ----------------------------------------------

    def status_url(self, workspace: str, image: str, notebook: str | None = None) -> str:
        """The service's page (and API path) of one server, optionally opening a notebook."""
        url = f"{self.prefix}{quote(workspace)}/{quote(image)}"
        return url + f"/{quote(notebook)}" if notebook else url

    async def checked_request(
        self, workspace: str, image: str, notebook: str | None = None
    ) -> tuple[dict[str, Any], dict[str, Any], str | None, str]:
        """Check a request about (workspace, image) for the caller, input before any Hub call.

        Returns the caller's Hub model, the catalogue entry, the checked notebook
        path and the server's name; raises 400/404/403 otherwise.
        """
        check_workspace(workspace)
        entry = lookup_image(self.catalogue, image)
        notebook = check_notebook_path(notebook)
        user = await self.caller_model()
        await self.with_fresh_identity(self.policy.check_member, user, workspace)
        return user, entry, notebook, server_name(workspace, image)

    def server_view(
        self, name: str, server: dict[str, Any], notebook: str | None = None, status: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Our JSON model of one of the user's servers, from the Hub's model (and Kubernetes' view)."""
        options = server.get("user_options") or {}
        workspace, image = options.get("workspace", ""), options.get("image", "")
        status_url = self.status_url(workspace, image)
        view = {
            "name": name,
            "workspace": workspace,
            "image": image,
            "resource_class": options.get("resource_class"),
            "display_name": server.get("display_name") or display_name(workspace, image),
            "ready": bool(server.get("ready")),
            "pending": server.get("pending"),
            "stopped": bool(server.get("stopped")),
            "url": server.get("url"),
            "progress_url": status_url + "/-/progress",  # ours: follows with the service's login
            "logs_url": status_url + "/-/logs",
            "hub_progress_url": server.get("progress_url"),
            "started": server.get("started"),
            "last_activity": server.get("last_activity"),
            "status_url": status_url,
        }
        if status is not None:
            view["status"] = status
        if notebook:
            view["notebook_url"] = self.notebook_url(view["url"], notebook)
        return view

    async def pod_status(self, workspace: str, server_name_: str) -> dict[str, Any]:
        """Kubernetes' view of the caller's server, or a status saying it is off or unreachable."""
        kube = self.settings.get("kube")
        if kube is None:
            return KUBERNETES_OFF
        return await kube.status(workspace, self.current_user.name, server_name_)

    def notebook_url(self, server_url: str, notebook: str) -> str:
        return self.settings["notebook_url_template"].format(server_url=server_url, notebook=quote(notebook))

    def my_servers(self, user_model: dict[str, Any]) -> list[dict[str, Any]]:
        """The user's servers that this service started, active and stopped, as our models.

        A stopped one (e.g. a failed start) still takes one of the Hub's named-server
        slots until it is removed (DELETE), so it is listed with ``stopped: true``.
        """
        views = []
        for group in ("servers", "stopped_servers"):
            for name, server in sorted((user_model.get(group) or {}).items()):
                options = server.get("user_options") or {}
                workspace, image = options.get("workspace"), options.get("image")
                if isinstance(workspace, str) and isinstance(image, str) and server_name(workspace, image) == name:
                    views.append(self.server_view(name, server))
        return views

    def requested_class(self) -> str | None:
        """The resource class a start asks for: a JSON body's, a form field's or the query's; two that disagree are a 400."""
        in_query = self.get_query_argument("resource_class", None) or None
        if _media_type(self.request.headers.get("Content-Type", "")) == "application/json":
            body = _json_object(self.request.body)
            unknown = sorted(set(body) - set(START_FIELDS))
            if unknown:
                raise InvalidRequest(
                    f"A start takes only {', '.join(map(repr, START_FIELDS))}, not {unknown[0][:80]!r}."
                )
            in_body = body.get("resource_class")
            if in_body is not None and not isinstance(in_body, str):
                raise InvalidRequest("resource_class must be a string.")
        else:
            in_body = self.get_body_argument("resource_class", None)
        in_body = in_body or None
        if in_query and in_body and in_query != in_body:
            raise InvalidRequest(
                f"The query asks for resource class {in_query[:80]!r} and the body for {in_body[:80]!r}: send one."
            )
        return in_body or in_query

    async def start(self, workspace: str, image: str, notebook: str | None) -> None:
        """Start (workspace, image) for the caller and answer: 201 ready, 202 pending, or a redirect."""
        user, entry, notebook, name = await self.checked_request(workspace, image, notebook)
        status_page = self.status_url(workspace, image, notebook)
        requested = self.requested_class()
        resource_class = resources.choose(
            entry, self.settings["resource_classes"], requested, self.policy.resource_classes_in(workspace)
        )
        options = {"workspace": workspace, "image": image}
        if resource_class:
            options["resource_class"] = resource_class["name"]
            running = (user.get("servers") or {}).get(name) or {}
            current = (running.get("user_options") or {}).get("resource_class")
            if requested and current and current != requested:
                raise ServiceError(
                    f"This server runs with the class {current!r}: stop it first to start it with {requested!r}.", 409
                )
        # the Hub answers 202 to a start already pending as to a new one: the model we read says which
        was_active = name in (user.get("servers") or {})
        try:
            server, started = await self.hub.start_server(user["name"], name, display_name(workspace, image), options)
            started = started and not was_active
        except ServiceError as e:
            LAUNCHES.labels(image, "failed").inc()
            LAUNCH_FAILURES.labels(_failure_reason(e)).inc()
            if self.wants_json() or not isinstance(e, SpawnFailed):
                raise
            self.redirect(status_page, status=303)  # the status page says why it failed
            return
        LAUNCHES.labels(image, "started" if started else "already_running").inc()
        if started:
            LAUNCH_CLOCK.started(user["name"], name)
        view = self.server_view(name, server, notebook)
        if self.wants_json():
            self.write_json(view, 201 if view["ready"] else 202)
        else:
            self.redirect(status_page, status=303)


#: the fields of a JSON start body
START_FIELDS = ("resource_class",)


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _json_object(body: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object (empty: an empty one), or a 400."""
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except ValueError:
        raise InvalidRequest("The request body is not valid JSON.") from None
    if not isinstance(value, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return value


def _failure_reason(e: ServiceError) -> str:
    """A label for why a start failed."""
    if isinstance(e, SpawnFailed):
        return "spawn_failed"
    if isinstance(e, HubUnavailable):
        return "hub_unavailable"
    if isinstance(e, ServerBusy):
        return "busy"
    return "hub_error" if isinstance(e, HubError) else f"http_{e.status_code}"


def user_message(exc: BaseException | None) -> str | None:
    """What an error says to people, as written (tornado %-escapes log_message when it has no args)."""
    if isinstance(exc, ServiceError):
        return exc.message
    if isinstance(exc, web.HTTPError) and exc.log_message:
        return exc.log_message % exc.args
    return None


def check_notebook_path(notebook: str | None) -> str | None:
    """A relative path inside the server, or a 400: no '..', nothing absolute."""
    if not notebook:
        return None
    parts = notebook.split("/")
    if notebook.startswith(("/", "\\")) or "\\" in notebook or any(p in ("", ".", "..") for p in parts):
        raise InvalidRequest(f"Invalid notebook path {notebook[:200]!r}: use a relative path without '..'")
    if _CONTROL.search(notebook):
        raise InvalidRequest(f"Invalid notebook path {notebook[:200]!r}: no control characters")
    return posixpath.normpath(notebook)


class ServerListHandler(BaseHandler):
    """``<prefix>/``: the caller's servers; a form POST starts one."""

    route = "/"
    refresh_seconds = 5  # the list page keeps its states current by reading its own JSON this often

    async def get(self) -> None:
        user = await self.caller_model()
        servers = self.my_servers(user)
        if self.wants_json():
            self.write_json(servers)
            return
        workspaces = sorted(await self.with_fresh_identity(self.policy.workspaces, user))
        self.render_template(
            "servers.html",
            servers=servers,
            refresh_seconds=self.refresh_seconds,
            workspaces=workspaces,
            images=self.catalogue,
            **self.class_choices(workspaces),
        )

    async def post(self) -> None:
        workspace = self.get_body_argument("workspace", "")
        image = self.get_body_argument("image", "")
        if not workspace or not image:
            raise InvalidRequest("Choose a workspace and an image.")
        await self.start(workspace, image, None)


class ServerHandler(BaseHandler):
    """``<prefix>/<workspace>/<image>[/<notebook>]``: show, start and stop one server."""

    route = "/{workspace}/{image}[/{notebook}]"

    async def get(self, workspace: str, image: str, notebook: str | None = None) -> None:
        user, entry, notebook, name = await self.checked_request(workspace, image, notebook)
        server = (user.get("servers") or {}).get(name)
        if server is None:
            # not running: say why the last start failed, if it did
            failure = await self.hub.last_spawn_failure(user["name"], name)
            if self.wants_json():
                raise NotFound(
                    f"You have no server for {display_name(workspace, image)}." + (f" {failure}" if failure else "")
                )
            kube = self.settings.get("kube")
            # after a failed start the pod may be gone; Kubernetes keeps its events for a while
            events = await kube.past_events(workspace, user["name"], name) if failure and kube else []
            self.render_status_page(workspace, entry, notebook, server=None, failure=failure, past_events=events)
            return
        view = self.server_view(name, server, notebook, await self.pod_status(workspace, name))
        if view["ready"]:
            LAUNCH_CLOCK.seen_ready(user["name"], name)
        if self.wants_json():
            self.write_json(view)
        elif view["ready"]:
            self.redirect(view.get("notebook_url") or view["url"])
        else:
            self.render_status_page(workspace, entry, notebook, server=view)

    def render_status_page(self, workspace, image, notebook, *, server, failure=None, past_events=()) -> None:
        classes = self.settings["resource_classes"]
        narrowed = self.policy.resource_classes_in(workspace)
        self.render_template(
            "status.html",
            resource_classes=resources.described(classes, resources.offered(image, classes, narrowed)),
            default_class=(resources.choose(image, classes, None, narrowed) or {}).get("name") if classes else None,
            start_on_visit=self.settings["start_on_visit"] and self.visited_from_here(),
            past_events=past_events,
            server=server,
            workspace=workspace,
            image=image,
            notebook=notebook,
            failure=failure,
            action_url=self.status_url(workspace, image["name"], notebook),
            progress_url=self.status_url(workspace, image["name"]) + "/-/progress",
            logs_url=self.status_url(workspace, image["name"]) + "/-/logs" if self.settings["server_logs"] else None,
        )

    async def post(self, workspace: str, image: str, notebook: str | None = None) -> None:
        # HTML forms cannot send DELETE: a form field asks for a stop instead
        if self.get_body_argument("action", "start") == "stop":
            await self.delete(workspace, image)
            return
        await self.start(workspace, image, notebook)

    def allowed_methods(self) -> list[str]:
        methods = super().allowed_methods()
        # a DELETE of <server>/<notebook> would stop the server, not delete the notebook: refused.
        # (A method tornado refuses is refused before path_kwargs are set: read the path then.)
        parts = self.request.path[len(self.prefix) :].split("/", 2)
        notebook = (getattr(self, "path_kwargs", None) or {}).get("notebook") or (len(parts) == 3 and parts[2])
        return [m for m in methods if m != "DELETE"] if notebook else methods

    async def delete(self, workspace: str, image: str, notebook: str | None = None) -> None:
        if notebook:
            raise web.HTTPError(405)
        # no membership or catalogue check: users may always stop their own servers,
        # even after leaving the workspace or once the image is withdrawn
        check_workspace(workspace)
        name = server_name(workspace, image)
        stopped = await self.hub.stop_server(self.current_user.name, name)
        if self.wants_json():
            if stopped:
                self.set_status(204)
                self.finish()
            else:
                self.write_json({"name": name, "workspace": workspace, "image": image, "pending": "stop"}, 202)
        else:
            self.redirect(self.prefix, status=303)


class ServerProgressHandler(BaseHandler):
    """``<prefix>/<workspace>/<image>/-/progress``: the start's progress as server-sent events.

    Follows the caller's server through the progress fan-out: the Hub's
    progress events, merged with the pod's Kubernetes events when diagnostics
    are on. Each event is JSON with ``progress`` (0-100) and ``message``; the
    last has ``ready`` or ``failed``, or ``reconnect`` when the service shuts down.
    """

    route = "/{workspace}/{image}/-/progress"

    keepalive_interval = 15
    watcher = None

    def wants_json(self) -> bool:
        return True  # a stream client cannot follow a login redirect: errors are JSON

    async def get(self, workspace: str, image: str) -> None:
        user, _, _, name = await self.checked_request(workspace, image)
        server = (user.get("servers") or {}).get(name)
        if server is None:
            failure = await self.hub.last_spawn_failure(user["name"], name)
            events = [{"progress": 100, "failed": True, "message": failure or "The server is not running."}]
        elif server.get("ready"):
            events = [{"progress": 100, "ready": True, "message": "Server ready", "url": server["url"]}]
        else:
            events = None
            # before any header is sent: over the caps, this is a plain 429/503 error
            self.watcher = self.settings["progress"].watch(user["name"], name, workspace)

        self.begin_event_stream()
        try:
            if events is not None:
                for event in events:
                    await self.send_event(event)
            else:
                await self.relay()
            self.finish()
        except StreamClosedError:
            pass  # the browser went away
        finally:
            if self.watcher is not None:
                self.watcher.close()

    async def send_event(self, event: dict[str, Any]) -> None:
        self.write(f"data: {json.dumps(event)}\n\n")
        await self.flush()

    async def relay(self) -> None:
        """Forward the server's events until its start ends, the browser leaves or the service stops."""
        while (event := await self.watcher.next(self.keepalive_interval)) is not None:
            if event is QUIET:
                self.write(": keepalive\n\n")  # keeps proxies from closing a quiet stream
                await self.flush()
            else:
                await self.send_event(event)

    def on_connection_close(self) -> None:
        # the browser left: let go of the upstream now, not at the next event
        if self.watcher is not None:
            self.watcher.close()
        self.settings["in_flight"].discard(self)


class ServerLogsHandler(BaseHandler):
    """``<prefix>/<workspace>/<image>/-/logs``: the caller's server's output.

    JSON lines (``{"line": ...}``) by default, ``text/plain`` when asked
    (``Accept`` or ``?format=text``), the last ``?tail=N`` lines (1000), the
    crashed container's with ``?previous=1`` (Kubernetes), followed as
    server-sent events with ``Accept: text/event-stream`` or ``?follow=1``.
    """

    route = "/{workspace}/{image}/-/logs"
    max_tail = 10000
    keepalive_interval = 15
    first_line_wait = 2  # seconds a follow waits for its first line (or error) before its stream begins
    _left: asyncio.Event | None = None

    def wants_json(self) -> bool:
        return True

    def _flag(self, name: str) -> bool:
        return self.get_query_argument(name, "").lower() in ("1", "true", "yes")

    def _tail(self) -> int:
        value = self.get_query_argument("tail", "1000")
        # ASCII digits only ('²'.isdigit() is true) and few of them (int() of 5000 digits is refused)
        if not _DIGITS.fullmatch(value) or int(value) > self.max_tail:
            raise InvalidRequest(f"tail must be a number of lines from 0 to {self.max_tail}.")
        return int(value)

    async def get(self, workspace: str, image: str) -> None:
        tail, previous = self._tail(), self._flag("previous")
        user, _, _, name = await self.checked_request(workspace, image)
        source = self.settings["server_logs"]
        if source is None:
            raise NotFound("Server logs are not available here (NotebooksService.server_logs is off).")
        accept = self.request.headers.get("Accept", "")
        if self._flag("follow") or "text/event-stream" in accept:
            with self._follow_slot(user["name"]):
                await self._follow(source.follow(workspace, user["name"], name, tail=tail))
            return
        lines = await source.lines(workspace, user["name"], name, tail=tail, previous=previous)
        if self.get_query_argument("format", "") == "text" or accept.startswith("text/plain"):
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish(self._last_that_fit(lines, lambda line: line + "\n"))
        else:
            self.set_header("Content-Type", "application/x-ndjson")
            self.finish(self._last_that_fit(lines, lambda line: json.dumps({"line": line}) + "\n"))

    def _last_that_fit(self, lines: list[str], encode) -> str:
        """As many of the last lines, encoded, as fit in max_log_bytes (JSON escapes can grow a line)."""
        room, kept = self.settings["max_log_bytes"], []
        for line in reversed(lines):
            encoded = encode(line)
            room -= len(encoded.encode())
            if room < 0:
                break
            kept.append(encoded)
        return "".join(reversed(kept))

    @contextlib.contextmanager
    def _follow_slot(self, user: str):
        """One of the user's and the process's followed logs (each holds a stream to Kubernetes or a file)."""
        following = self.settings["log_follows"]
        if sum(following.values()) >= self.settings["max_log_follows"]:
            raise ServiceUnavailable("The service follows as many server logs as it can; try again in a moment.")
        if following[user] >= self.settings["max_log_follows_per_user"]:
            raise TooManyRequests(
                f"You are following {following[user]} server logs at once, the most allowed: close one and try again."
            )
        following[user] += 1
        try:
            yield
        finally:
            following[user] -= 1
            if following[user] <= 0:
                del following[user]

    async def _follow(self, lines) -> None:
        """Send the log's lines as events until it ends, the reader leaves, or the service shuts down."""
        self._left = asyncio.Event()
        queue: asyncio.Queue = asyncio.Queue(maxsize=1)  # at most one (cut) line waits here

        async def pump() -> None:
            try:
                async for line in lines:
                    await queue.put(line)
                await queue.put(None)
            except Exception as e:  # handed to the writer: a plain error before the stream begins
                await queue.put(e)

        task = asyncio.ensure_future(pump())
        try:
            # a missing pod or file is known at once: then a plain error, before any header
            item = await self._next(queue, self.first_line_wait)
            if isinstance(item, Exception):
                raise item
            self.begin_event_stream()
            while item is not None:
                if item is QUIET:
                    self.write(": keepalive\n\n")
                elif isinstance(item, Exception):
                    app_log.warning("A followed server log ended: %s", user_message(item) or type(item).__name__)
                    self.write(f"data: {json.dumps({'error': user_message(item) or 'The log ended.'})}\n\n")
                    break
                else:
                    self.write(f"data: {json.dumps({'line': item})}\n\n")
                await self.flush()
                item = await self._next(queue, self.keepalive_interval)
            self.finish()
        except StreamClosedError:
            pass  # the reader went away
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _next(self, queue: asyncio.Queue, timeout: float) -> Any:
        """The queue's next item; QUIET after ``timeout`` seconds of silence; None as soon as the
        reader leaves or the service shuts down (the reader reconnects), so its slot is freed."""
        waits = [asyncio.ensure_future(self._left.wait()), asyncio.ensure_future(self.settings["draining"].wait())]
        getting = asyncio.ensure_future(queue.get())
        done, _ = await asyncio.wait([getting, *waits], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
        if getting in done:
            return getting.result()
        getting.cancel()  # safe: a cancelled get takes nothing from the queue
        return None if done else QUIET

    def on_connection_close(self) -> None:
        if self._left is not None:
            self._left.set()
        self.settings["in_flight"].discard(self)


class UserHandler(BaseHandler):
    """``<prefix>/user``: the caller's Hub user model."""

    route = "/user"

    async def get(self) -> None:
        model = await self.hub.get_user(self.current_user.name)
        # identity-provider tokens stay between the Hub and us (and the model is shared: copy it)
        self.write_json({k: v for k, v in model.items() if k != "auth_state"})


class HealthHandler(BaseHandler):
    """``<prefix>/health``: liveness of this process; no login, no Hub call."""

    route = "/health"

    requires_user = False

    def get(self) -> None:
        self.write_json({"status": "ok"})

    head = get


class ReadinessHandler(BaseHandler):
    """``<prefix>/ready``: 200 while the Hub answers and the service is not shutting down; else 503."""

    route = "/ready"

    requires_user = False

    def wants_json(self) -> bool:
        return True

    async def get(self) -> None:
        if self.settings["draining"].is_set():
            raise ServiceUnavailable("The service is shutting down.")
        await self.hub.check_ready(self.settings["readiness_timeout"])
        self.write_json({"status": "ok", "hub": "ok"})

    head = get


class MetricsHandler(BaseHandler):
    """``<prefix>/metrics``: Prometheus metrics, for a Hub token with the scope ``metrics_scope``.

    The same scope JupyterHub asks for its own ``/hub/metrics`` (``read:metrics``
    by default), so a scraper of the Hub's metrics reads these too. Cookies do not count.
    """

    route = "/metrics"
    requires_user = False

    def wants_json(self) -> bool:
        return True

    async def get(self) -> None:
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in ("token", "bearer") or not token.strip():
            raise Unauthorized(f"Metrics need a Hub API token with the scope {self.settings['metrics_scope']!r}.")
        try:
            model = await asyncio.wait_for(
                self.hub_auth.user_for_token(token.strip(), sync=False), request_deadline.get().remaining()
            )
        except asyncio.TimeoutError:
            raise HubUnavailable("Cannot check the token: the Hub did not answer in time.") from None
        if not model:
            raise Unauthorized("This token is not valid in the Hub.")
        if not check_scopes({self.settings["metrics_scope"]}, set(model.get("scopes") or ())):
            raise NotAMember(f"Metrics need the scope {self.settings['metrics_scope']!r}, which this token lacks.")
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(REGISTRY))


class OpenAPIHandler(BaseHandler):
    """``<prefix>/api/openapi.json``: the JSON API's OpenAPI 3.1 description; no login."""

    route = "/api/openapi.json"
    requires_user = False

    def get(self) -> None:
        self.write_json(describe(self.prefix, __version__))


class OpenMetricsHandler(web.RequestHandler):
    """``/metrics`` on ``NotebooksService.metrics_port``: for scrapers inside the cluster, no token."""

    route = "metrics_port /metrics"

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(REGISTRY))


class OAuthCallbackHandler(HubOAuthCallbackHandler):
    """Completes the Hub's OAuth login and sets the service's cookie."""

    route = "/oauth_callback"

    def set_default_headers(self) -> None:
        for name, value in self.settings.get("security_headers", {}).items():
            self.set_header(name, value)

    def _request_summary(self) -> str:
        return request_summary(self)  # its URL carries the OAuth code and state

    @property
    def hub_auth(self):
        return self.settings["hub_auth"]

    @hub_auth.setter
    def hub_auth(self, value):
        pass


class NotFoundHandler(BaseHandler):
    """Anything else under the prefix: a 404 in the usual shape."""

    route = "(no route)"

    requires_user = False

    def prepare(self) -> None:
        raise NotFound(f"No such page: {self.request.path[:200]}")
