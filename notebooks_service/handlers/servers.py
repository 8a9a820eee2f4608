"""The server handlers: the list of the caller's servers, and one server (show, start, stop)."""

import json
from typing import Any
from urllib.parse import urlencode

from ..errors import InvalidRequest, ServiceError, SpawnFailed, UnsupportedMediaType
from ..naming import server_name
from ..servers import ClassConflict, ServerRequest, near_idle_stop, not_running, utc_now
from .base import BaseHandler

#: characters of a refused share form's names field given back to it
MAX_TYPED = 2000

#: the fields of a JSON start body
START_FIELDS = ("resource_class",)


class StartingHandler(BaseHandler):
    """What the list and a server's page share: a start, asked by a form, a query or a JSON body."""

    def requested_class(self) -> str | None:
        """The resource class a start asks for: a JSON body's, a form field's or the query's; two that disagree are a 400."""
        in_query = self.get_query_argument("resource_class", None) or None
        body = json_body(self.request)
        if body is not None:
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
        request = await self.launcher.check(self, workspace, image, notebook)
        status_page = self.launcher.status_url(workspace, image, request.notebook)
        try:
            model = await self.launcher.start(request, self.requested_class())
        except SpawnFailed:
            if self.wants_json():
                raise
            self.redirect(status_page, status=303)  # the status page says why it failed
            return
        except ClassConflict as conflict:
            if self.wants_json():
                raise
            # a person pressing Start wants the server: its page asks whether to restart it in the other class
            details = self.launcher.details_url(workspace, image)
            self.redirect(details + "?" + urlencode({"resource_class": conflict.requested}), status=303)
            return
        if self.wants_json():
            self.write_json(model, 201 if model["ready"] else 202)
        else:
            self.redirect(status_page, status=303)


#: what a request body may be: JSON, or a form (read with get_body_argument)
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def json_body(request: Any) -> dict[str, Any] | None:
    """A request body read by the type its Content-Type names: a JSON object for application/json, None
    for a form or no body at all; any other type with a body is a 415 (a JSON body labelled
    text/plain is not "no body": read as none, a DELETE of shares would revoke them all)."""
    media = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if media == "application/json":
        return _json_object(request.body)
    if media in FORM_TYPES or not request.body:
        return None
    said = repr(media[:80]) if media else "no Content-Type"
    raise UnsupportedMediaType(
        f"A request body must be application/json or a form (application/x-www-form-urlencoded), not {said}."
    )


def _json_object(body: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object (empty: an empty one), or a 400."""
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except ValueError:
        raise InvalidRequest("The request body is not valid JSON.") from None
    except RecursionError:  # the C parser's depth limit: a hostile body, never a 500
        raise InvalidRequest("The request body nests too deeply.") from None
    if not isinstance(value, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return value


class ServerListHandler(StartingHandler):
    """``<prefix>/``: the caller's servers; a form POST starts one."""

    refresh_seconds = 5  # the list page keeps its states current by reading its own JSON this often

    async def get(self) -> None:
        user, workspaces = await self.launcher.workspaces(self)
        # one in a workspace they have left is listed without its URL: only Stop works on it
        servers = self.launcher.servers(user, workspaces)
        if self.wants_json():
            self.write_json(servers)
            return
        shared = await self.components.sharing.received(user, workspaces)
        warning = self.components.idle_warning
        rooms = await self.launcher.rooms(workspaces)
        for workspace, room in rooms.items():  # a full workspace's form leads to the caller's own servers there
            room["own"] = [
                {"name": f"{s['workspace']}/{s['image']}", "url": s["details_url"]}
                for s in servers
                if room["full"] and s["workspace"] == workspace and not s["stopped"] and s["member"]
            ]
        self.render_template(
            "servers.html",
            servers=servers,
            shared=shared,  # other members' servers shared with the caller
            # those the culler stops soon if they stay idle: their rows offer "Keep running"
            warned={s["name"] for s in servers if near_idle_stop(s, warning)},
            # Keep running was just pressed on this row: the page says until when it runs now
            kept=next((s for s in servers if s["name"] == self.get_query_argument("kept", "")), None),
            idle_warning=warning,
            leaver_stops_within=self.components.leaver_stops_within,
            now=utc_now(),
            # the start form preselects the class a server of (workspace, image) last ran with
            rooms=rooms,  # how much of each workspace's quota is in use
            last_classes={
                f"{s['workspace']}/{s['image']}": s["resource_class"] for s in servers if s["resource_class"]
            },
            refresh_seconds=self.refresh_seconds,
            workspaces=workspaces,
            images=self.launcher.catalogue,
            **self.launcher.choices(workspaces),
        )

    async def post(self) -> None:
        workspace = self.get_body_argument("workspace", "")
        image = self.get_body_argument("image", "")
        if not workspace or not image:
            raise InvalidRequest("Choose a workspace and an image.")
        await self.start(workspace, image, None)


class ServerHandler(StartingHandler):
    """``<prefix>/<workspace>/<image>[/<notebook>]``: show, start and stop one server."""

    async def get(self, workspace: str, image: str, notebook: str | None = None) -> None:
        request = await self.launcher.check(self, workspace, image, notebook)
        if request.server is None:
            # not running: say why the last start failed, if it did
            failure = await self.launcher.last_failure(request)
            if self.wants_json():
                raise not_running(request, failure)
            # after a failed start the pod may be gone; Kubernetes keeps its events for a while
            events = await self.launcher.past_events(request) if failure else []
            self.render_status_page(request, server=None, failure=failure, past_events=events)
            return
        model = await self.launcher.status(request)
        if self.wants_json():
            self.write_json(model)
        elif model["ready"]:
            self.redirect(model.get("notebook_url") or model["url"])
        else:
            self.render_status_page(request, server=model)

    def render_status_page(
        self, request: ServerRequest, *, server: dict[str, Any] | None, failure: str | None = None, past_events=()
    ) -> None:
        resource_classes, default_class = self.launcher.classes_for(request)
        if request.last_class in resource_classes:
            default_class = request.last_class  # the start form offers what it last ran with
        status_url = self.launcher.status_url(request.workspace, request.image["name"])
        self.render_template(
            "status.html",
            resource_classes=resource_classes,
            default_class=default_class,
            start_on_visit=self.components.start_on_visit and self.visited_from_here(),
            kubernetes_on=self.components.diagnostics.enabled,
            removable=server is None and request.name in (request.user.get("stopped_servers") or {}),
            past_events=past_events,
            server=server,
            workspace=request.workspace,
            image=request.image,
            notebook=request.notebook,
            failure=failure,
            action_url=self.launcher.status_url(request.workspace, request.image["name"], request.notebook),
            progress_url=status_url + "/-/progress",
            logs_url=status_url + "/-/logs" if self.components.server_logs else None,
        )

    async def post(self, workspace: str, image: str, notebook: str | None = None) -> None:
        # HTML forms cannot send DELETE: a form field asks for a stop (or a removal) instead
        action = self.get_body_argument("action", "start")
        if action in ("stop", "remove"):
            await self._stop(workspace, image, remove=action == "remove")
            return
        await self.start(workspace, image, notebook)

    async def delete(self, workspace: str, image: str) -> None:
        # (not <server>/<notebook>: routes.py refuses a DELETE that would stop the server, not delete the notebook)
        remove = self.get_query_argument("remove", "false")
        if remove not in ("true", "false"):
            raise InvalidRequest("remove must be true (remove the server) or false (stop it, the default).")
        body = json_body(self.request)  # or as the Hub's own API takes it: {"remove": true}
        if body is not None:
            if set(body) - {"remove"} or not isinstance(body.get("remove", False), bool):
                raise InvalidRequest('A stop takes only {"remove": true or false} (or ?remove=true).')
            remove = "true" if body.get("remove") else remove
        await self._stop(workspace, image, remove=remove == "true")

    async def _stop(self, workspace: str, image: str, *, remove: bool) -> None:
        stopped = await self.launcher.stop(self.current_user.name, workspace, image, remove=remove)
        if self.wants_json():
            if stopped:
                self.set_status(204)
                self.finish()
            else:
                name = server_name(workspace, image)
                self.write_json({"name": name, "workspace": workspace, "image": image, "pending": "stop"}, 202)
        else:
            self.redirect(self.prefix, status=303)


class ServerDetailsHandler(BaseHandler):
    """``<prefix>/<workspace>/<image>/-/details``: a running server's page: its class, times, idle
    deadline, log and actions (open, keep running, restart, stop). JSON: its model.

    A server that is not running (or still starting) has its status page instead, which
    says why it stopped or follows its start.
    """

    async def get(self, workspace: str, image: str) -> None:
        request = await self.launcher.check(self, workspace, image)
        server = request.server
        if not self.wants_json() and (server is None or server.get("pending") == "spawn"):
            self.redirect(self.launcher.status_url(workspace, image))
            return
        if server is None:
            raise not_running(request, await self.launcher.last_failure(request))
        model = await self.launcher.status(request)
        if self.wants_json():
            self.write_json(model)
            return
        await render_details(self, request, model)


async def render_details(
    handler: BaseHandler, request: Any, model: dict[str, Any], *, share_error: str = "", share_names: str = ""
) -> None:
    """The details page of the caller's running server; a share its form asked for and that was refused
    comes back here, its message beside the field and the names typed kept."""
    workspace, image = request.workspace, request.image
    resource_classes, _ = handler.launcher.classes_for(request)
    sharing = handler.components.sharing
    shared = await sharing.shared_with(request)
    asked = handler.get_query_argument("resource_class", "")
    current = model["resource_class"]
    warning = handler.components.idle_warning
    handler.render_template(
        "details.html",
        server=model,
        workspace=workspace,
        image=image,
        resource_classes=resource_classes,
        shared_with=shared["users"],
        shared_with_workspace=shared["workspace"],
        workspace_shares=sharing.workspace_group(workspace)[0] is not None,
        # Start pressed with another class (or a link asking for one): offer that restart
        restart_offer=asked if asked in resource_classes and asked != current else None,
        idle_warning=warning,
        warn=near_idle_stop(model, warning),
        kept=handler.get_query_argument("kept", "") == "1",  # Keep running was just pressed
        share_error=share_error,
        share_names=share_names,
        now=utc_now(),
        logs_url=model["status_url"] + "/-/logs" if handler.components.server_logs else None,
    )


class ServerRestartHandler(StartingHandler):
    """``<prefix>/<workspace>/<image>/-/restart[?resource_class=X]``: stop the server and start it
    again, in the class asked for (within the offer) or the one it ran with."""

    async def post(self, workspace: str, image: str) -> None:
        request = await self.launcher.check(self, workspace, image)
        status_page = self.launcher.status_url(workspace, image)
        try:
            model = await self.launcher.restart(request, self.requested_class())
        except SpawnFailed:
            if self.wants_json():
                raise
            self.redirect(status_page, status=303)
            return
        if self.wants_json():
            self.write_json(model, 202)
        else:
            self.redirect(status_page, status=303)  # follows the new start, then opens the server


class ServerActivityHandler(BaseHandler):
    """``<prefix>/<workspace>/<image>/-/activity``: "Keep running": record activity on the server
    now, through the Hub's activity API, so that the idle culler counts from now."""

    async def post(self, workspace: str, image: str) -> None:
        request = await self.launcher.check(self, workspace, image)
        await self.launcher.keep_running(request)
        if self.wants_json():
            self.set_status(204)
            self.finish()
        elif self.get_body_argument("from", "") == "list":  # the page says it worked, and until when
            self.redirect(f"{self.prefix}?kept={request.name}", status=303)
        else:
            self.redirect(self.launcher.details_url(workspace, image) + "?kept=1", status=303)


class WorkspacesHandler(BaseHandler):
    """``<prefix>/workspaces``: the caller's workspaces, each with the images and classes allowed
    there, its quota and what of it is in use, and the caller's servers in it (JSON only): all a
    web presence needs to draw its own launcher."""

    def wants_json(self) -> bool:
        return True

    async def get(self) -> None:
        self.write_json(await self.launcher.offers(self))


class ServerSharesHandler(BaseHandler):
    """``<prefix>/<workspace>/<image>/-/shares``: with whom the caller's server is shared (GET),
    share it with members of its workspace (POST ``{"users": [...]}`` and/or ``{"workspace": true}``),
    revoke (DELETE with the same, or nothing for all). Forms post ``users``, ``workspace`` and
    ``action=revoke``."""

    def _recipients(self) -> tuple[Any, bool]:
        """(users or None, whether the whole workspace) from a JSON body or a form."""
        body = json_body(self.request)
        if body is not None:
            unknown = sorted(set(body) - {"users", "workspace"})
            if unknown:
                raise InvalidRequest(f'A share takes only "users" and "workspace", not {unknown[0][:80]!r}.')
            workspace = body.get("workspace", False)
            if not isinstance(workspace, bool):
                raise InvalidRequest("workspace must be true or false.")
            return body.get("users"), workspace
        field = self.get_body_argument("users", None)
        users = [n for n in field.replace(",", " ").split() if n] if field and field.strip() else None
        return users, self.get_body_argument("workspace", "") in ("1", "on", "true")

    async def get(self, workspace: str, image: str) -> None:
        request = await self.launcher.check(self, workspace, image)
        self.write_json(await self.components.sharing.shared_with(request))

    async def post(self, workspace: str, image: str) -> None:
        request = await self.launcher.check(self, workspace, image)
        sharing = self.components.sharing
        users, whole = self._recipients()
        try:
            if self.get_body_argument("action", "share") == "revoke":
                state = await sharing.revoke(request, users, whole)
            else:
                state = await sharing.share(request, users, whole)
        except ServiceError as e:
            if self.wants_json() or request.server is None:
                raise
            # a form: the page again, the message beside the field and the names typed kept (nothing changed)
            self.set_status(e.status_code)
            typed = self.get_body_argument("users", "")[:MAX_TYPED]
            await render_details(
                self, request, await self.launcher.status(request), share_error=e.message, share_names=typed
            )
            return
        if self.wants_json():
            self.write_json(state)
        else:
            self.redirect(self.launcher.details_url(workspace, image), status=303)

    async def delete(self, workspace: str, image: str) -> None:
        request = await self.launcher.check(self, workspace, image)
        users, whole = self._recipients()
        self.write_json(await self.components.sharing.revoke(request, users, whole))


class SharedHandler(BaseHandler):
    """``<prefix>/shared``: the workspace servers other members shared with the caller (JSON)."""

    def wants_json(self) -> bool:
        return True

    async def get(self) -> None:
        user, workspaces = await self.launcher.workspaces(self)
        self.write_json(await self.components.sharing.received(user, workspaces))
