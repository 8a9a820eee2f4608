"""The service's own endpoints: the caller's Hub model, probes, metrics, the OpenAPI document, the login callback."""

import asyncio
import contextlib

from jupyterhub.services.auth import HubOAuthCallbackHandler, check_scopes
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tornado import web

from .. import __version__
from ..auth import identify
from ..deadline import Deadline, request_deadline
from ..errors import HubUnavailable, NotAMember, NotFound, ServiceUnavailable, Unauthorized
from ..log import request_summary
from ..metrics import REGISTRY
from ..openapi import described_json
from .base import BaseHandler, Routed, set_security_headers


class UserHandler(BaseHandler):
    """``<prefix>/user``: the caller's Hub user model."""

    async def get(self) -> None:
        model = await self.hub.get_user(self.current_user.name)
        # identity-provider tokens stay between the Hub and us (and the model is shared: copy it)
        self.write_json({k: v for k, v in model.items() if k != "auth_state"})


class HealthHandler(BaseHandler):
    """``<prefix>/health``: liveness of this process; no login, no Hub call."""

    requires_user = False

    def get(self) -> None:
        self.write_json({"status": "ok"})

    head = get


class ReadinessHandler(BaseHandler):
    """``<prefix>/ready``: 200 while the Hub answers and the service is not shutting down; else 503."""

    requires_user = False

    def wants_json(self) -> bool:
        return True

    async def get(self) -> None:
        if self.components.draining.is_set():
            raise ServiceUnavailable("The service is shutting down.")
        await self.hub.check_ready(self.components.readiness_timeout)
        self.write_json({"status": "ok", "hub": "ok"})

    head = get


class MetricsHandler(BaseHandler):
    """``<prefix>/metrics``: Prometheus metrics, for a Hub token with the scope ``metrics_scope``.

    The same scope JupyterHub asks for its own ``/hub/metrics`` (``read:metrics``
    by default), so a scraper of the Hub's metrics reads these too. Cookies do not count.
    """

    requires_user = False

    def wants_json(self) -> bool:
        return True

    async def get(self) -> None:
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in ("token", "bearer") or not token.strip():
            raise Unauthorized(f"Metrics need a Hub API token with the scope {self.components.metrics_scope!r}.")
        try:
            model = await asyncio.wait_for(
                self.hub_auth.user_for_token(token.strip(), sync=False), request_deadline.get().remaining()
            )
        except asyncio.TimeoutError:
            raise HubUnavailable("Cannot check the token: the Hub did not answer in time.") from None
        if not model:
            raise Unauthorized("This token is not valid in the Hub.")
        if not check_scopes({self.components.metrics_scope}, set(model.get("scopes") or ())):
            raise NotAMember(f"Metrics need the scope {self.components.metrics_scope!r}, which this token lacks.")
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(REGISTRY))


class OpenAPIHandler(BaseHandler):
    """``<prefix>/api/openapi.json``: the JSON API's OpenAPI 3.1 description; no login."""

    requires_user = False

    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(described_json(self.prefix, __version__))


class OpenMetricsHandler(Routed, web.RequestHandler):
    """``/metrics`` on ``NotebooksService.metrics_port``: for scrapers inside the cluster, no token."""

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(REGISTRY))


class OAuthCallbackHandler(Routed, HubOAuthCallbackHandler):
    """Completes the Hub's OAuth login and sets the service's cookie."""

    def set_default_headers(self) -> None:
        set_security_headers(self)

    def _request_summary(self) -> str:
        return request_summary(self)  # its URL carries the OAuth code and state

    @property
    def hub_auth(self):
        return self.settings["components"].hub_auth

    @hub_auth.setter
    def hub_auth(self, value):
        pass


class NotFoundHandler(BaseHandler):
    """Anything else under the prefix: a 404 in the usual shape."""

    requires_user = False

    async def prepare(self) -> None:
        if not self.wants_json():
            # the page keeps its navbar (who is logged in, Log out); nobody is sent to log in for a 404
            request_deadline.set(Deadline(self.components.request_budget))
            with contextlib.suppress(Exception):
                self.current_user = await identify(self)
        raise NotFound(f"No such page: {self.request.path[:200]}")
