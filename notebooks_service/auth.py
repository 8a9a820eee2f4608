"""Who is calling: a Hub API token, the service's OAuth cookie, or an identity provider's JWT.

``identify`` turns a request into one ``Caller`` (or None: not logged in).
Hub tokens and cookies are checked by JupyterHub's own HubOAuth, including
the service's access scope; a Bearer JWT is verified against the identity
provider when the workspace policy accepts those, and its user must hold the
same access scope in the Hub (``HubClient.user_holds_scope``). Workspace policies are
then asked about the caller's Hub user; they never look at a request.
"""

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from jupyterhub.services.auth import UserNotAllowed
from tornado import web

from .deadline import request_deadline
from .errors import HubUnavailable, NotAMember, NotFound, ServiceError, Unauthorized

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Caller:
    """A Hub user calling the service, and how they proved it."""

    name: str
    via: str  # "token" (Hub API token), "cookie" (the service's OAuth login) or "jwt" (identity provider)
    access_token: str | None = None  # the identity provider's JWT, when that is how they came


async def identify(handler: Any) -> Caller | None:
    """The caller of ``handler``'s request (a BaseHandler), or None if no credentials came with it.

    Raises 401/403 for credentials that do not hold, 503/502 when the Hub cannot say.
    """
    token = _bearer_jwt(handler)
    if token:
        return await _from_jwt(handler, token)
    try:
        model = await asyncio.wait_for(
            handler.hub_auth.get_user(handler, sync=False), request_deadline.get().remaining()
        )
    except asyncio.TimeoutError:
        log.error("Cannot check authentication with the Hub: no answer within the request's budget")
        raise HubUnavailable("Cannot check your login: the Hub did not answer in time.") from None
    except web.HTTPError as e:
        # HubAuth reports Hub trouble as 500s; that is not our bug: say what it is, log why
        log.error("Cannot check authentication with the Hub: %s", e.log_message)
        if "Failed to connect" in (e.log_message or ""):
            raise ServiceError("Cannot check your login: the Hub is not reachable right now.", 503) from None
        raise ServiceError("Cannot check your login: the Hub answered with an error.", 502) from None
    if not model:
        return None
    try:
        model = handler.check_hub_user(model)  # the service's access scope, as HubOAuth defines it
    except UserNotAllowed:
        raise NotAMember(f"{model['name']} may not use the notebooks service.") from None
    if model.get("kind", "user") != "user":
        raise NotAMember("Only Hub users can use the notebooks service.")
    return Caller(model["name"], "token" if getattr(handler, "_token_authenticated", False) else "cookie")


def _bearer_jwt(handler: Any) -> str | None:
    """A JWT in ``Authorization: Bearer``, if those are accepted (Hub tokens have no dots)."""
    if not handler.identity_provider.accept_bearer_jwt:
        return None
    scheme, _, token = handler.request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token.count(".") == 2 else None


async def _from_jwt(handler: Any, token: str) -> Caller:
    """The Hub user a verified identity-provider JWT names; 401/403 otherwise."""
    provider = handler.identity_provider
    name = provider.username(await provider.verify(token))
    try:
        await handler.hub.get_user(name)
    except NotFound:
        raise NotAMember(f"{name!r} is not a user of this Hub yet: log in to the Hub once.") from None
    if not await _holds_access_scope(handler, name):
        raise NotAMember(f"{name} may not use the notebooks service.")
    handler._token_authenticated = True  # like a Hub token: no XSRF check
    return Caller(name, "jwt", access_token=token)


async def _holds_access_scope(handler: Any, name: str) -> bool:
    """The check HubOAuth makes of a Hub token (any of ``access_scopes``), asked of the Hub for ``name``."""
    scopes = handler.hub_auth.access_scopes
    # the narrowest first: holding access:services implies holding access:services!service=<ours>
    for scope in sorted(scopes, key=lambda s: "!" not in s):
        if await handler.hub.user_holds_scope(name, scope):
            return True
    return not scopes  # HubOAuth lets every user in when there is no access scope


async def renew_identity(handler: Any) -> None:
    """Ask the Hub to renew the identity provider's tokens it keeps for the caller.

    The Hub runs its authenticator's ``refresh_user`` (OAuthenticator uses the
    refresh token) when the user's own credentials reach it and
    ``Authenticator.auth_refresh_age`` has passed: so the caller's Hub token
    (API token, or the one in the service's OAuth cookie) is shown to the Hub,
    bypassing HubOAuth's cache. A Hub that no longer accepts it means the
    refresh failed: the user must log in again.
    """
    caller: Caller = handler.current_user
    token = handler.hub_auth.get_token(handler) if caller.via != "jwt" else None
    if not token:  # a presented JWT is its client's to renew
        raise Unauthorized("The access token has expired: renew it and try again.")
    try:
        model = await asyncio.wait_for(
            handler.hub_auth.user_for_token(token, use_cache=False, sync=False), request_deadline.get().remaining()
        )
    except asyncio.TimeoutError:
        raise HubUnavailable("Cannot renew your login: the Hub did not answer in time.") from None
    except web.HTTPError:
        raise ServiceError("Cannot renew your login: the Hub answered with an error.", 502) from None
    if not model:
        raise Unauthorized("Your login has expired and could not be renewed: log in again.")
    handler.hub.forget_user(caller.name, servers_changed=False)
    log.info("Renewed the identity provider's tokens of %s through the Hub", caller.name)
