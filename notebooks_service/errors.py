"""Errors the service reports to its clients.

Each one is a Tornado ``HTTPError`` so that any layer may raise it and
``BaseHandler.write_error`` renders it in the one error shape we use:
``{"status": <code>, "message": "..."}`` for JSON, an error page for browsers.
"""

from tornado import web


class ServiceError(web.HTTPError):
    """An error with a status code and a message meant for the user."""

    status_code = 500
    #: seconds a client should wait before trying again (sent as Retry-After), if any
    retry_after: int | None = None

    def __init__(self, message: str, status_code: int | None = None, *, retry_after: int | None = None):
        # message is passed as log_message without args: tornado never %-formats it
        super().__init__(status_code or self.status_code, log_message=message)
        self.message = message
        if retry_after is not None:
            self.retry_after = retry_after

    @property
    def jupyterhub_message(self) -> str:
        """What JupyterHub shows people of an error raised inside it (the guard's refusals), as text."""
        return self.message


class InvalidRequest(ServiceError):
    status_code = 400


class Unauthorized(ServiceError):
    """No valid credentials: the client should log in (again)."""

    status_code = 401


class TokenExpired(Unauthorized):
    """An identity provider's token has expired (the Hub may renew one it keeps in auth_state)."""


class NotAMember(ServiceError):
    status_code = 403


class UnsupportedMediaType(ServiceError):
    """A request body of a type this route does not read."""

    status_code = 415


class NotFound(ServiceError):
    status_code = 404


class ServerBusy(ServiceError):
    """The server is in a state (e.g. stopping) that forbids the action right now."""

    status_code = 409
    retry_after = 2


class TooManyRequests(ServiceError):
    """The caller holds as many of something (e.g. progress streams) as one caller may."""

    status_code = 429
    retry_after = 5


class HubError(ServiceError):
    """The Hub answered, but not in a way we can use."""

    status_code = 502


class SpawnFailed(HubError):
    """The Hub accepted the start, but the spawn failed at once."""


class HubUnavailable(ServiceError):
    """The Hub could not be reached, or did not answer within the request's time budget."""

    status_code = 503
    retry_after = 5


class ServiceUnavailable(ServiceError):
    """This service cannot take the request now (at capacity, or shutting down)."""

    status_code = 503
    retry_after = 5
