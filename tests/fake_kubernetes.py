"""A small fake Kubernetes API server: pods and events, list and watch, over real HTTP; it refuses
a pod as the API server does (an invalid spec, a ServiceAccount its namespace lacks).

No cluster can run here, so the service's unmodified kubernetes-asyncio client
talks to this instead, through an ordinary kubeconfig. It runs on its own
thread and event loop: the service under test may be another process.
"""

import asyncio
import itertools
import json
import uuid
from collections import Counter
from datetime import datetime, timezone

from tornado import web
from tornado.iostream import StreamClosedError

from threaded_server import ThreadedServer


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def status(code: int, reason: str, message: str, **details) -> dict:
    """A Kubernetes API Status object, as the API server answers errors."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        **({"details": details} if details else {}),
        "code": code,
    }


def invalid_pod(pod: dict) -> str | None:
    """The API server's words for what is wrong in a pod's spec (what a retry that repeats the
    workspace volume would hit), or None."""
    causes = []
    spec = pod.get("spec", {})
    names = Counter(v["name"] for v in spec.get("volumes") or [])
    for index, volume in enumerate(spec.get("volumes") or []):
        if names[volume["name"]] > 1 and index != [v["name"] for v in spec["volumes"]].index(volume["name"]):
            causes.append(f'spec.volumes[{index}].name: Duplicate value: "{volume["name"]}"')
    for c, container in enumerate(spec.get("containers") or []):
        seen = set()
        for m, mount in enumerate(container.get("volumeMounts") or []):
            if mount["mountPath"] in seen:
                causes.append(
                    f'spec.containers[{c}].volumeMounts[{m}].mountPath: Invalid value: "{mount["mountPath"]}": must be unique'
                )
            seen.add(mount["mountPath"])
    if not causes:
        return None
    return (
        f'Pod "{pod["metadata"]["name"]}" is invalid: [{", ".join(causes)}]'
        if len(causes) > 1
        else (f'Pod "{pod["metadata"]["name"]}" is invalid: {causes[0]}')
    )


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
        self.logs: dict[tuple[str, str], list[str | bytes]] = {}  # (namespace, pod) -> its container's lines
        self.previous_logs: dict[tuple[str, str], list[str]] = {}  # of the container before a restart
        self.created: list[dict] = []  # every pod a client created, as it sent it
        self.pod_refusals: list[tuple[int, str, str]] = []  # (code, reason, message) for the next creations
        self.service_accounts: dict[str, set[str]] = {}  # namespace -> ServiceAccounts besides "default"
        self.pod_changes: list[tuple[int, str, dict]] = []  # (resourceVersion, ADDED|MODIFIED|DELETED, pod)
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

    def add_service_account(self, namespace: str, name: str) -> None:
        """A ServiceAccount in ``namespace`` (what the platform creates in each workspace namespace)."""

        async def add():
            self.service_accounts.setdefault(namespace, set()).add(name)

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
            self.created.clear()
            self.pod_refusals.clear()
            self.pod_changes.clear()
            self.service_accounts.clear()

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

        async def next_change() -> None:
            """Until something changes (or a second passes: a watch looks again anyway)."""
            async with fake._changed:
                try:
                    await asyncio.wait_for(fake._changed.wait(), 1)
                except asyncio.TimeoutError:
                    pass

        def changed() -> None:
            async def notify():
                async with fake._changed:
                    fake._changed.notify_all()

            asyncio.ensure_future(notify())

        def missing_service_account(pod: dict, namespace: str) -> str | None:
            account = pod["spec"].get("serviceAccountName") or "default"
            return None if account in fake.service_accounts.get(namespace, set()) | {"default"} else account

        def record(kind: str, pod: dict) -> None:
            version = next(fake._versions)
            pod["metadata"]["resourceVersion"] = str(version)
            fake.pod_changes.append((version, kind, json.loads(json.dumps(pod))))
            changed()

        class Pods(web.RequestHandler):
            def selected(self, namespace):
                selector = self.get_query_argument("labelSelector", "")
                return [p for p in fake.pods.get(namespace, []) if _matches(selector, p["metadata"]["labels"])]

            async def get(self, namespace):
                fake.requests.append(self.request.uri)
                if refused(self, namespace, "pods"):
                    return
                if self.get_query_argument("watch", "") not in ("true", "True", "1"):
                    self.write(
                        {
                            "apiVersion": "v1",
                            "kind": "PodList",
                            "metadata": {"resourceVersion": str(next(fake._versions))},
                            "items": self.selected(namespace),
                        }
                    )
                    return
                # a watch: each change after resourceVersion, as it happens, until the client leaves
                since = int(self.get_query_argument("resourceVersion", "0") or 0)
                selector = self.get_query_argument("labelSelector", "")
                self.set_header("Content-Type", "application/json")
                try:
                    while True:
                        for version, kind, pod in list(fake.pod_changes):
                            if version > since and pod["metadata"]["namespace"] == namespace:
                                if _matches(selector, pod["metadata"]["labels"]):
                                    self.write(json.dumps({"type": kind, "object": pod}) + "\n")
                                since = version
                        await self.flush()
                        await next_change()
                except StreamClosedError:
                    pass

            def post(self, namespace):
                """Create a pod: refused as scripted, or as the API server refuses an invalid one; else
                it runs at once, at 127.0.0.1 (where the test has a server listening)."""
                fake.requests.append(self.request.uri)
                pod = json.loads(self.request.body)
                fake.created.append(pod)
                name = pod["metadata"]["name"]
                answer = None
                if fake.pod_refusals:
                    code, reason, message = fake.pod_refusals.pop(0)
                    answer = status(code, reason, message)
                elif (problem := invalid_pod(pod)) is not None:
                    answer = status(422, "Invalid", problem, name=name, kind="Pod")
                elif (account := missing_service_account(pod, namespace)) is not None:
                    # the ServiceAccount admission plugin's answer
                    answer = status(
                        403,
                        "Forbidden",
                        f'pods "{name}" is forbidden: error looking up service account {namespace}/{account}: '
                        f'serviceaccount "{account}" not found',
                        name=name,
                        kind="pods",
                    )
                elif any(p["metadata"]["name"] == name for p in fake.pods.get(namespace, [])):
                    answer = status(409, "AlreadyExists", f'pods "{name}" already exists', name=name, kind="pods")
                if answer is not None:
                    self.set_status(answer["code"])
                    self.write(answer)
                    return
                pod["metadata"].update(namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=now())
                pod["status"] = {
                    "phase": "Running",
                    "podIP": "127.0.0.1",
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [
                        {
                            "name": c["name"],
                            "image": c["image"],
                            "imageID": "",
                            "ready": True,
                            "restartCount": 0,
                            "state": {"running": {"startedAt": now()}},
                        }
                        for c in pod["spec"]["containers"]
                    ],
                }
                fake.pods.setdefault(namespace, []).append(pod)
                record("ADDED", pod)
                self.set_status(201)
                self.write(pod)

        class Pod(web.RequestHandler):
            def find(self, namespace, name):
                for pod in fake.pods.get(namespace, []):
                    if pod["metadata"]["name"] == name:
                        return pod
                self.set_status(404)
                self.write(status(404, "NotFound", f'pods "{name}" not found', name=name, kind="pods"))
                return None

            def get(self, namespace, name):
                fake.requests.append(self.request.uri)
                pod = self.find(namespace, name)
                if pod is not None:
                    self.write(pod)

            def delete(self, namespace, name):
                fake.requests.append(self.request.uri)
                pod = self.find(namespace, name)
                if pod is not None:
                    fake.pods[namespace].remove(pod)
                    record("DELETED", pod)
                    self.write(pod)

        class Missing(web.RequestHandler):
            """Any other resource: none here, as the API server says of a missing object."""

            def _missing(self, *args):
                fake.requests.append(f"{self.request.method} {self.request.uri}")
                self.set_status(404)
                self.write(status(404, "NotFound", "the server could not find the requested resource"))

            get = post = delete = patch = put = _missing

        class Events(web.RequestHandler):
            def selected(self, namespace, since: int):
                selector = self.get_query_argument("fieldSelector", "")
                return [
                    e
                    for e in fake.events.get(namespace, [])
                    if _matches(
                        selector,
                        {"involvedObject.name": e["involvedObject"]["name"], "involvedObject.kind": "Pod"},
                    )
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
                        await next_change()
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
                text = b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines)
                limit = self.get_query_argument("limitBytes", None)
                if limit is not None:  # as the API server: that many bytes of the selected lines, then stop
                    text = text[: int(limit)]
                self.set_header("Content-Type", "text/plain")
                self.write(text)

        return web.Application(
            [
                (r"/api/v1/namespaces/([^/]+)/pods", Pods),
                (r"/api/v1/namespaces/([^/]+)/pods/([^/]+)/log", PodLog),
                (r"/api/v1/namespaces/([^/]+)/pods/([^/]+)", Pod),
                (r"/api/v1/namespaces/([^/]+)/events", Events),
                (r"/.*", Missing),
            ]
        )
