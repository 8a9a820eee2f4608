"""A Tornado application served on its own thread and event loop, on a free localhost port.

For the test doubles that processes outside the test's own event loop must reach
(the service under test runs in another process, and sync clients block the test's loop).
"""

import asyncio
import threading

from tornado import web
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port


class ThreadedServer:
    """Serves ``make_app()`` (called on the server's own loop) until ``close()``."""

    def __init__(self, make_app):
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(make_app, ready), daemon=True)
        self.thread.start()
        if not ready.wait(10):
            raise RuntimeError("test server did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, coroutine_function, timeout: float = 5):
        """Run ``coroutine_function()`` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine_function(), self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def _run(self, make_app, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        app: web.Application = make_app()
        sock, self.port = bind_unused_port()
        server = HTTPServer(app)
        server.add_sockets([sock])
        ready.set()
        self.loop.run_forever()
        server.stop()
