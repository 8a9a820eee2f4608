"""A small fake Kubernetes API server: pods and events, list and watch, over real HTTP.

No cluster can run here, so the service's unmodified kubernetes-asyncio client
talks to this instead, through an ordinary kubeconfig. It runs on its own
thread and event loop: the service under test may be another process.
"""

import asyncio
import itertools
import json
from datetime import datetime, timezone

from tornado import web
from tornado.iostream import StreamClosedError

from threaded_server import ThreadedServer


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _matches(selector: str, values: dict) -> bool:
    """Equality-based selectors, as the service uses them: 'a=b,c=d'."""
    for term in filter(None, (selector or "").split(",")):
        key, _, value = term.partition("=")
        if values.get(key) != value:
            return False
    return True


class FakeKubernetes(ThreadedServer):
    def __init__(self):
        self.pods: dict[str, list[dict]] = {}  # namespace -> pods
        self.events: dict[str, list[dict]] = {}  # namespace -> events
        self.requests: list[str] = []
        self.forbidden: set[str] = set()  # namespaces where our service account may read nothing
        self.logs: dict[tuple[str, str], list[str]] = {}  # (namespace, pod) -> its container's lines
        self.previous_logs: dict[tuple[str, str], list[str]] = {}  # of the container before a restart
        self._versions = itertools.count(1)
        self._changed: asyncio.Condition | None = None
        super().__init__(self._app)

    def kubeconfig(self) -> str:
        return (
            "apiVersion: v1\nkind: Config\n"
            f"clusters: [{{name: fake, cluster: {{server: '{self.url}'}}}}]\n"
            "users: [{name: fake, user: {token: fake-token}}]\n"
            "contexts: [{name: fake, context: {cluster: fake, user: fake}}]\n"
            "current-context: fake\n"
        )

    # -- what the tests set up ------------------------------------------------

    def add_pod(
        self,
        namespace: str,
        name: str,
        labels: dict,
        *,
        phase="Pending",
        waiting=None,
        unschedulable=None,
        last_terminated=None,
        annotations=None,
    ):
        """A pod; ``waiting=(reason, message)`` for its container, ``unschedulable=message``,
        ``last_terminated=(reason, exit code)`` for how its container ended before a restart.
        ``annotations`` default to KubeSpawner's, named after the user and server labels."""
        if annotations is None:
            annotations = {
                "hub.jupyter.org/username": labels.get("notebooks-service.jupyter.org/user", ""),
                "hub.jupyter.org/servername": labels.get("notebooks-service.jupyter.org/server", ""),
            }
        state = (
            {"waiting": {"reason": waiting[0], "message": waiting[1]}} if waiting else {"running": {"startedAt": now()}}
        )
        conditions = []
        if unschedulable:
            conditions.append(
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": unschedulable}
            )
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": labels,
                "annotations": annotations,
                "resourceVersion": str(next(self._versions)),
            },
            "spec": {"containers": [{"name": "notebook", "image": "quay.io/jupyter/scipy-notebook"}]},
            "status": {
                "phase": phase,
                "conditions": conditions,
                "containerStatuses": [
                    {
                        "name": "notebook",
                        "image": "quay.io/jupyter/scipy-notebook",
                        "imageID": "",
                        "ready": False,
                        "restartCount": 1 if last_terminated else 0,
                        "state": state,
                        **(
                            {
                                "lastState": {
                                    "terminated": {
                                        "reason": last_terminated[0],
                                        "exitCode": last_terminated[1],
                                        "startedAt": now(),
                                        "finishedAt": now(),
                                    }
                                }
                            }
                            if last_terminated
                            else {}
                        ),
                    }
                ],
            },
        }

        async def add():
            self.pods.setdefault(namespace, []).append(pod)

        self.call(add)

    def add_event(self, namespace: str, pod: str, reason: str, message: str, type_: str = "Warning"):
        version = next(self._versions)
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{pod}.{version}", "namespace": namespace, "resourceVersion": str(version)},
            "involvedObject": {"kind": "Pod", "name": pod, "namespace": namespace},
            "reason": reason,
            "message": message,
            "type": type_,
            "lastTimestamp": now(),
        }

        async def add():
            self.events.setdefault(namespace, []).append(event)
            async with self._changed:
                self._changed.notify_all()

        self.call(add)

    def clear(self):
        async def clear():
            self.pods.clear()
            self.events.clear()
            self.requests.clear()

        self.call(clear)

    # -- the API server -------------------------------------------------------

    def _app(self) -> web.Application:
        fake = self
        self._changed = asyncio.Condition()

        def refused(handler: web.RequestHandler, namespace: str, resource: str) -> bool:
            """Answer as an API server does when RBAC says no."""
            if namespace not in fake.forbidden:
                return False
            handler.set_status(403)
            handler.write(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": f'{resource} is forbidden: User "system:serviceaccount:jupyter:notebooks-service" '
                    f'cannot list resource "{resource}" in API group "" in the namespace "{namespace}"',
                    "reason": "Forbidden",
                    "details": {"kind": resource},
                    "code": 403,
                }
            )
            return True

        class Pods(web.RequestHandler):
            def get(self, namespace):
                fake.requests.append(self.request.uri)
                if refused(self, namespace, "pods"):
                    return
                selector = self.get_query_argument("labelSelector", "")
                items = [p for p in fake.pods.get(namespace, []) if _matches(selector, p["metadata"]["labels"])]
                self.write(
                    {"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"}, "items": items}
                )

        class Events(web.RequestHandler):
            def selected(self, namespace, since: int):
                selector = self.get_query_argument("fieldSelector", "")
                return [
                    e
                    for e in fake.events.get(namespace, [])
                    if _matches(selector, {"involvedObject.name": e["involvedObject"]["name"]})
                    and int(e["metadata"]["resourceVersion"]) > since
                ]

            async def get(self, namespace):
                fake.requests.append(self.request.uri)
                if refused(self, namespace, "events"):
                    return
                if self.get_query_argument("watch", "") not in ("true", "True", "1"):
                    items = self.selected(namespace, 0)
                    self.write(
                        {"apiVersion": "v1", "kind": "EventList", "metadata": {"resourceVersion": "1"}, "items": items}
                    )
                    return
                # a watch: what exists after resourceVersion, then each new event, until the client leaves
                since = int(self.get_query_argument("resourceVersion", "0") or 0)
                self.set_header("Content-Type", "application/json")
                try:
                    while True:
                        for event in self.selected(namespace, since):
                            self.write(json.dumps({"type": "ADDED", "object": event}) + "\n")
                            since = int(event["metadata"]["resourceVersion"])
                        await self.flush()
                        async with fake._changed:
                            try:
                                await asyncio.wait_for(fake._changed.wait(), 1)
                            except asyncio.TimeoutError:
                                pass
                except StreamClosedError:
                    pass

        class PodLog(web.RequestHandler):
            def get(self, namespace, pod):
                fake.requests.append(self.request.uri)
                if refused(self, namespace, "pods/log"):
                    return
                container = self.get_query_argument("container", "notebook")
                previous = self.get_query_argument("previous", "").lower() == "true"  # Go: ParseBool
                store = fake.previous_logs if previous else fake.logs
                if (namespace, pod) not in store:
                    self.set_status(400 if previous else 404)
                    self.write(
                        {
                            "kind": "Status",
                            "apiVersion": "v1",
                            "metadata": {},
                            "status": "Failure",
                            "message": f'previous terminated container "{container}" in pod "{pod}" not found'
                            if previous
                            else f'pods "{pod}" not found',
                            "reason": "BadRequest" if previous else "NotFound",
                            "code": 400 if previous else 404,
                        }
                    )
                    return
                lines = store[(namespace, pod)]
                tail = self.get_query_argument("tailLines", None)
                if tail is not None:
                    lines = lines[-int(tail) :] if int(tail) else []
                self.set_header("Content-Type", "text/plain")
                self.write("".join(line + "\n" for line in lines))

        return web.Application(
            [
                (r"/api/v1/namespaces/([^/]+)/pods", Pods),
                (r"/api/v1/namespaces/([^/]+)/pods/([^/]+)/log", PodLog),
                (r"/api/v1/namespaces/([^/]+)/events", Events),
            ]
        )
