"""Errors the service reports to its clients.

Each one is a Tornado ``HTTPError`` so that any layer may raise it and
``BaseHandler.write_error`` renders it in the one error shape we use:
``{"status": <code>, "message": "..."}`` for JSON, an error page for browsers.
"""

from tornado import web


class ServiceError(web.HTTPError):
    """An error with a status code and a message meant for the user."""

    status_code = 500

    def __init__(self, message: str, status_code: int | None = None, *, retry_after: int | None = None):
        # message is passed as log_message without args: tornado never %-formats it
        super().__init__(status_code or self.status_code, log_message=message)
        self.message = message
        self.retry_after = retry_after


class InvalidRequest(ServiceError):
    status_code = 400


class Unauthorized(ServiceError):
    """No valid credentials: the client should log in (again)."""

    status_code = 401


class NotAMember(ServiceError):
    status_code = 403


class NotFound(ServiceError):
    status_code = 404


class ServerBusy(ServiceError):
    """The server is in a state (e.g. stopping) that forbids the action right now."""

    status_code = 409


class HubError(ServiceError):
    """The Hub answered, but not in a way we can use."""

    status_code = 502


class SpawnFailed(HubError):
    """The Hub accepted the start, but the spawn failed at once."""


class HubUnavailable(ServiceError):
    """The Hub could not be reached at all."""

    status_code = 503
