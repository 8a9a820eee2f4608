"""The JSON API, described in OpenAPI 3.1: served at ``<prefix>/api/openapi.json``.

Written by hand next to the handlers it describes; tests check real responses
against it (tests/test_openapi.py) and schemathesis fuzzes the running service
with it. Browser-only routes (the OAuth callback, the HTML pages and their
form posts) are not part of it.
"""

from typing import Any

from .naming import WORKSPACE_MAX_LENGTH


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, dict]:
    return {str(code): {"$ref": f"#/components/responses/Error{code}"} for code in codes}


_ERROR_RESPONSES = {
    f"Error{code}": _json(_ref("Error"), text)
    for code, text in {
        400: "Invalid input: a workspace, image or notebook name that cannot be",
        401: "No credentials, or credentials the Hub does not accept",
        403: "Not a member of the workspace, no access to the service, or not allowed",
        404: "No such image in the catalogue, no such server, or no such page",
        409: "The server is busy (stopping, or another request holds it): retry after Retry-After",
        429: "The caller holds as many progress streams as one caller may",
        502: "The Hub answered in a way the service cannot use, or the start failed",
        503: "The Hub (or the identity provider) did not answer in time, or the service is at capacity",
    }.items()
}

_NAME = {"type": "string", "minLength": 1, "maxLength": 200}
_PARAMETERS = {
    "workspace": {
        "name": "workspace",
        "in": "path",
        "required": True,
        "description": f"A workspace the caller is a member of: at most {WORKSPACE_MAX_LENGTH} lowercase "
        "letters, digits and hyphens, starting and ending with a letter or digit (so that ws-<workspace> "
        "is a Kubernetes namespace). Anything else is a 400.",
        "schema": _NAME,
        "example": "alpha",
    },
    "image": {
        "name": "image",
        "in": "path",
        "required": True,
        "description": "An image of the catalogue, by name; anything else is a 404 naming the catalogue.",
        "schema": _NAME,
        "example": "python",
    },
    "notebook": {
        "name": "notebook",
        "in": "path",
        "required": True,
        "description": "A notebook path in the server (its '/' may be sent as is). "
        "Absolute paths, '..' and control characters are a 400.",
        "schema": {"type": "string", "minLength": 1, "pattern": "^[^\\x00-\\x1f\\x7f]+$"},
        "example": "analysis/report.ipynb",
    },
}

_SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["status", "message"],
        "properties": {
            "status": {"type": "integer", "description": "The HTTP status code again"},
            "message": {"type": "string", "description": "What went wrong, for people"},
        },
    },
    "KubernetesStatus": {
        "type": "object",
        "required": ["kubernetes", "message", "details"],
        "properties": {
            "kubernetes": {
                "enum": ["off", "ok", "unreachable", "forbidden", "error"],
                "description": "'off': no diagnostics configured; 'forbidden': Kubernetes refused (RBAC)",
            },
            "message": {"type": "string"},
            "hint": {"type": ["string", "null"], "description": "What to do about the first problem, if anything"},
            "details": {"type": "object", "description": "phase, waiting reasons, conditions, recent events"},
        },
    },
    "Server": {
        "type": "object",
        "required": [
            "name",
            "workspace",
            "image",
            "resource_class",
            "display_name",
            "ready",
            "pending",
            "stopped",
            "url",
            "progress_url",
            "logs_url",
            "hub_progress_url",
            "started",
            "last_activity",
            "status_url",
        ],
        "properties": {
            "name": {"type": "string", "description": "The Hub's named server: derived from workspace and image"},
            "workspace": {"type": "string"},
            "image": {"type": "string"},
            "resource_class": {
                "type": ["string", "null"],
                "description": "The class it runs with, if classes are offered",
            },
            "display_name": {"type": "string"},
            "ready": {"type": "boolean", "description": "The server answers: open url"},
            "pending": {"enum": ["spawn", "stop", None], "description": "What the Hub is doing, if anything"},
            "stopped": {"type": "boolean", "description": "Kept by the Hub but not running (a failed start, a cull)"},
            "url": {"type": ["string", "null"], "description": "The server, behind the Hub's proxy"},
            "progress_url": {"type": "string", "description": "This service's progress stream of the server"},
            "logs_url": {"type": "string", "description": "The server's output (<server>/-/logs)"},
            "hub_progress_url": {"type": ["string", "null"]},
            "started": {"type": ["string", "null"], "format": "date-time"},
            "last_activity": {"type": ["string", "null"], "format": "date-time"},
            "status_url": {"type": "string", "description": "The server's status page and JSON model"},
            "status": {**_ref("KubernetesStatus"), "description": "Kubernetes' view (one server's model only)"},
            "notebook_url": {"type": "string", "description": "The notebook asked for, in the server"},
        },
    },
    "Stopping": {
        "type": "object",
        "required": ["name", "workspace", "image", "pending"],
        "properties": {
            "name": {"type": "string"},
            "workspace": {"type": "string"},
            "image": {"type": "string"},
            "pending": {"const": "stop"},
        },
    },
}


def _server_operations(with_notebook: bool) -> dict[str, Any]:
    parameters = [_PARAMETERS["workspace"], _PARAMETERS["image"]] + ([_PARAMETERS["notebook"]] if with_notebook else [])
    suffix = "WithNotebook" if with_notebook else ""
    operations = {
        "parameters": parameters,
        "get": {
            "operationId": "getServer" + suffix,
            "summary": "The caller's server for (workspace, image), with Kubernetes' view"
            + (" and the notebook's URL" if with_notebook else ""),
            "responses": {"200": _json(_ref("Server"), "The server (running or pending)")}
            | _errors(400, 401, 403, 404, 502, 503),
        },
        "post": {
            "operationId": "startServer" + suffix,
            "summary": "Start the caller's server for (workspace, image)",
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"resource_class": _NAME},
                            "additionalProperties": False,
                        },
                        "example": {"resource_class": "large"},
                    }
                },
                "description": "Optional: the resource class (as the query parameter; the two may not disagree). "
                "An unknown field is a 400 naming it.",
            },
            "parameters": [
                {
                    "name": "resource_class",
                    "in": "query",
                    "description": "A resource class the image allows in the workspace (default: the image's); "
                    "another class than a running server's is a 409",
                    "schema": _NAME,
                }
            ],
            "responses": {
                "201": _json(_ref("Server"), "Started and ready (or already running)"),
                "202": _json(_ref("Server"), "Starting: follow progress_url or poll status_url"),
            }
            | _errors(400, 401, 403, 404, 409, 502, 503),
        },
    }
    if not with_notebook:
        operations["delete"] = {
            "operationId": "stopServer",
            "summary": "Stop and remove the caller's server (no membership check: one may always stop one's own)",
            "responses": {
                "204": {"description": "Stopped (or there was none)"},
                "202": _json(_ref("Stopping"), "Stopping: it takes a moment"),
            }
            | _errors(400, 401, 409, 502, 503),
        }
    return operations


def describe(prefix: str, version: str) -> dict[str, Any]:
    """The OpenAPI document of the service mounted at ``prefix`` (e.g. /services/notebooks/)."""
    public: list = []  # no credentials needed
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "notebooks-service",
            "version": version,
            "description": "Start, watch and stop workspace-scoped notebook servers through JupyterHub. "
            "Send 'Authorization: token <Hub API token>' (or 'Bearer <identity-provider JWT>' where accepted) "
            "and 'Accept: application/json'. Errors are {status, message}.",
        },
        "servers": [{"url": prefix.rstrip("/")}],
        "security": [{"hubToken": []}, {"bearer": []}],
        "paths": {
            "/": {
                "get": {
                    "operationId": "listServers",
                    "summary": "The caller's servers started through this service, running and stopped",
                    "responses": {"200": _json({"type": "array", "items": _ref("Server")}, "The servers")}
                    | _errors(401, 403, 502, 503),
                },
                "post": {
                    "operationId": "startServerFromForm",
                    "summary": "Start the caller's server for (workspace, image), as the list page's form does",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/x-www-form-urlencoded": {
                                "schema": {
                                    "type": "object",
                                    "required": ["workspace", "image"],
                                    "properties": {"workspace": _NAME, "image": _NAME},
                                }
                            }
                        },
                    },
                    "responses": {
                        "201": _json(_ref("Server"), "Started and ready (or already running)"),
                        "202": _json(_ref("Server"), "Starting: follow progress_url or poll status_url"),
                    }
                    | _errors(400, 401, 403, 404, 409, 502, 503),
                },
            },
            "/user": {
                "get": {
                    "operationId": "getUser",
                    "summary": "The caller's Hub user model, without auth_state",
                    "responses": {
                        "200": _json(
                            {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
                            "The Hub's model",
                        )
                    }
                    | _errors(401, 403, 502, 503),
                }
            },
            "/{workspace}/{image}": _server_operations(False),
            "/{workspace}/{image}/{notebook}": _server_operations(True),
            "/{workspace}/{image}/-/progress": {
                "parameters": [_PARAMETERS["workspace"], _PARAMETERS["image"]],
                "get": {
                    "operationId": "followProgress",
                    "summary": "The start's progress as server-sent events (JSON data: progress, message; "
                    "the last has ready, failed, or reconnect)",
                    "responses": {
                        "200": {
                            "description": "An event stream; each event's data is a JSON object",
                            "content": {
                                "text/event-stream": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["data"],
                                        "properties": {
                                            "data": {"type": "string", "contentMediaType": "application/json"},
                                            "event": {"type": "string"},
                                        },
                                    }
                                }
                            },
                        }
                    }
                    | _errors(400, 401, 403, 404, 429, 502, 503),
                },
            },
            "/{workspace}/{image}/-/logs": {
                "parameters": [
                    _PARAMETERS["workspace"],
                    _PARAMETERS["image"],
                    {
                        "name": "tail",
                        "in": "query",
                        "description": "The last lines only: ASCII digits, 0-10000 (default 1000); "
                        "anything else is a 400",
                        "schema": {"type": "string", "pattern": "^[0-9]{1,5}$"},
                    },
                    {
                        "name": "previous",
                        "in": "query",
                        "description": "The container before its last restart (Kubernetes): after a crash",
                        "schema": {"type": "boolean"},
                    },
                    {
                        "name": "format",
                        "in": "query",
                        "description": "'text' for text/plain (as does Accept: text/plain)",
                        "schema": {"enum": ["text", "json"]},
                    },
                ],
                "get": {
                    "operationId": "readLogs",
                    "summary": "The caller's server's output: JSON lines ({\"line\": ...}), or text; "
                    "with Accept: text/event-stream it is followed as server-sent events",
                    "responses": {
                        "200": {
                            "description": "The lines",
                            "content": {
                                "application/x-ndjson": {"schema": {"type": "string"}},
                                "text/plain": {"schema": {"type": "string"}},
                            },
                        }
                    }
                    | _errors(400, 401, 403, 404, 429, 502, 503),
                },
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness of the process; never asks the Hub",
                    "security": public,
                    "responses": {
                        "200": _json(
                            {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
                            "Alive",
                        )
                    },
                }
            },
            "/ready": {
                "get": {
                    "operationId": "ready",
                    "summary": "Readiness: the Hub answers and the process is not shutting down",
                    "security": public,
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["status", "hub"],
                                "properties": {"status": {"const": "ok"}, "hub": {"const": "ok"}},
                            },
                            "Ready",
                        )
                    }
                    | _errors(502, 503),
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics, for a Hub token with the scope read:metrics",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    }
                    | _errors(401, 403, 503),
                }
            },
            "/api/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This description",
                    "security": public,
                    "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")},
                }
            },
        },
        "components": {
            "schemas": _SCHEMAS,
            "responses": _ERROR_RESPONSES,
            "securitySchemes": {
                "hubToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "'token <Hub API token>'",
                },
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A Hub API token, or an identity-provider JWT",
                },
            },
        },
    }
