"""The service as a JSON client calls it: through the Hub's proxy, with a Hub token."""

import asyncio
import json
import time

from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse

from notebooks_service.demo.app import DemoHub


class ServiceClient:
    """Calls the service through the Hub's proxy as a JSON client with a Hub token."""

    def __init__(self, hub: DemoHub, token: str | None):
        self.hub = hub
        self.token = token
        self.extra_headers: dict[str, str] = {}
        self.http = AsyncHTTPClient(force_instance=True)

    async def request(self, method: str, path: str, *, headers=None, body=None, **kw) -> HTTPResponse:
        all_headers = {"Accept": "application/json"}
        if self.token:
            all_headers["Authorization"] = f"token {self.token}"
        all_headers.update(self.extra_headers)
        all_headers.update(headers or {})
        url = path if path.startswith("http") else self.hub.service_url + path.lstrip("/")
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        kw.setdefault("request_timeout", 60)
        request = HTTPRequest(
            url,
            method=method,
            headers=all_headers,
            body=body,
            follow_redirects=False,
            allow_nonstandard_methods=True,
            **kw,
        )
        return await self.http.fetch(request, raise_error=False)

    async def json(self, method: str, path: str, **kw) -> tuple[int, object]:
        response = await self.request(method, path, **kw)
        return response.code, json.loads(response.body) if response.body else None

    async def wait_ready(self, path: str, timeout: float = 60) -> dict:
        """Poll the server model until it is ready (a 201/202 does not mean ready)."""
        deadline = time.monotonic() + timeout
        while True:
            code, model = await self.json("GET", path)
            if code == 200 and model["ready"]:
                return model
            if time.monotonic() > deadline:
                raise AssertionError(f"{path} not ready after {timeout}s: {code} {model}")
            await asyncio.sleep(0.2)

    def close(self):
        self.http.close()
