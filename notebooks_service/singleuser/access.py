"""Access that ends on the Hub ends in the server too, for what is already open.

JupyterHub's single-user server asks the Hub about a token once and keeps the answer for
``HubAuth.cache_max_age`` (300 s by default), and a terminal or kernel connection is
authorized once, when it opens. A recipient whose share is revoked, or a member who left
the workspace of a server shared with them, keeps both. ``RevocableAuthorizer`` is
jupyter_server's Authorizer (consulted on opening a websocket and on each REST call): it
remembers the token of every open terminal and kernel connection, asks the Hub about each of
those tokens again every ``recheck_interval`` seconds, and on a definite "no" closes that
token's connections and refuses the token until the Hub's cached answer about it has expired.
A Hub that cannot answer closes nothing: the next check asks again.

An image enables it with its Jupyter configuration (the demo's image/jupyter_server_config.py).
"""

import asyncio
import time
import weakref

from jupyter_server.auth.authorizer import AllowAllAuthorizer
from tornado.web import HTTPError
from tornado.websocket import WebSocketHandler
from traitlets import Float

#: websocket close code for "policy violation" (RFC 6455): clients do not take it for a network blip
CLOSE_REVOKED = 1008


class RevocableAuthorizer(AllowAllAuthorizer):
    """Lets in whom the Hub lets in, and stops letting in, open connections included, whom it no longer does."""

    recheck_interval = Float(
        60,
        help="""Seconds between two checks with the Hub of the tokens of open terminal and kernel connections.

        One Hub call per distinct token per check (a shared server has a few); also the longest a
        revoked recipient keeps an open terminal. Set HubOAuth.cache_max_age no longer, which bounds
        the same for new requests.""",
    ).tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._open: weakref.WeakKeyDictionary[WebSocketHandler, tuple[str, str]] = weakref.WeakKeyDictionary()
        self._refused_until: dict[str, float] = {}  # token -> monotonic time
        self._rechecking: asyncio.Task | None = None

    @property
    def _hub_auth(self):
        return getattr(self.identity_provider, "hub_auth", None)

    def is_authorized(self, handler, user, action, resource) -> bool:
        connecting = isinstance(handler, WebSocketHandler)
        if not connecting and not self._refused_until:
            return True  # every REST call comes here: nothing to look up while no token is refused
        hub_auth = self._hub_auth
        token = hub_auth.get_token(handler) if hub_auth is not None else None
        if not token:
            return True  # not behind a Hub, or nothing to check again: as jupyter_server's own
        if self._refused(token):
            return False
        if connecting:
            self._open[handler] = (token, getattr(user, "username", "?"))
            if self._rechecking is None or self._rechecking.done():
                self._rechecking = asyncio.get_running_loop().create_task(self._recheck_forever())
        return True

    def _refused(self, token: str) -> bool:
        until = self._refused_until.get(token)
        if until is not None and until <= time.monotonic():
            del self._refused_until[token]
            return False
        return until is not None

    async def _recheck_forever(self) -> None:
        while True:
            await asyncio.sleep(self.recheck_interval)
            try:
                await self.recheck()
            except Exception:
                self.log.exception(
                    "Rechecking open connections with the Hub failed; trying again in %ss", self.recheck_interval
                )

    async def recheck(self) -> None:
        """Ask the Hub about each open connection's token (and each refused one); close what lost access."""
        by_token: dict[str, list[WebSocketHandler]] = {}
        names: dict[str, str] = {}
        for handler, (token, name) in list(self._open.items()):
            if handler.ws_connection is None:  # closed (or not open yet)
                continue
            by_token.setdefault(token, []).append(handler)
            names[token] = name
        for token in list(self._refused_until):
            by_token.setdefault(token, [])
        for token, handlers in by_token.items():
            allowed = await self._allowed(token)
            if allowed is None:
                continue  # unknown: nothing changes until the Hub answers
            if allowed:
                self._refused_until.pop(token, None)  # given back (shared again): let in again at once
                continue
            self._refuse(token, names.get(token, "?"), handlers)

    async def _allowed(self, token: str) -> bool | None:
        """True or False as the Hub says now (not its cached answer); None if it cannot say."""
        hub_auth = self._hub_auth
        try:
            model = await hub_auth.user_for_token(token, use_cache=False, sync=False)
        except HTTPError as e:
            self.log.warning(
                "The Hub could not say whether open connections keep access (%s); asking again in %ss",
                e.status_code,
                self.recheck_interval,
            )
            return None
        return bool(model) and bool(hub_auth.check_scopes(hub_auth.access_scopes, model))

    def _refuse(self, token: str, name: str, handlers: list[WebSocketHandler]) -> None:
        # refused until the single-user server's own cached answer about it has expired too
        hold = max(self._hub_auth.cache_max_age, self.recheck_interval)
        self._refused_until[token] = time.monotonic() + hold
        if handlers:
            self.log.warning(
                "%s no longer has access to this server: closing %d open connection(s)", name, len(handlers)
            )
        for handler in handlers:
            self._open.pop(handler, None)
            handler.close(CLOSE_REVOKED, "Your access to this server has ended.")
