"""The server handlers: the list of the caller's servers, and one server (show, start, stop)."""

import json
from typing import Any

from ..errors import InvalidRequest, SpawnFailed
from ..naming import server_name
from ..servers import ServerRequest, not_running
from .base import BaseHandler

#: the fields of a JSON start body
START_FIELDS = ("resource_class",)


class StartingHandler(BaseHandler):
    """What the list and a server's page share: a start, asked by a form, a query or a JSON body."""

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
        request = await self.launcher.check(self, workspace, image, notebook)
        status_page = self.launcher.status_url(workspace, image, request.notebook)
        try:
            model = await self.launcher.start(request, self.requested_class())
        except SpawnFailed:
            if self.wants_json():
                raise
            self.redirect(status_page, status=303)  # the status page says why it failed
            return
        if self.wants_json():
            self.write_json(model, 201 if model["ready"] else 202)
        else:
            self.redirect(status_page, status=303)


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


class ServerListHandler(StartingHandler):
    """``<prefix>/``: the caller's servers; a form POST starts one."""

    refresh_seconds = 5  # the list page keeps its states current by reading its own JSON this often

    async def get(self) -> None:
        servers = self.launcher.servers(await self.caller_model())
        if self.wants_json():
            self.write_json(servers)
            return
        workspaces = await self.launcher.workspaces(self)
        self.render_template(
            "servers.html",
            servers=servers,
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
        # HTML forms cannot send DELETE: a form field asks for a stop instead
        if self.get_body_argument("action", "start") == "stop":
            await self.delete(workspace, image)
            return
        await self.start(workspace, image, notebook)

    async def delete(self, workspace: str, image: str) -> None:
        # (not <server>/<notebook>: routes.py refuses a DELETE that would stop the server, not delete the notebook)
        stopped = await self.launcher.stop(self.current_user.name, workspace, image)
        if self.wants_json():
            if stopped:
                self.set_status(204)
                self.finish()
            else:
                name = server_name(workspace, image)
                self.write_json({"name": name, "workspace": workspace, "image": image, "pending": "stop"}, 202)
        else:
            self.redirect(self.prefix, status=303)
