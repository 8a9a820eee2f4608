"""Thin Tornado handlers: parse, call the launcher (or another component), render.

- ``base``: authentication, CORS, negotiation, errors, security headers, event streams;
- ``servers``: the list of the caller's servers, and one server (show, start, stop);
- ``streams``: a server's progress and its output, as server-sent events;
- ``service``: the service's own endpoints (user, probes, metrics, OpenAPI, login callback).

``routes.py`` is the one place that names them, with the paths they answer.
"""
