"""The only place that speaks Kubernetes: pod status and events of a notebook server.

Read-only, best effort: when Kubernetes is off (the embedded default) or cannot
be reached, callers get a status that says so and carry on with the Hub's view.
The pod is found in its workspace's namespace by the labels the Hub-side
placement puts on it (naming.USER_LABEL, naming.SERVER_LABEL).

Imported only when diagnostics are on: kubernetes_asyncio is heavy.
"""

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from .errors import NotFound, ServiceError
from .logs import DEFAULT_MAX_BYTES, DEFAULT_MAX_LINE_BYTES, LineSplitter, split_lines
from .metrics import KUBERNETES_ERRORS
from .naming import SERVER_LABEL, USER_LABEL, label_value, namespace, pod_name

# what KubeSpawner annotates each pod with: the Hub's names, unescaped (none for the default server)
USERNAME_ANNOTATION = "hub.jupyter.org/username"
SERVERNAME_ANNOTATION = "hub.jupyter.org/servername"

log = logging.getLogger(__name__)

# container waiting reasons a user can act on, or at least should be told about
PROBLEM_REASONS = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
}
RECENT_EVENTS = 10


class KubeDiagnostics:
    """Reads a notebook server's pod and its events with kubernetes-asyncio."""

    enabled = True

    def __init__(
        self, mode: str, *, kubeconfig: str | None = None, namespace_template: str, request_timeout: float = 5
    ):
        if mode not in ("in-cluster", "kubeconfig"):
            raise ValueError(f"unknown Kubernetes mode {mode!r}")
        self.mode = mode
        self.kubeconfig = kubeconfig
        self.namespace_template = namespace_template
        self.request_timeout = request_timeout
        self._api: client.CoreV1Api | None = None
        self._api_lock = asyncio.Lock()

    async def api(self) -> client.CoreV1Api:
        """A CoreV1Api on a client of our own, configured once (not the global default)."""
        async with self._api_lock:
            if self._api is None:
                configuration = client.Configuration()
                if self.mode == "in-cluster":
                    config.load_incluster_config(client_configuration=configuration)
                else:
                    await config.load_kube_config(config_file=self.kubeconfig, client_configuration=configuration)
                self._api = client.CoreV1Api(client.ApiClient(configuration))
            return self._api

    async def close(self) -> None:
        if self._api is not None:
            await self._api.api_client.close()

    def selector(self, user: str, server_name: str) -> str:
        return f"{USER_LABEL}={label_value(user)},{SERVER_LABEL}={label_value(server_name)}"

    async def find_pod(self, workspace: str, user: str, server_name: str) -> Any | None:
        """The server's pod in its workspace namespace, or None."""
        api = await self.api()
        pods = await api.list_namespaced_pod(
            namespace(workspace, self.namespace_template),
            label_selector=self.selector(user, server_name),
            _request_timeout=self.request_timeout,
        )
        # labels can be chosen to look alike; KubeSpawner's annotations carry the names whole
        return next((pod for pod in pods.items if _belongs_to(pod, user, server_name)), None)

    async def pod_events(self, pod: Any) -> list[Any]:
        api = await self.api()
        events = await api.list_namespaced_event(
            pod.metadata.namespace,
            field_selector=f"involvedObject.name={pod.metadata.name}",
            _request_timeout=self.request_timeout,
        )
        return sorted(events.items, key=_event_time)[-RECENT_EVENTS:]

    async def status(self, workspace: str, user: str, server_name: str) -> dict[str, Any]:
        """``{"kubernetes": "ok"|"unreachable"|"forbidden"|"error", "message": ..., "details": {...}}``."""
        try:
            pod = await self.find_pod(workspace, user, server_name)
            if pod is None:
                return {"kubernetes": "ok", "message": "No pod yet.", "details": {}}
            details = describe_pod(pod)
            details["events"] = [describe_event(e) for e in await self.pod_events(pod)]
            if any(p["reason"] == "CrashLoopBackOff" for p in details["problems"]):
                details["last_lines"] = await self._crashed_lines(workspace, user, server_name)
            return {"kubernetes": "ok", "message": summary(details), "hint": hint(details), "details": details}
        except Exception as e:  # diagnostics must never break a page
            reason, message = self._failure(e, namespace(workspace, self.namespace_template))
            log.warning("Kubernetes diagnostics unavailable for %s/%s: %s", user, server_name, _short(e))
            return {"kubernetes": reason, "message": message, "details": {}}

    async def _crashed_lines(self, workspace: str, user: str, server_name: str) -> list[str]:
        """The last lines of the container that crashed (CrashLoopBackOff): why it did, mostly."""
        try:
            return await KubeLogs(self).lines(workspace, user, server_name, tail=20, previous=True)
        except ServiceError:
            return []

    def _failure(self, e: Exception, ns: str) -> tuple[str, str]:
        """Why a Kubernetes call failed, counted, in words for the status: no answer is not a refusal."""
        if isinstance(e, ApiException) and e.status in (401, 403):
            reason = "forbidden"
            message = (
                f"Kubernetes refused to show this server's pod ({e.status} {e.reason}): the notebooks service "
                f"may not read pods and events in {ns}. Operators: bind its pod-reader role there "
                "(rbac.workspaceNamespaces). This is the Hub's view only."
            )
        elif isinstance(e, ApiException) and e.status:
            reason = "error"
            message = f"Kubernetes answered {e.status} {e.reason}: this is the Hub's view only."
        else:
            reason = "unreachable"
            message = "Kubernetes could not be reached: this is the Hub's view only."
        KUBERNETES_ERRORS.labels(reason).inc()
        return reason, message

    async def past_events(self, workspace: str, user: str, server_name: str) -> list[dict[str, Any]]:
        """The last events of the server's pod, found by its name: after a failed start the pod may be
        gone, and Kubernetes keeps its events (about an hour). Best effort: [] when they cannot be read."""
        ns = namespace(workspace, self.namespace_template)
        try:
            api = await self.api()
            events = await api.list_namespaced_event(
                ns,
                field_selector=f"involvedObject.name={pod_name(user, server_name)}",
                _request_timeout=self.request_timeout,
            )
        except Exception as e:
            self._failure(e, ns)
            log.warning("Cannot read past events of %s/%s: %s", user, server_name, _short(e))
            return []
        return [describe_event(e) for e in sorted(events.items, key=_event_time)[-RECENT_EVENTS:]]

    async def watch_events(
        self, workspace: str, user: str, server_name: str, *, poll: float = 1
    ) -> AsyncIterator[dict]:
        """The server's pod events as they happen (the pod is looked for until it exists)."""
        try:
            pod = None
            while pod is None:
                pod = await self.find_pod(workspace, user, server_name)
                if pod is None:
                    await asyncio.sleep(poll)  # the pod appears once the Hub's spawner creates it
            api = await self.api()
            events = watch.Watch()
            async with events.stream(
                api.list_namespaced_event,
                pod.metadata.namespace,
                field_selector=f"involvedObject.name={pod.metadata.name}",
            ) as stream:
                async for change in stream:
                    if change["type"] in ("ADDED", "MODIFIED"):
                        yield describe_event(change["object"])
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._failure(e, namespace(workspace, self.namespace_template))
            log.warning("Stopped watching pod events of %s/%s: %s", user, server_name, _short(e))


class KubeLogs:
    """A notebook server's output: its notebook container's log (the service's role needs pods/log get)."""

    def __init__(
        self,
        diagnostics: KubeDiagnostics,
        container: str = "notebook",
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ):
        self.diagnostics = diagnostics
        self.container = container  # KubeSpawner's name for it
        self.max_bytes = max_bytes
        self.max_line_bytes = max_line_bytes

    async def _pod(self, workspace: str, user: str, server_name: str) -> Any:
        try:
            pod = await self.diagnostics.find_pod(workspace, user, server_name)
        except Exception as e:
            raise self._unavailable(e, workspace) from None
        if pod is None:
            raise NotFound("This server has no pod: it is not running.")
        return pod

    def _unavailable(self, e: Exception, workspace: str, previous: bool = False) -> ServiceError:
        if previous and isinstance(e, ApiException) and e.status == 400:
            return NotFound("There is no previous container: this server has not restarted.")
        ns = namespace(workspace, self.diagnostics.namespace_template)
        reason, _ = self.diagnostics._failure(e, ns)
        if reason == "forbidden":
            log.error("Cannot read pod logs in %s: %s (the service's role needs pods/log get)", ns, _short(e))
            return ServiceError("The notebooks service may not read this server's log; ask an operator.", 502)
        return ServiceError("Kubernetes could not be reached for this server's log; try again shortly.", 503)

    async def _log(self, workspace: str, user: str, server_name: str, **options: Any) -> Any:
        """The notebook container's log of the server's pod (read_namespaced_pod_log with ``options``)."""
        pod = await self._pod(workspace, user, server_name)
        api = await self.diagnostics.api()
        try:
            return await api.read_namespaced_pod_log(
                pod.metadata.name, pod.metadata.namespace, container=self.container, **options
            )
        except Exception as e:
            raise self._unavailable(e, workspace, options.get("previous", False)) from None

    async def lines(
        self, workspace: str, user: str, server_name: str, *, tail: int, previous: bool = False
    ) -> list[str]:
        if tail <= 0:
            return []
        # limit_bytes keeps the *first* bytes of the last `tail` lines: when they do not fit, ask
        # for fewer lines until they do, so that the newest are the ones shown
        while True:
            data = await self._log_bytes(
                workspace,
                user,
                server_name,
                tail_lines=tail,
                previous=previous,
                limit_bytes=self.max_bytes,
                _request_timeout=self.diagnostics.request_timeout,
            )
            if len(data) < self.max_bytes or tail == 1:
                return split_lines(data, self.max_line_bytes)[-tail:]
            tail //= 2

    async def _log_bytes(self, workspace: str, user: str, server_name: str, **options: Any) -> bytes:
        """The log as bytes, at most ``max_bytes`` of them: a server may print anything, valid UTF-8 or not."""
        response = await self._log(workspace, user, server_name, _preload_content=False, **options)
        try:
            if response.status != 200:  # unread, an error is not raised by the client
                raise self._unavailable(
                    ApiException(status=response.status, reason=response.reason), workspace, options.get("previous")
                )
            data = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                data += chunk[: self.max_bytes - len(data)]
                if len(data) >= self.max_bytes:
                    break
            return bytes(data)
        finally:
            response.release()

    async def follow(self, workspace: str, user: str, server_name: str, *, tail: int) -> AsyncIterator[str]:
        response = await self._log(
            workspace,
            user,
            server_name,
            tail_lines=tail,
            follow=True,
            _preload_content=False,
        )
        if response.status != 200:  # unread, a stream's error is not raised by the client
            response.release()
            raise self._unavailable(ApiException(status=response.status, reason=response.reason), workspace)
        splitter = LineSplitter(self.max_line_bytes)  # in chunks: a line of any length is held cut, never whole
        try:
            async for chunk in response.content.iter_chunked(64 * 1024):
                for line in splitter.feed(chunk):
                    yield line
            last = splitter.flush()
            if last is not None:
                yield last
        finally:
            response.release()


def _belongs_to(pod: Any, user: str, server_name: str) -> bool:
    """Whether KubeSpawner's annotations say the pod is ``user``'s server ``server_name``."""
    annotations = pod.metadata.annotations or {}
    return annotations.get(USERNAME_ANNOTATION) == user and annotations.get(SERVERNAME_ANNOTATION, "") == server_name


def describe_pod(pod: Any) -> dict[str, Any]:
    """What a user needs of a pod: phase, waiting problems, a killed container, unschedulable conditions."""
    status = pod.status
    problems = []
    for container in (status.container_statuses or []) + (status.init_container_statuses or []):
        waiting = container.state.waiting if container.state else None
        ended = container.last_state.terminated if container.last_state else None
        if ended and (ended.reason == "OOMKilled" or ended.exit_code == 137):
            problems.append(
                {"container": container.name, "reason": "OOMKilled", "message": f"exit code {ended.exit_code}"}
            )
        if waiting and waiting.reason in PROBLEM_REASONS:
            problems.append(
                {
                    "container": container.name,
                    "reason": waiting.reason,
                    "message": waiting.message or "",
                    "image": container.image,
                }
            )
    for condition in status.conditions or []:
        if condition.type == "PodScheduled" and condition.status == "False":
            problems.append(
                {"container": None, "reason": condition.reason or "Unschedulable", "message": condition.message or ""}
            )
    return {
        "pod": pod.metadata.name,
        "namespace": pod.metadata.namespace,
        "phase": status.phase,
        "problems": problems,
    }


def describe_event(event: Any) -> dict[str, Any]:
    time = _event_time(event)
    return {
        "type": event.type,
        "reason": event.reason,
        "message": event.message,
        "time": time.isoformat() if time != datetime.min else None,
    }


_INSUFFICIENT = re.compile(r"Insufficient (\w[\w./-]*\w)")  # "... 2 Insufficient nvidia.com/gpu."
_RESOURCE_WORDS = {"cpu": "CPU", "memory": "memory", "nvidia.com/gpu": "GPUs"}


def hint(details: dict[str, Any]) -> str | None:
    """What a person can do about the first problem, in their words; None when there is nothing to do."""
    for problem in details.get("problems", []):
        reason, message = problem["reason"], problem["message"]
        if reason == "OOMKilled":
            return "The server ran out of memory and was stopped: choose a larger class, or use less memory."
        if reason == "Unschedulable" and (short := _INSUFFICIENT.findall(message)):
            missing = ", ".join(dict.fromkeys(_RESOURCE_WORDS.get(r, r) for r in short))
            return f"There is no room for this server right now (not enough {missing}): try again later, or choose a smaller class."
        if reason in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName"):
            return f"The image {problem.get('image') or ''} cannot be pulled ({message}): tell the operators, it is in their catalogue."
        if reason == "CrashLoopBackOff":
            return "The server keeps crashing as it starts: its log (the previous container's) says why."
    return None


def summary(details: dict[str, Any]) -> str:
    """One sentence for a person: the first problem, else the phase."""
    for problem in details.get("problems", []):
        return f"{problem['reason']}: {problem['message']}".rstrip(": ")
    return f"Pod {details.get('pod')} is {details.get('phase') or 'unknown'}."


def _event_time(event: Any) -> datetime:
    for value in (event.last_timestamp, event.event_time, event.first_timestamp, event.metadata.creation_timestamp):
        if value:
            return value.replace(tzinfo=None) if isinstance(value, datetime) else datetime.min
    return datetime.min


def _short(error: Exception) -> str:
    if isinstance(error, ApiException):
        return f"{error.status} {error.reason}"
    return f"{type(error).__name__}: {error}"[:300]
