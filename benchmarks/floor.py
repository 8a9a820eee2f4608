"""The floor of `make bench`: a bare Tornado handler, a Hub service behind the same proxy.

It answers every GET under its prefix with a fixed server model, the size of the
service's, with no login and no Hub call: what the stack (proxy, Tornado, Python)
costs at the least. It imports ``jupyterhub.services.auth`` as any HubOAuth
service must, so its memory is the floor of such a service's too.
"""

import asyncio
import json
import os
import signal
from urllib.parse import urlparse

import jupyterhub.services.auth  # noqa: F401 (what every HubOAuth service loads)
from tornado import web

#: a server model as the service answers it (same keys, similar sizes)
ANSWER = json.dumps(
    {
        "name": "bench-python",
        "workspace": "bench",
        "image": "python",
        "resource_class": None,
        "display_name": "bench/python",
        "ready": True,
        "pending": None,
        "stopped": False,
        "url": "/user/u00/bench-python/",
        "progress_url": "/services/notebooks/bench/python/-/progress",
        "logs_url": "/services/notebooks/bench/python/-/logs",
        "hub_progress_url": "/hub/api/users/u00/servers/bench-python/progress",
        "started": "2026-12-01T00:00:00.000000Z",
        "last_activity": "2026-12-01T00:00:00.000000Z",
        "status_url": "/services/notebooks/bench/python",
        "status": {"kubernetes": "off", "message": "Diagnostics are off.", "hint": None, "details": {}},
    }
)


class Status(web.RequestHandler):
    def get(self, path: str) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(ANSWER)


async def main() -> None:
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    prefix = os.environ["JUPYTERHUB_SERVICE_PREFIX"]
    web.Application([(prefix + "(.*)", Status)]).listen(url.port, url.hostname)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
