"""What the Hub tells the service about quotas: ``GET /hub/api/notebooks/quota-usage``.

A quota check needs what a workspace's (and a user's) running servers hold, not every active
user's model: listing those costs the Hub and the service bytes that grow with everyone's
servers (140 KB per start at 2,000 users, 10% running). The Hub-side guard already counts
every spawner the Hub holds, at every admission, from memory. This endpoint, which
``setup_workspace_guard`` registers in the Hub, answers with that count, summed:

    GET /hub/api/notebooks/quota-usage?workspace=alpha&workspace=beta&user=alice&server=alpha-python

    {"workspaces": {"alpha": {"usage": {"servers": 3, "cpu": 3, "memory": ..., "gpus": 0},
                              "named": ["alice's alpha/python", ...]}, "beta": {...}},
     "user": {"usage": {...}, "named": [...]}}

``server`` leaves the user's own server of that name out (a restart counts itself once). It
needs the scope ``list:users`` (the service's role has it where quotas are set). It is a
``JupyterHub.extra_handlers`` endpoint: deprecated by JupyterHub since 3.1 (it logs so at
start-up) but in 5.x and 6.x; where it is missing, the service lists the active users instead.
"""

import json

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.scopes import needs_scope

from .errors import ServiceError
from .quotas import RunningServer, hold_room, hub_running_servers

#: the routes, under the Hub's prefix
ROUTE = r"/api/notebooks/quota-usage"
HOLD_ROUTE = r"/api/notebooks/room-holds/([^/]+)/([^/]+)"
#: workspaces one request may ask about
MAX_WORKSPACES = 100


def refuse(handler: APIHandler, status: int, message: str) -> None:
    """Answer with the service's error shape (the service relays these messages as they are)."""
    handler.set_status(status)
    handler.write(json.dumps({"status": status, "message": message}))


class QuotaUsageHandler(APIHandler):
    """The guard's count of running workspace servers, summed per workspace and for one user."""

    @needs_scope("list:users")
    def get(self) -> None:
        from .hubside import current_guard

        workspaces = sorted(set(self.get_arguments("workspace")))
        if len(workspaces) > MAX_WORKSPACES:
            return refuse(self, 400, f"Ask about {MAX_WORKSPACES} workspaces at most.")
        try:
            quotas = current_guard().quotas
            running = hub_running_servers(None)
        except ServiceError as e:
            return refuse(self, e.status_code, e.message)
        user, excluding = self.get_argument("user", ""), self.get_argument("server", "")
        in_workspaces, mine = quotas.tallies(running, workspaces, user, excluding)
        self.write(
            json.dumps({"workspaces": {w: t.as_json() for w, t in in_workspaces.items()}, "user": mine.as_json()})
        )


class RoomHoldHandler(APIHandler):
    """``POST /hub/api/notebooks/room-holds/<user>/<server>`` ``{"resource_class": ...}``: before a
    restart stops the server, the guard counts it (at the class it will start with) until its next
    admission or ``quotas.HOLD_SECONDS``, so that no other start takes its room meanwhile. Only the
    notebooks service may ask (with the scope ``servers``): a user's own token, which holds that scope
    for their servers, could otherwise keep a room held with nothing running."""

    @needs_scope("servers")
    def post(self, user_name: str, server_name: str) -> None:
        from .hubside import current_guard

        try:
            service = current_guard().service.service_name
        except ServiceError as e:
            return refuse(self, e.status_code, e.message)
        caller = self.current_user
        if getattr(caller, "kind", "user") != "service" or caller.name != service:
            return refuse(self, 403, f"Only the {service} service holds a restart's room.")
        user = self.find_user(user_name)
        spawner = user.spawners.get(server_name) if user is not None else None
        options = (spawner.user_options or {}) if spawner is not None and spawner.active else None
        if not options or not isinstance(options.get("workspace"), str) or not isinstance(options.get("image"), str):
            return refuse(self, 404, "No such running workspace server.")
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return refuse(self, 400, 'Send {"resource_class": <a class, or null>}.')
        resource_class = body.get("resource_class", options.get("resource_class"))
        known = current_guard().quotas.resource_classes
        if resource_class is not None and (not isinstance(resource_class, str) or resource_class not in known):
            return refuse(self, 400, 'Send {"resource_class": <a class, or null>}.')
        hold_room(RunningServer(user.name, options["workspace"], options["image"], resource_class), server_name)
        self.set_status(204)
