"""`make bench`'s scale figure (S): what one request costs the Hub as a workspace grows.

For N = 20, 200 and 2,000 members of one workspace ("bench"), 10% of them running a server,
a workspace quota set and the workspace's group kept (the demo's settings), on a Hub of its own
for each N: the Hub calls and the bytes the Hub sends back (counted by the metering proxy between
the service and the Hub) for each operation, as a user's request pays them once the service's
short caches have expired; one membership sweep of the reconciler; and the service's and the
Hub's memory. A request of one user must not cost more as other users are added: the targets
are at N = 2,000. docs/benchmarks.rst has the method and the before/after table.
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import time

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from notebooks_service.demo.app import hub_api  # noqa: E402

from bench_hub import bench_hub, rss_mb, service_pid, user_names  # noqa: E402

SIZES = (20, 200, 2000)
RUNNING_SHARE = 0.1
SERVER = "bench-python"
REPEATS = 3
#: the longest the service keeps what it read (HubClient.usage_cache_seconds), and a margin
CACHE_EXPIRY = 3.5
#: at N = 2,000: per request, at most
MOST_CALLS, MOST_KB = 5, 20

SERVICE_CONFIG = """
c.NotebooksService.workspace_quotas = {"bench": {"servers": 100000, "cpu": 100000}}
c.Sharing.manage_workspace_groups = True
c.Reconciler.membership_check_interval = 3600  # its sweep is measured on its own, below
"""


class Scale:
    def __init__(self, n: int):
        self.n = n
        self.users = user_names(n)
        self.running = self.users[: max(2, int(n * RUNNING_SHARE))]
        self.hub, self.meter, self.admin_token = bench_hub(n, SERVICE_CONFIG)
        self.http = AsyncHTTPClient(force_instance=True, max_clients=64)
        self.tokens: dict[str, str] = {}
        self.rows: list[dict] = []

    def admin(self, method: str, path: str, body=None):
        status, answer = hub_api(self.hub.url, self.admin_token, method, path, body, timeout=300)
        if status >= 400:
            raise RuntimeError(f"the Hub answered {status} to {method} {path}: {answer}")
        return answer

    async def call(self, user: str, method: str, path: str, body=None, html=False) -> tuple[int, bytes]:
        headers = {"Authorization": f"token {self.tokens[user]}", "Accept": "text/html" if html else "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = HTTPRequest(
            self.hub.service_url + path,
            method=method,
            headers=headers,
            body=None if body is None else json.dumps(body),
            request_timeout=300,
            follow_redirects=False,
            allow_nonstandard_methods=True,
        )
        response = await self.http.fetch(request, raise_error=False)
        return response.code, response.body or b""

    async def set_up(self) -> None:
        hub_api(self.hub.url, self.admin_token, "POST", "/users", {"usernames": self.users})  # 409: made at start
        for user in ("u00", "u01", self.users[-1]):
            self.tokens[user] = self.admin("POST", f"/users/{user}/tokens", {"note": "scale"})["token"]
        options = {"workspace": "bench", "image": "python"}
        major = int(self.admin("GET", "/")["version"].split(".")[0])
        body = {"user_options": options} if major >= 6 else options
        for user in self.running:
            self.admin("POST", f"/users/{user}/servers/{SERVER}", body)
        deadline = time.monotonic() + 600
        while True:
            ready = sum(bool(s.get("ready")) for u in self.active_users() for s in (u.get("servers") or {}).values())
            if ready >= len(self.running):
                break
            assert time.monotonic() < deadline, f"{ready} of {len(self.running)} servers ready"
            await asyncio.sleep(1)
        # u00 shares with u01 directly and with the whole workspace (the workspace's group, kept)
        code, answer = await self.call("u00", "POST", "bench/python/-/shares", {"users": ["u01"]})
        assert code == 200, answer

    def active_users(self) -> list[dict]:
        found, offset = [], 0
        while True:
            page = self.admin("GET", f"/users?state=active&offset={offset}&limit=200")
            items = page["items"] if isinstance(page, dict) else page
            found += items
            if not isinstance(page, dict) or not (page.get("_pagination") or {}).get("next"):
                return found
            offset = page["_pagination"]["next"]["offset"]

    async def cost(self, operation, undo=None) -> tuple[int, float]:
        """Median Hub calls and KB of ``operation`` (a coroutine function), each once the caches expired."""
        calls, kbytes = [], []
        for _ in range(REPEATS):
            await asyncio.sleep(CACHE_EXPIRY)  # what a request pays, not what a cache saved it
            before_calls, before_bytes = self.meter.total(), self.meter.bytes_answered
            await operation()
            calls.append(self.meter.total() - before_calls)
            kbytes.append((self.meter.bytes_answered - before_bytes) / 1024)
            if undo:
                await undo()
        return int(statistics.median(calls)), statistics.median(kbytes)

    async def expect(self, code_wanted, *call_args, **call_kwargs):
        code, answer = await self.call(*call_args, **call_kwargs)
        assert code in code_wanted, (call_args, code, answer[:300])

    async def measure(self) -> None:
        last = self.users[-1]
        share_all = {"workspace": True}

        async def stop_last():
            self.admin("DELETE", f"/users/{last}/servers/{SERVER}", {"remove": True})
            while SERVER in (self.admin("GET", f"/users/{last}").get("servers") or {}):
                await asyncio.sleep(0.2)

        operations = {
            "list page (HTML)": (lambda: self.expect((200,), "u00", "GET", "", html=True), None),
            "list JSON (a page's poll)": (lambda: self.expect((200,), "u00", "GET", ""), None),
            "GET <prefix>/shared": (lambda: self.expect((200,), "u01", "GET", "shared"), None),
            "GET <prefix>/workspaces": (lambda: self.expect((200,), "u00", "GET", "workspaces"), None),
            "a start under the workspace quota": (
                lambda: self.expect((201, 202), last, "POST", "bench/python"),
                stop_last,
            ),
            "share with the whole workspace": (
                lambda: self.expect((200,), "u00", "POST", "bench/python/-/shares", share_all),
                lambda: self.expect((200,), "u00", "DELETE", "bench/python/-/shares", share_all),
            ),
        }
        for what, (operation, undo) in operations.items():
            calls, kb = await self.cost(operation, undo)
            if what.startswith(("list page", "GET <prefix>/shared", "a start")):  # the three
                self.record(what, calls, kb, most_calls=MOST_CALLS, most_kb=MOST_KB)
            elif what.startswith("share"):  # reads the group's names (bytes), in a few calls
                self.record(what, calls, kb, most_calls=10)
            else:
                self.record(what, calls, kb)
        calls, kb = await self.sweep()
        bound = 2 * (1 + len(self.running)) + 10
        self.record("one reconciler sweep", calls, kb, most_calls=bound)
        self.rows.append(
            {
                "figure": "S",
                "n": self.n,
                "what": "RSS, service / Hub (MB)",
                "service_mb": round(rss_mb(service_pid(self.hub)), 1),
                "hub_mb": round(rss_mb(self.hub.process.pid), 1),
            }
        )
        print(f"  S    N={self.n:<5} RSS: service {self.rows[-1]['service_mb']} MB, Hub {self.rows[-1]['hub_mb']} MB")

    async def sweep(self) -> tuple[int, float]:
        """One check_once of a reconciler configured as the deployment's, through the meter."""
        from traitlets.config import Config

        from notebooks_service.hub import HubClient
        from notebooks_service.reconciler import Reconciler
        from notebooks_service.sharing import Sharing
        from notebooks_service.workspaces import StaticWorkspacePolicy

        hub = HubClient(api_url=self.meter.url, api_token=self.admin_token)
        policy = StaticWorkspacePolicy(members=dict.fromkeys(self.users, ["bench"]))
        config = Config({"Sharing": {"manage_workspace_groups": True}})
        reconciler = Reconciler(hub=hub, sharing=Sharing(hub=hub, policy=policy, config=config))
        try:
            # a workspace group to keep: u00's server shared with the whole workspace
            await self.expect((200,), "u00", "POST", "bench/python/-/shares", {"workspace": True})
            return await self.cost(reconciler.check_once)
        finally:
            hub.close()

    def record(self, what: str, calls: int, kb: float, most_calls: int | None = None, most_kb: float | None = None):
        """A row; its targets (calls, and KB) hold at the largest N only."""
        target, met = "", True
        if most_calls is not None and self.n == max(SIZES):
            target = f"<= {most_calls}" + (f" / {most_kb:g} KB" if most_kb else "")
            met = calls <= most_calls and (most_kb is None or kb <= most_kb)
        row = {
            "figure": "S",
            "n": self.n,
            "what": what,
            "calls": calls,
            "kb": round(kb, 1),
            "target": target,
            "met": met,
        }
        self.rows.append(row)
        value = f"{calls} / {kb:.1f} KB"
        print(
            f"  S    N={self.n:<5} {what:44} {value:>18}  {target:>14} {'' if not target else 'ok' if met else 'NOT MET'}",
            flush=True,
        )

    async def run(self) -> list[dict]:
        self.hub.start()
        try:
            self.hub.wait_ready(timeout=180)
            await self.set_up()
            await self.measure()
        finally:
            self.http.close()
            self.hub.stop()
            self.meter.close()
        return self.rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", nargs="*", type=int, default=list(SIZES))
    parser.add_argument("--json", default=os.path.join(HERE, "latest-scale.json"))
    args = parser.parse_args()
    print("\nnotebooks-service at scale: Hub calls / KB the Hub sent, per request (median of 3)\n", flush=True)
    rows = []
    for n in args.sizes:
        rows += asyncio.run(Scale(n).run())
    with open(args.json, "w") as f:
        json.dump({"results": rows}, f, indent=2)
    print(f"\nwritten to {args.json}")
    if not all(row.get("met", True) for row in rows):
        print("some targets are not met: see docs/benchmarks.rst", flush=True)


if __name__ == "__main__":
    main()
