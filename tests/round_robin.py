"""A round-robin HTTP load balancer on localhost: each request goes to the next backend.

Per request, not per connection, and no stickiness: the harshest balancing a
Kubernetes Service could do. Runs on its own thread; records who served what.
"""

import itertools

from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from threaded_server import ThreadedServer

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "upgrade", "trailer"}


class RoundRobin(ThreadedServer):
    def __init__(self, backends: list[str]):
        self.backends = backends
        self.served: list[tuple[int, str, str]] = []  # (backend index, method, path)
        self._next = itertools.cycle(range(len(backends)))
        super().__init__(self._app)

    def _app(self) -> web.Application:
        balancer = self

        class Forward(web.RequestHandler):
            SUPPORTED_METHODS = ("GET", "POST", "DELETE", "PUT", "PATCH", "HEAD")

            async def forward(self, *args):
                index = next(balancer._next)
                balancer.served.append((index, self.request.method, self.request.path))
                headers = {k: v for k, v in self.request.headers.get_all() if k.lower() not in _HOP_BY_HOP}
                response = await AsyncHTTPClient().fetch(
                    HTTPRequest(
                        balancer.backends[index] + self.request.uri,
                        method=self.request.method,
                        headers=headers,
                        body=self.request.body if self.request.method in ("POST", "PUT", "PATCH", "DELETE") else None,
                        follow_redirects=False,
                        allow_nonstandard_methods=True,
                        request_timeout=60,
                    ),
                    raise_error=False,
                )
                self.set_status(response.code, response.reason)
                self._headers.clear()
                for name, value in response.headers.get_all():
                    if name.lower() not in _HOP_BY_HOP:
                        self.add_header(name, value)
                if response.body:
                    self.write(response.body)

            get = post = delete = put = patch = head = forward

        return web.Application([(r".*", Forward)])
