"""What every handler shares: authentication, CORS, negotiation, errors, security headers, event streams.

``BaseHandler`` owns authentication (HubOAuth cookies for browsers, Hub API
tokens and identity-provider JWTs for JSON clients, see ``auth.py``), the
choice between HTML and JSON, and the one error shape: ``{"status": <code>,
"message": "..."}`` or an error page. Handlers reach the service's components
(the launcher, the Hub client, the progress fan-out, logs) as ``self.components``
(``components.Components``), and stay thin: parse, call, render. Each handler is
given its ``routes.Route``: the methods it takes there.
"""

import json
from http.client import responses
from typing import TYPE_CHECKING, Any

from jupyterhub.services.auth import HubOAuthenticated
from tornado import web
from tornado.log import app_log

from .. import auth
from ..auth import Caller, identify
from ..deadline import Deadline, request_deadline
from ..errors import ServiceError
from ..log import client_address, request_summary
from ..servers import Launcher

if TYPE_CHECKING:
    from ..components import Components
    from ..routes import Route


class Routed:
    """A handler given its ``routes.Route`` (for the methods it takes, and its name in metrics and logs)."""

    route: "Route | None" = None

    def initialize(self, route: "Route | None" = None) -> None:
        self.route = route  # None: the catch-all 404


class BaseHandler(Routed, HubOAuthenticated, web.RequestHandler):
    """Authentication, content negotiation and errors for every page and API call."""

    #: False for handlers anyone may call (health probes)
    requires_user = True

    @property
    def components(self) -> "Components":
        return self.settings["components"]

    @property
    def hub_auth(self):
        return self.components.hub_auth

    @hub_auth.setter
    def hub_auth(self, value):  # HubAuthenticated defines a setter; keep ours read-only in effect
        pass

    @property
    def hub(self):
        return self.components.hub

    @property
    def identity_provider(self):
        return self.components.identity_provider

    @property
    def launcher(self) -> Launcher:
        return self.components.launcher

    @property
    def prefix(self) -> str:
        return self.components.prefix

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
        set_security_headers(self)
        # on every answer, errors included, so that an allowed page can read why
        origin = self.request.headers.get("Origin")
        if origin:
            self.set_header("Vary", "Origin")
            if origin in self.components.allow_origins:
                self.set_header("Access-Control-Allow-Origin", origin)
                self.set_header("Access-Control-Expose-Headers", "Retry-After")

    def options(self, *args: Any, **kwargs: Any) -> None:
        """A CORS preflight: allowed origins may send the API's methods and headers; no login needed."""
        if self.request.headers.get("Origin") not in self.components.allow_origins:
            raise ServiceError("Cross-origin requests from this origin are not allowed.", 403)
        self.set_header("Access-Control-Allow-Methods", self.cors_methods)
        self.set_header("Access-Control-Allow-Headers", self.cors_headers)
        self.set_header("Access-Control-Max-Age", "600")
        self.set_status(204)
        self.finish()

    async def prepare(self) -> None:
        components = self.components
        self.request.remote_ip = client_address(self.request, components.trusted_proxies)
        components.in_flight.add(self)
        if self.request.method not in self.allowed_methods():
            raise web.HTTPError(405)  # a method the handler has, which this route does not take
        # one time budget for everything this request asks of the Hub: login check, retries, lock waits
        request_deadline.set(Deadline(components.request_budget))
        if components.draining.is_set():
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
        self.components.in_flight.discard(self)

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

    async def renew_identity(self) -> None:
        await auth.renew_identity(self)

    # -- rendering ------------------------------------------------------------

    def render_template(self, name: str, **context: Any) -> None:
        hub_prefix = self.components.hub_prefix
        self.finish(
            self.components.pages.render(
                name,
                prefix=self.prefix,
                hub_prefix=hub_prefix,
                user=self.current_user,
                xsrf=self.xsrf_token.decode() if self.current_user else "",
                static_url=hub_prefix + "static/",
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

    def begin_event_stream(self) -> None:
        """Answer with server-sent events, unbuffered on the way (progress, followed logs)."""
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")  # nginx: do not buffer the stream

    def allowed_methods(self) -> list[str]:
        """The methods this route takes (OPTIONS: CORS preflights); the catch-all's are its handler's."""
        return list(self.route.methods if self.route else implemented_methods(type(self)))


def set_security_headers(handler: web.RequestHandler) -> None:
    """NotebooksService.security_headers, on every answer, errors included: no other site may frame our pages."""
    components = handler.settings.get("components")  # the metrics port's answers have none
    for name, value in components.security_headers.items() if components else ():
        handler.set_header(name, value)


def implemented_methods(handler: type[web.RequestHandler]) -> tuple[str, ...]:
    """The HTTP methods ``handler`` defines itself (not tornado's 405 defaults)."""
    return tuple(
        m
        for m in ("GET", "HEAD", "POST", "DELETE", "OPTIONS")
        if getattr(handler, m.lower()) is not getattr(web.RequestHandler, m.lower())
    )


def user_message(exc: BaseException | None) -> str | None:
    """What an error says to people, as written (tornado %-escapes log_message when it has no args)."""
    if isinstance(exc, ServiceError):
        return exc.message
    if isinstance(exc, web.HTTPError) and exc.log_message:
        return exc.log_message % exc.args
    return None
