"""Request bodies larger than the service takes are answered 413 before they are read.

Tornado itself cuts a body over ``max_body_size`` with a bare "400 Bad Request"
and a closed connection; ``BodySizeLimit`` wraps the application's connection
delegate and answers a declared ``Content-Length`` over the limit with 413 in
the one error shape, then closes the connection without reading the body.
"""

import json

from tornado import httputil
from tornado.log import access_log


class BodySizeLimit(httputil.HTTPServerConnectionDelegate):
    def __init__(self, app: httputil.HTTPServerConnectionDelegate, limit: int):
        self.app = app
        self.limit = limit

    def start_request(self, server_conn, request_conn: httputil.HTTPConnection) -> httputil.HTTPMessageDelegate:
        return _Request(self.app.start_request(server_conn, request_conn), request_conn, self.limit)

    def on_close(self, server_conn) -> None:
        self.app.on_close(server_conn)


class _Request(httputil.HTTPMessageDelegate):
    def __init__(self, inner: httputil.HTTPMessageDelegate, connection: httputil.HTTPConnection, limit: int):
        self.inner = inner
        self.connection = connection
        self.limit = limit
        self.refused = False

    def headers_received(self, start_line, headers):
        try:
            length = int(headers.get("Content-Length", "0"))
        except ValueError:
            length = 0  # tornado answers a malformed length itself
        if length <= self.limit:
            return self.inner.headers_received(start_line, headers)
        self.refused = True
        message = f"The request body is {length} bytes; this service takes at most {self.limit}."
        body = json.dumps({"status": 413, "message": message}).encode()
        self.connection.write_headers(
            httputil.ResponseStartLine("HTTP/1.1", 413, "Content Too Large"),
            httputil.HTTPHeaders(
                {"Content-Type": "application/json", "Content-Length": str(len(body)), "Connection": "close"}
            ),
            body,
        )
        self.connection.finish()  # the body is never read: the connection closes
        access_log.warning("413 %s %s: %d bytes declared", start_line.method, start_line.path.split("?")[0], length)
        return None

    def data_received(self, chunk):
        if not self.refused:
            return self.inner.data_received(chunk)
        return None

    def finish(self) -> None:
        if not self.refused:
            self.inner.finish()

    def on_connection_close(self) -> None:
        if not self.refused:
            self.inner.on_connection_close()
