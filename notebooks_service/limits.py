"""Request bodies larger than the service takes are answered 413, then read and dropped.

Tornado itself cuts a body over ``max_body_size`` with a bare "400 Bad Request"
and a closed connection; ``BodySizeLimit`` wraps the application's connection
delegate and answers a body over the limit (a declared ``Content-Length``, or a
chunked body once it passes the limit) with 413 in the one error shape. The rest
of the body is then read and dropped, never kept, up to ``DISCARD_LIMIT`` (the
server's own ``max_body_size``), before the connection closes: a proxy in front
(the Hub's) that is still sending would otherwise meet a reset, and answer its
own 503 instead of the 413 (2 times in 10, measured). A larger declared body is
answered 413 and cut at once.
"""

import json

from tornado import httputil
from tornado.log import access_log

#: bodies up to this size are read to their end (and dropped) after a 413: give it to the HTTPServer
DISCARD_LIMIT = 16 * 1024 * 1024


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
        self.connection_finished = False

    def headers_received(self, start_line, headers):
        self.start_line = start_line
        self.received = 0
        try:
            length = int(headers.get("Content-Length", "0"))
        except ValueError:
            length = 0  # tornado answers a malformed length itself
        if length <= self.limit:
            return self.inner.headers_received(start_line, headers)
        self._refuse(f"{length} bytes")
        if length > DISCARD_LIMIT:  # not read at all: tornado cuts the connection
            self._finish_connection()
        return None

    def _refuse(self, size: str) -> None:
        self.refused = True
        message = f"The request body is {size}; this service takes at most {self.limit}."
        body = json.dumps({"status": 413, "message": message}).encode()
        self.connection.write_headers(
            httputil.ResponseStartLine("HTTP/1.1", 413, "Content Too Large"),
            httputil.HTTPHeaders(
                {"Content-Type": "application/json", "Content-Length": str(len(body)), "Connection": "close"}
            ),
            body,
        )
        # answered; finished once tornado has read the rest of the body (finish below), then closed:
        # finishing now would close the connection at once, under a proxy still sending
        access_log.warning("413 %s %s: %s", self.start_line.method, self.start_line.path.split("?")[0], size)

    def data_received(self, chunk):
        if self.refused:
            return None
        self.received += len(chunk)
        if self.received > self.limit:  # a chunked body, past the limit: what came is dropped too
            self.inner.on_connection_close()
            self._refuse(f"more than {self.limit} bytes")
            return None
        return self.inner.data_received(chunk)

    def finish(self) -> None:
        if not self.refused:
            self.inner.finish()
        else:
            self._finish_connection()

    def _finish_connection(self) -> None:
        """Finish the 413 (once): the connection closes once its data is sent."""
        if not self.connection_finished:
            self.connection_finished = True
            self.connection.finish()

    def on_connection_close(self) -> None:
        if not self.refused:
            self.inner.on_connection_close()
