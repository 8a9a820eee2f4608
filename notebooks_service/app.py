"""The NotebooksService application: configuration, route table, start-up.

Configuration is traitlets (``notebooks_service_config.py``, like the Hub's).
Every setting a Hub passes to a managed service (``JUPYTERHUB_API_TOKEN``,
``JUPYTERHUB_API_URL``, ``JUPYTERHUB_SERVICE_PREFIX``, ...) is read from the
environment by default, so the same process also runs as an external service.
"""

import asyncio
import binascii
import ipaddress
import logging
import os
import secrets
import signal
import sys
from urllib.parse import urlparse

from tornado import web
from tornado.httpserver import HTTPServer
from tornado.log import LogFormatter
from traitlets import Bool, Bytes, CaselessStrEnum, Dict, Float, Integer, List, TraitError, Unicode, default, validate
from traitlets.config import Application

from . import __version__
from .components import Components, build_components
from .config import SharedConfig, env
from .limits import DISCARD_LIMIT, BodySizeLimit
from .log import SecretsFilter, json_log_formatter, log_request
from .metrics import observe_request
from .oauth import SharedStateHubOAuth
from .routes import metrics_port_routes, tornado_routes
from .scopes import Settings, check_own_scopes

#: what NotebooksService.security_headers sends unless told otherwise
SECURITY_HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _request_finished(handler: web.RequestHandler) -> None:
    """Tornado's log_function: one access log line and the request metrics."""
    log_request(handler)
    observe_request(handler)


def _default_template_paths() -> list[str]:
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [
        os.path.join(os.path.dirname(here), "templates"),  # source checkout, editable install
        os.path.join(sys.prefix, "share", "notebooks-service", "templates"),  # wheel install
    ]
    return [p for p in candidates if os.path.isdir(p)][:1]


class NotebooksService(SharedConfig, Application):
    """A JupyterHub service that starts workspace-scoped named servers.

    What it shares with the Hub-side guard (catalogue, workspace policy,
    namespaces) is ``config.SharedConfig``; the rest here is the web service's.
    """

    name = "notebooks-service"
    version = __version__
    description = "Start, watch and stop workspace-scoped notebook servers through JupyterHub."

    aliases = {
        "config": "NotebooksService.config_file",
        "ip": "NotebooksService.ip",
        "port": "NotebooksService.port",
        "log-level": "Application.log_level",
    }
    subcommands = {
        "demo": ("notebooks_service.demo.app.DemoApp", "Run a local JupyterHub with this service and demo data."),
        "reconcile": (
            "notebooks_service.reconciler.ReconcilerApp",
            "Check every active workspace server's members over time: one per deployment, as a Hub-managed service.",
        ),
    }

    _log_formatter_cls = LogFormatter

    # a broken config file must stop us (and the Hub-side guard) with its error, not run on defaults
    raise_config_file_errors = Bool(True)

    @default("log_level")
    def _log_level(self):
        return logging.INFO  # a service: say what it does, like the Hub

    log_datefmt = Unicode("%Y-%m-%d %H:%M:%S", help="Timestamp format of log lines.").tag(config=True)
    log_format = Unicode(
        "%(color)s[%(levelname)1.1s %(asctime)s.%(msecs).03d %(name)s %(module)s:%(lineno)d]%(end_color)s %(message)s",
        help="Log line format.",
    ).tag(config=True)

    config_file = Unicode(
        "notebooks_service_config.py", help="The configuration file to load (Python, like the Hub's)."
    ).tag(config=True)

    # -- where we listen and who we are ---------------------------------------

    service_url = Unicode(
        help="URL this service listens on ($JUPYTERHUB_SERVICE_URL); gives the default ip and port."
    ).tag(config=True)

    @default("service_url")
    def _service_url(self):
        return env("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101")

    ip = Unicode(help="IP to listen on (default: from service_url).").tag(config=True)

    @default("ip")
    def _ip(self):
        return urlparse(self.service_url).hostname or "127.0.0.1"

    port = Integer(help="Port to listen on (default: from service_url).").tag(config=True)

    @default("port")
    def _port(self):
        return urlparse(self.service_url).port or 10101

    service_prefix = Unicode(
        help="URL prefix the Hub's proxy routes to this service ($JUPYTERHUB_SERVICE_PREFIX)."
    ).tag(config=True)

    @default("service_prefix")
    def _service_prefix(self):
        return env("JUPYTERHUB_SERVICE_PREFIX", f"/services/{self.service_name}/")

    @validate("service_prefix")
    def _slashes(self, proposal):
        return "/" + proposal.value.strip("/") + "/" if proposal.value.strip("/") else "/"

    # -- the Hub --------------------------------------------------------------

    hub_api_url = Unicode(help="The Hub's REST API ($JUPYTERHUB_API_URL).").tag(config=True)

    @default("hub_api_url")
    def _hub_api_url(self):
        return env("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")

    hub_api_token = Unicode(help="This service's Hub API token ($JUPYTERHUB_API_TOKEN). Never logged.").tag(config=True)

    @default("hub_api_token")
    def _hub_api_token(self):
        return env("JUPYTERHUB_API_TOKEN")

    hub_prefix = Unicode(
        help="The Hub's URL prefix, for login and its CSS (default: $JUPYTERHUB_BASE_URL + 'hub/')."
    ).tag(config=True)

    @default("hub_prefix")
    def _hub_prefix(self):
        return env("JUPYTERHUB_BASE_URL", "/").rstrip("/") + "/hub/"

    hub_host = Unicode(
        help="Public origin of the Hub if it differs from this service's ($JUPYTERHUB_HOST), e.g. https://hub.example.org."
    ).tag(config=True)

    @default("hub_host")
    def _hub_host(self):
        return env("JUPYTERHUB_HOST")

    oauth_client_id = Unicode(help="OAuth client id registered with the Hub ($JUPYTERHUB_CLIENT_ID).").tag(config=True)

    @default("oauth_client_id")
    def _oauth_client_id(self):
        return env("JUPYTERHUB_CLIENT_ID", f"service-{self.service_name}")

    oauth_redirect_uri = Unicode(help="OAuth callback URL ($JUPYTERHUB_OAUTH_CALLBACK_URL).").tag(config=True)

    @default("oauth_redirect_uri")
    def _oauth_redirect_uri(self):
        return env("JUPYTERHUB_OAUTH_CALLBACK_URL", self.service_prefix + "oauth_callback")

    cookie_secret = Bytes(
        help="""Secret that signs this service's login cookie.
        Default: hex from $NOTEBOOKS_SERVICE_COOKIE_SECRET, else random per process
        (logins then do not survive a restart and replicas cannot share them)."""
    ).tag(config=True)

    @default("cookie_secret")
    def _cookie_secret(self):
        value = env("NOTEBOOKS_SERVICE_COOKIE_SECRET")
        if value:
            try:
                return binascii.a2b_hex(value.strip())
            except binascii.Error:
                raise ValueError("NOTEBOOKS_SERVICE_COOKIE_SECRET must be hex") from None
        return secrets.token_bytes(32)

    request_budget = Float(
        15,
        help="""Seconds one request may spend waiting on the Hub: the login check, retries,
        backoff, and waits for a connection or for another start or stop of the same server.
        Past it the answer is 503 (409 for a busy server) with Retry-After. Keep it above the
        Hub's slow_spawn_timeout (z2jh sets 0; JupyterHub's default is 10), which a start waits for.""",
    ).tag(config=True)
    readiness_timeout = Float(3, help="Seconds the readiness probe waits for the Hub's answer.").tag(config=True)
    shutdown_grace = Float(
        20,
        help="""Seconds SIGTERM waits for requests in flight to finish (progress streams are told
        to reconnect at once). Keep it below the pod's terminationGracePeriodSeconds.""",
    ).tag(config=True)

    stream_keepalive = Float(
        15,
        min=0.05,
        help="""Seconds of silence after which a progress or followed-log stream sends an SSE
        comment, so that proxies and load balancers, which close idle connections (nginx and
        cloud load balancers after 60 s by default), keep it open.""",
    ).tag(config=True)

    kubernetes = CaselessStrEnum(
        ["off", "in-cluster", "kubeconfig"],
        "off",
        help="""Where to read pod status and events for diagnostics: 'off' (the Hub's view
        only; the embedded default), 'in-cluster' (the pod's service account), or
        'kubeconfig' (the file in NotebooksService.kubeconfig).""",
    ).tag(config=True)
    kubeconfig = Unicode(
        help="kubeconfig file for kubernetes='kubeconfig' (default: $KUBECONFIG or ~/.kube/config)."
    ).tag(config=True)
    kube_request_timeout = Float(5, help="Seconds to wait for the Kubernetes API.").tag(config=True)

    server_logs = CaselessStrEnum(
        ["off", "kubernetes", "local"],
        help="""Where <server>/-/logs reads a server's output: 'kubernetes' (the notebook
        container's log; the default when kubernetes is on; the service's role needs
        pods/log get), 'local' (files <local_logs_dir>/<user>/<server>.log, as the demo's
        spawner writes them) or 'off'.""",
    ).tag(config=True)

    @default("server_logs")
    def _server_logs(self):
        return "off" if self.kubernetes == "off" else "kubernetes"

    local_logs_dir = Unicode(help="Folder of the servers' output files for server_logs = 'local'.").tag(config=True)
    max_log_bytes = Integer(
        1024 * 1024,
        help="""Most bytes of a server's log that one answer of <server>/-/logs reads and sends (its
        last lines, as many as fit): a user's server may print anything, in any amount.""",
    ).tag(config=True)
    max_log_line_bytes = Integer(
        16 * 1024,
        help="""Longest line of a server's log passed on; a longer one is cut and ends with
        "… [line cut: N more bytes]". A followed log holds at most one such line.""",
    ).tag(config=True)
    max_log_follows = Integer(
        200,
        help="""Server logs this process follows at once, for everyone (each holds a stream to
        Kubernetes or a file); beyond it, 503 with Retry-After. max_log_follows_per_user caps one user.""",
    ).tag(config=True)
    max_log_follows_per_user = Integer(
        5,
        help="""Server logs one user may follow at once (each holds a stream to Kubernetes); beyond
        it, 429 with Retry-After.""",
    ).tag(config=True)

    template_paths = List(Unicode(), help="Folders with the jinja2 page templates.").tag(config=True)

    allow_origins = List(
        Unicode(),
        help="""Origins (scheme://host[:port], exactly) of web pages that may call the JSON API
        from the browser (CORS), e.g. the platform's web presence. Their preflights are answered
        without login; their requests authenticate with 'Authorization: token|Bearer ...'.
        Credentials (cookies) are never allowed across origins. Empty (default): same origin only.""",
    ).tag(config=True)

    @validate("allow_origins")
    def _exact_origins(self, proposal):
        for origin in proposal.value:
            parsed = urlparse(origin)
            if (
                parsed.scheme not in ("http", "https")
                or not parsed.netloc
                or origin != f"{parsed.scheme}://{parsed.netloc}"
            ):
                raise TraitError(
                    f"NotebooksService.allow_origins: {origin!r} is not an origin like https://portal.example.org"
                )
        return proposal.value

    trusted_proxies = List(
        Unicode(),
        ["127.0.0.0/8", "::1/128"],
        help="""Addresses or networks (CIDR) of proxies whose X-Forwarded-For / X-Real-Ip
        headers are believed, e.g. the cluster's pod network for the Hub's proxy pod. From any
        other peer these headers are ignored and the peer's own address is logged.""",
    ).tag(config=True)

    @validate("trusted_proxies")
    def _networks(self, proposal):
        for value in proposal.value:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise TraitError(f"NotebooksService.trusted_proxies: {value!r} is not an address or network") from None
        return proposal.value

    metrics_scope = Unicode(
        "read:metrics",
        help="""Scope a Hub token needs to read <prefix>/metrics: JupyterHub's own for /hub/metrics,
        so the token a Prometheus server scrapes the Hub with reads these too.""",
    ).tag(config=True)
    metrics_port = Integer(
        0,
        help="""Also serve the metrics at http://<metrics_ip>:<metrics_port>/metrics without a token,
        for scrapers inside the cluster (the Hub's proxy does not route this port; keep it closed to
        the rest with a NetworkPolicy). 0 (default): only <prefix>/metrics, with a token.""",
    ).tag(config=True)
    metrics_ip = Unicode("0.0.0.0", help="Address the metrics_port listens on.").tag(config=True)

    start_on_visit = Bool(
        False,
        help="""Start a stopped server when its page is visited (a bookmark, a shared link): the
        page itself sends the usual XSRF-checked start, and opens the notebook once ready. Off
        (default): the page offers a one-click start. On, every visit of a stopped server's page
        starts it, so a stray click or an old bookmark costs a server until the culler stops it;
        a page that shows a failed start never starts again by itself.""",
    ).tag(config=True)

    idle_timeout = Float(
        0,
        help="""Seconds of idleness after which the Hub's idle culler stops a server: the value
        given to jupyterhub-idle-culler's --timeout (z2jh: cull.timeout, which the chart passes on
        from the same key). Each running server's model then says when the culler will stop it
        (``culls_at``: its last activity plus this), and pages show it. 0: no culler is known, no
        time is shown.""",
    ).tag(config=True)
    idle_warning = Float(
        600,
        help="""Seconds before ``culls_at`` from which pages warn that the server will be stopped
        and offer "Keep running" (which records activity through the Hub, so the culler waits
        another idle_timeout). 0: no warning.""",
    ).tag(config=True)

    @validate("idle_timeout", "idle_warning")
    def _not_negative(self, proposal):
        if proposal.value < 0:
            raise TraitError(f"NotebooksService.{proposal.trait.name} must be 0 or more seconds")
        return proposal.value

    share_reconcile_interval = Float(
        300,
        help="""Deprecated: the shares are checked by ``notebooks-service reconcile`` (one per
        deployment), every ``Reconciler.membership_check_interval``; set that. Read by the
        reconciler, with a warning, where that is not set.""",
    ).tag(config=True)

    security_headers = Dict(
        Unicode(),
        help="""Headers on every answer, error pages included (like JupyterHub's
        tornado_settings["headers"]). The default lets no other site frame the service's pages
        (clickjacking of Start, Stop and Remove), stops browsers from guessing content types, and
        sends no path of the service to other sites. Set a key to "" to send no such header;
        keys given here replace the defaults' one by one.""",
    ).tag(config=True)

    @default("security_headers")
    def _security_headers(self):
        return dict(SECURITY_HEADERS)

    @validate("security_headers")
    def _merge_security_headers(self, proposal):
        merged = {**SECURITY_HEADERS, **proposal.value}
        return {name: value for name, value in merged.items() if value}

    max_body_size = Integer(
        64 * 1024,
        help="""Largest request body taken, in bytes; a larger one is answered 413, then read to its end
        and dropped (up to 16 MiB, so that the Hub's proxy relays the 413 rather than meet a reset).
        The service's bodies are small forms (start, stop).""",
    ).tag(config=True)

    log_json = Bool(
        False,
        help="""Log one JSON object per line (time, level, logger, message; requests add route,
        method, status, latency_ms, user and server) for log collectors, instead of text.""",
    ).tag(config=True)

    @default("template_paths")
    def _template_paths(self):
        return _default_template_paths()

    # -- assembly -------------------------------------------------------------

    def make_hub_auth(self) -> SharedStateHubOAuth:
        if not self.hub_api_token:
            raise ValueError("No Hub API token: set JUPYTERHUB_API_TOKEN or NotebooksService.hub_api_token")
        auth = SharedStateHubOAuth(
            parent=self,
            state_secret=self.cookie_secret,  # so any replica can complete a login
            api_url=self.hub_api_url,
            api_token=self.hub_api_token,
            hub_prefix=self.hub_prefix,
            hub_host=self.hub_host,
            base_url=self.service_prefix,
            oauth_client_id=self.oauth_client_id,
            oauth_redirect_uri=self.oauth_redirect_uri,
        )
        if not auth.access_scopes:
            # set by the Hub for managed services; an external one must still require access
            auth.access_scopes = {f"access:services!service={self.service_name}"}
        return auth

    def make_app(self) -> web.Application:
        """The Tornado application: the route table (routes.py) under the service prefix, and the components."""
        return web.Application(
            tornado_routes(self.service_prefix),
            components=build_components(self),
            cookie_secret=self.cookie_secret,
            login_url=self.hub_prefix + "login",
            log_function=_request_finished,
            serve_traceback=False,
        )

    def initialize(self, argv=None) -> None:
        super().initialize(argv)
        if self.subapp:
            return
        if os.path.exists(self.config_file):
            self.load_config_file(self.config_file)
        elif self.config_file != self.__class__.config_file.default_value:
            raise SystemExit(f"Config file not found: {self.config_file}")
        # one log stream: tornado's and our modules' loggers go through the app's handler, scrubbed
        for handler in self.log.handlers:
            handler.addFilter(SecretsFilter())
            if self.log_json:
                handler.setFormatter(json_log_formatter())
        for name in ("tornado.access", "tornado.application", "tornado.general", "notebooks_service", "jupyterhub"):
            logger = logging.getLogger(name)
            logger.propagate = True
            logger.parent = self.log
            logger.setLevel(self.log.level)
        if not self.images:
            self.log.warning("The image catalogue is empty: nobody can start a server (set NotebooksService.images).")

    async def _serve(self) -> None:
        app = self.make_app()
        # forwarded addresses are believed per request, from trusted proxies only (log.client_address)
        server = HTTPServer(
            BodySizeLimit(app, self.max_body_size), xheaders=False, max_body_size=max(DISCARD_LIMIT, self.max_body_size)
        )
        server.listen(self.port, self.ip)
        self.log.info(
            "notebooks-service %s listening on http://%s:%i%s", __version__, self.ip, self.port, self.service_prefix
        )
        self.log.info("Hub API at %s; %d image(s) in the catalogue", self.hub_api_url, len(self.images))
        checking_scopes = asyncio.ensure_future(check_own_scopes(app.settings["components"].hub, Settings.of(self)))
        metrics_server = None
        if self.metrics_port:
            metrics_server = web.Application(metrics_port_routes(), log_function=_request_finished).listen(
                self.metrics_port, self.metrics_ip
            )
            self.log.info("Metrics for in-cluster scrapers on http://%s:%i/metrics", self.metrics_ip, self.metrics_port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        checking_scopes.cancel()
        if metrics_server is not None:
            metrics_server.stop()
        await self._drain(app, server)

    async def _drain(self, app: web.Application, server) -> None:
        """Stop accepting, tell progress streams to reconnect, let requests in flight finish."""
        components: Components = app.settings["components"]
        components.draining.set()
        server.stop()
        components.progress.shutdown("The notebooks service is restarting: reconnecting…")
        in_flight = components.in_flight
        self.log.info("Shutting down: finishing %d request(s) in flight", len(in_flight))
        if not await in_flight.wait_empty(self.shutdown_grace):
            self.log.warning(
                "%d request(s) still running after %.0fs: cutting them", len(in_flight), self.shutdown_grace
            )
        try:
            await asyncio.wait_for(server.close_all_connections(), 5)
        except asyncio.TimeoutError:
            pass
        components.hub.close()
        await components.diagnostics.close()
        self.log.info("Stopped")

    def start(self) -> None:
        if self.subapp:
            self.subapp.start()
            return
        try:
            asyncio.run(self._serve())
        except ValueError as e:
            self.log.critical("%s", e)
            raise SystemExit(1) from None


main = NotebooksService.launch_instance
