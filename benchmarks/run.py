"""`make bench`: the service measured side by side with the Hub's own API, on one real Hub.

Every figure is a ratio between two things measured in the same run, interleaved,
so that the machine's speed cancels out. See docs/benchmarks.rst for the method.
"""

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from notebooks_service.demo.app import DemoHub, hub_api  # noqa: E402
from notebooks_service.logs import local_log_path  # noqa: E402

from bench_hub import N_USERS, bench_hub, rss_mb, service_pid  # noqa: E402
from conftest import log_in  # noqa: E402
from hub_meter import HubMeter  # noqa: E402

SERVER = "bench-python"  # the named server of (workspace "bench", image "python")
_EVENT = re.compile(rb"data: (\{.*?\})\n\n")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Bench:
    def __init__(self, hub: DemoHub, meter: HubMeter, admin_token: str, quick: bool, only=None, profile=None):
        self.only, self.profile = only, profile
        self.hub, self.meter, self.admin_token = hub, meter, admin_token
        self.scale = 0.2 if quick else 1.0
        self.http = AsyncHTTPClient(force_instance=True, max_clients=256)
        self.tokens: dict[str, str] = {}
        self.results: list[dict] = []

    def n(self, count: int) -> int:
        return max(10, int(count * self.scale))

    # -- plumbing -------------------------------------------------------------

    def admin(self, method: str, path: str, body=None):
        status, answer = hub_api(self.hub.url, self.admin_token, method, path, body, timeout=60)
        if status >= 400:
            raise RuntimeError(f"the Hub answered {status} to {method} {path}: {answer}")
        return answer

    async def call(self, user: str, method: str, url: str, body=None) -> tuple[int, float, bytes]:
        headers = {"Authorization": f"token {self.tokens[user]}", "Accept": "application/json"}
        request = HTTPRequest(
            url,
            method=method,
            headers=headers,
            body=None if body is None and method != "POST" else json.dumps(body or {}),
            request_timeout=120,
            follow_redirects=False,
        )
        start = time.perf_counter()
        response = await self.http.fetch(request, raise_error=False)
        return response.code, time.perf_counter() - start, response.body or b""

    def service(self, path: str = "") -> str:
        return self.hub.service_url + path

    def hub_api(self, path: str) -> str:
        return f"{self.hub.url}/hub/api{path}"

    def record(self, figure: str, what: str, value, target: str, met: bool, **details) -> None:
        row = {"figure": figure, "what": what, "value": value, "target": target, "met": met, **details}
        self.results.append(row)
        print(f"  {figure:4} {what:58} {value!s:>16}  target {target:10} {'ok' if met else 'NOT MET'}", flush=True)

    def set_spawn_delay(self, seconds: float) -> None:
        with open(os.path.join(self.hub.run_dir, "spawn-delay"), "w") as f:
            f.write(str(seconds))

    async def stop_all(self, users) -> None:
        for user in users:
            self.admin("DELETE", f"/users/{user}/servers/{SERVER}", {"remove": True}) if self._has_server(
                user
            ) else None
        deadline = time.monotonic() + 60
        while any(self._has_server(u) for u in users):
            assert time.monotonic() < deadline, "servers did not stop"
            await asyncio.sleep(0.2)

    def _has_server(self, user: str) -> bool:
        return SERVER in (self.admin("GET", f"/users/{user}").get("servers") or {})

    async def launch(self, user: str, via: str) -> int:
        """Start the user's bench server via the service or straight at the Hub; return errors seen."""
        if via == "service":
            code, _, _ = await self.call(user, "POST", self.service("bench/python"))
        else:
            options = {"workspace": "bench", "image": "python"}
            body = {"user_options": options} if self.hub_major >= 6 else options
            code, _, _ = await self.call(user, "POST", self.hub_api(f"/users/{user}/servers/{SERVER}"), body)
        errors = 0 if code in (201, 202) else 1
        deadline = time.monotonic() + 120
        while True:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{user}'s server not ready after 120 s via {via} (last answer {code})")
            if via == "service":
                code, _, body = await self.call(user, "GET", self.service("bench/python"))
                ready = code == 200 and json.loads(body)["ready"]
            else:
                code, _, body = await self.call(user, "GET", self.hub_api(f"/users/{user}"))
                ready = code == 200 and (json.loads(body).get("servers") or {}).get(SERVER, {}).get("ready")
            errors += code >= 500
            if ready:
                return errors
            await asyncio.sleep(0.2)

    async def others_p99(self, users: list[str], count: int) -> float:
        """The p99 of ``count`` list requests by ``users``, four at a time (a failed one counts as endless)."""
        latencies, queue = [], list(range(count))

        async def worker():
            while queue:
                user = users[queue.pop() % len(users)]
                code, seconds, _ = await self.call(user, "GET", self.service(""))
                latencies.append(seconds if code == 200 else float("inf"))

        await asyncio.gather(*[worker() for _ in range(4)])
        return percentile(latencies, 99)

    # -- figures --------------------------------------------------------------

    async def p1_latency(self) -> None:
        user = "u00"
        await self.launch(user, "service")
        service, hub, floor = [], [], []
        for _ in range(self.n(300)):  # interleaved: the same moment for all three
            service.append((await self.call(user, "GET", self.service("bench/python")))[1])
            hub.append((await self.call(user, "GET", self.hub_api(f"/users/{user}")))[1])
            floor.append((await self.call(user, "GET", f"{self.hub.url}/services/floor/bench/python"))[1])
        against = (
            ("P1", "status JSON p{p} at c=1, service / Hub's GET /users/<name>", hub, "hub_ms", 1.0),
            ("P1f", "  ... p{p}, service / the floor (bare Tornado, same proxy)", floor, "floor_ms", 2.0),
        )
        for figure, what, other, other_key, most in against:
            for p in (50, 95):
                ratio = percentile(service, p) / percentile(other, p)
                self.record(
                    figure,
                    what.format(p=p),
                    f"{ratio:.2f}",
                    f"<= {most}",
                    ratio <= most,
                    service_ms=round(percentile(service, p) * 1000, 2),
                    **{other_key: round(percentile(other, p) * 1000, 2)},
                )

    async def throughput(self, url_of, count: int, concurrency: int = 32) -> float:
        users = [f"u{i:02d}" for i in range(10)]
        queue = list(range(count))

        async def worker(w: int):
            while queue:
                i = queue.pop()
                user = users[i % len(users)]
                code, _, _ = await self.call(user, "GET", url_of(user))
                self.errors += code >= 500

        start = time.perf_counter()
        await asyncio.gather(*[worker(w) for w in range(concurrency)])
        return count / (time.perf_counter() - start)

    async def p1b_throughput(self) -> None:
        # every user polls a running server (a stopped one is a 404 that asks the Hub why)
        await asyncio.gather(*[self.launch(f"u{i:02d}", "service") for i in range(10)])
        self.errors = 0
        service, hub = [], []
        for _ in range(2):  # alternate blocks, so drift hits both
            service.append(await self.throughput(lambda u: self.service("bench/python"), self.n(1000)))
            hub.append(await self.throughput(lambda u: self.hub_api(f"/users/{u}"), self.n(1000)))
        ratio = sum(service) / sum(hub)
        self.record(
            "P1b",
            "throughput at c=32, service / Hub (req/s)",
            f"{ratio:.2f}",
            ">= 1.5",
            ratio >= 1.5 and self.errors == 0,
            service_rps=round(sum(service) / 2),
            hub_rps=round(sum(hub) / 2),
            errors_5xx=self.errors,
        )

    async def p2_crowd_launch(self) -> None:
        users = [f"u{i:02d}" for i in range(50)]
        self.set_spawn_delay(1)
        times = {"service": [], "hub": []}
        errors = 0
        # everyone has opened the page once: the figure is about launching, not a first login
        await asyncio.gather(*[self.call(u, "GET", self.service()) for u in users])
        await asyncio.gather(*[self.call(u, "GET", self.hub_api(f"/users/{u}")) for u in users])
        for via in ("service", "hub") * 5:  # interleaved rounds; the medians are compared
            await self.stop_all(users)
            start = time.perf_counter()
            errors += sum(await asyncio.gather(*[self.launch(u, via) for u in users]))
            times[via].append(time.perf_counter() - start)
        await self.stop_all(users)
        ratio = statistics.median(times["service"]) / statistics.median(times["hub"])
        self.record(
            "P2",
            "50 users launching at once: time to all ready (median), service / Hub",
            f"{ratio:.2f}",
            "<= 1.1",
            ratio <= 1.1 and errors == 0,
            service_s=round(statistics.median(times["service"]), 2),
            hub_s=round(statistics.median(times["hub"]), 2),
            rounds_s={via: [round(t, 2) for t in ts] for via, ts in times.items()},
            errors_5xx=errors,
        )

    async def p3_hub_calls(self) -> None:
        users = [f"u{i:02d}" for i in range(10)]
        self.set_spawn_delay(0)
        await asyncio.gather(*[self.launch(u, "service") for u in users])
        seconds = 5 * self.scale if self.scale < 1 else 5
        before = self.meter.total()
        sent = 0

        async def poller(user: str):
            nonlocal sent
            end = time.monotonic() + seconds
            i = 0
            while time.monotonic() < end:
                path = "bench/python" if i % 2 else ""
                await self.call(user, "GET", self.service(path))
                sent += 1
                i += 1
                await asyncio.sleep(0.05)  # 20 requests a second per user

        await asyncio.gather(*[poller(u) for u in users])
        ratio = (self.meter.total() - before) / sent
        self.record(
            "P3",
            "Hub API calls per request, 10 users polling at 20/s",
            f"{ratio:.3f}",
            "<= 0.25",
            ratio <= 0.25,
            requests=sent,
            hub_calls=self.meter.total() - before,
        )
        await self.stop_all(users)

    async def w_watchers(self) -> None:
        slow = [f"u{i:02d}" for i in range(10, 30)]
        others = [f"u{i:02d}" for i in range(30, 50)]
        self.set_spawn_delay(300)
        for user in slow:
            await self.call(user, "POST", self.service("bench/python"))
        watchers = []
        for i in range(200):
            user = slow[i % len(slow)]
            reader, writer = await asyncio.open_connection(self.hub.ip, self.hub.port)
            writer.write(
                f"GET /services/notebooks/bench/python/-/progress HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: token {self.tokens[user]}\r\nAccept: text/event-stream\r\n\r\n".encode()
            )
            watchers.append((reader, writer))
        held = 0
        for reader, _ in watchers:  # every watcher has its first event
            buffer = b""
            while not _EVENT.search(buffer):
                buffer += await asyncio.wait_for(reader.read(65536), 60)
            held += b" 200 " in buffer.split(b"\r\n", 1)[0]
        p99 = await self.others_p99(others, self.n(400))
        upstreams = self.meter.open_streams
        self.record(
            "W",
            "200 watchers on 20 pending servers: others' p99 (s)",
            f"{p99:.3f}",
            "<= 1 s",
            p99 <= 1 and held == 200,
            watchers_served=held,
        )
        self.record("W", "  ... upstream Hub streams held", upstreams, "20", upstreams == 20)
        for _, writer in watchers:
            writer.close()
        self.set_spawn_delay(0)
        await self.stop_all(slow)

    async def l_load(self) -> None:
        pid = service_pid(self.hub)
        users = [f"u{i:02d}" for i in range(50)]
        await asyncio.gather(*[self.launch(u, "service") for u in users[:10]])
        paths = ["", "bench/python", "user", "bench/minimal", "Bad_Name/python", "other/python", "bench/nope"]
        codes: dict[int, int] = {}
        fds_before = len(os.listdir(f"/proc/{pid}/fd"))
        rss = {}
        total = self.n(10000)
        queue = list(range(total))
        done = 0

        async def worker():
            nonlocal done
            while queue:
                i = queue.pop()
                code, _, _ = await self.call(users[i % 50], "GET", self.service(paths[i % len(paths)]))
                codes[code] = codes.get(code, 0) + 1
                done += 1
                if done in (total // 10, total):
                    rss[done] = rss_mb(pid)

        await asyncio.gather(*[worker() for _ in range(64)])
        # idle keep-alive connections close a while after the burst (the proxy's to the service: Node's
        # agent, 5 s; HubAuth's to the Hub on JupyterHub 6: aiohttp's pool, 15 s): count descriptors
        # once they are back, or at a deadline; what is left then is the service's
        deadline = time.monotonic() + 30
        while (fds_after := len(os.listdir(f"/proc/{pid}/fd"))) > fds_before + 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        errors = sum(n for code, n in codes.items() if code >= 500)
        self.record(
            "L",
            f"{total} mixed requests at c=64: 5xx",
            errors,
            "0",
            errors == 0,
            codes={str(k): v for k, v in sorted(codes.items())},
        )
        self.record(
            "L",
            "  ... open file descriptors, before -> after",
            f"{fds_before} -> {fds_after}",
            "no growth",
            fds_after <= fds_before + 2,
        )
        first, last = rss[total // 10], rss[total]
        # the floor takes the same count of requests at the same concurrency (its one fixed answer)
        floor_pid = service_pid(self.hub, b"floor.py")
        queue.extend(range(total))
        floor_path = f"{self.hub.url}/services/floor/"

        async def floor_worker():
            while queue:
                i = queue.pop()
                await self.call(users[i % 50], "GET", floor_path + paths[i % len(paths)])

        await asyncio.gather(*[floor_worker() for _ in range(64)])
        floor = rss_mb(floor_pid)
        # a browser login loads what JSON clients never need (the OAuth state's encryption)
        await asyncio.to_thread(log_in, self.hub, "u01")
        after_login = rss_mb(pid)
        self.record(
            "P4",
            "service RSS after the mixed requests / the floor's after the same",
            f"{last / floor:.2f}",
            "<= 1.1",
            last / floor <= 1.1,
            service_mb=round(last, 1),
            floor_mb=round(floor, 1),
            service_after_a_browser_login_mb=round(after_login, 1),
        )
        self.record(
            "P4",
            f"  ... RSS growth from {total // 10} to {total} requests (MB)",
            f"{last - first:.1f}",
            "<= 5 MB",
            last - first <= 5,
        )
        await self.stop_all(users[:10])

    async def log_flood(self) -> None:
        """One user's server printed a 150 MB line: 8 readers and 5 followers of that log at once,
        while others list their servers. The service's memory growth, and the others' p99, side
        by side with the same requests before the flood."""
        path = local_log_path(os.path.join(self.hub.run_dir, "logs"), "u00", SERVER)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(b"start\n")
            for _ in range(150):
                f.write(b"x" * (1024 * 1024))  # one line, no end: what a runaway print makes
        pid = service_pid(self.hub)
        others = [f"u{i:02d}" for i in range(30, 50)]
        quiet = await self.others_p99(others, self.n(400))
        before, peak = rss_mb(pid), rss_mb(pid)
        flooding = True

        async def sample():
            nonlocal peak
            while flooding:
                peak = max(peak, rss_mb(pid))
                await asyncio.sleep(0.02)

        async def reader():
            for _ in range(5):
                await self.call("u00", "GET", self.service("bench/python/-/logs?tail=5"))

        followers = []
        for _ in range(5):
            reader_, writer = await asyncio.open_connection(self.hub.ip, self.hub.port)
            writer.write(
                f"GET /services/notebooks/bench/python/-/logs HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: token {self.tokens['u00']}\r\nAccept: text/event-stream\r\n\r\n".encode()
            )
            followers.append((reader_, writer))
        sampler = asyncio.ensure_future(sample())
        readers = asyncio.gather(*[reader() for _ in range(8)])
        flooded = await self.others_p99(others, self.n(400))
        await readers
        for reader_, _ in followers:  # each follower is sent its (cut) line
            buffer = b""
            while b"data: " not in buffer:
                buffer += await asyncio.wait_for(reader_.read(65536), 60)
        flooding = False
        await sampler
        for _, writer in followers:
            writer.close()
        os.remove(path)
        growth = peak - before
        self.record(
            "LOG",
            "a 150 MB line read by 8 and followed by 5: RSS growth (MB)",
            f"{growth:.1f}",
            "<= 40 MB",
            growth <= 40,
            rss_before_mb=round(before, 1),
            rss_peak_mb=round(peak, 1),
        )
        self.record(
            "LOG",
            "  ... others' p99 meanwhile (s); before the flood",
            f"{flooded:.3f}; {quiet:.3f}",
            "<= 1 s",
            flooded <= 1,
        )

    async def run(self) -> None:
        self.hub_major = int(self.admin("GET", "/")["version"].split(".")[0])
        for user in [f"u{i:02d}" for i in range(N_USERS)]:
            self.tokens[user] = self.admin("POST", f"/users/{user}/tokens", {"note": "bench"})["token"]
        print(f"\nnotebooks-service benchmarks (JupyterHub {self.admin('GET', '/')['version']})\n", flush=True)
        figures = {
            "P1": self.p1_latency,
            "P1b": self.p1b_throughput,
            "P2": self.p2_crowd_launch,
            "P3": self.p3_hub_calls,
            "W": self.w_watchers,
            "L": self.l_load,
            "LOG": self.log_flood,
        }
        profiler = None
        if self.profile:  # py-spy samples the service process while the figures run
            profiler = subprocess.Popen(
                ["py-spy", "record", "-p", str(service_pid(self.hub)), "-o", self.profile, "--nonblocking"]
                + (["--format", "raw"] if self.profile.endswith(".txt") else []),  # collapsed stacks
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        for name, figure in figures.items():
            if not self.only or name in self.only:
                await figure()
        if profiler:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            profiler.wait(60)
            print(f"profile of the service written to {self.profile}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a fifth of the requests (a smoke run)")
    parser.add_argument("--only", nargs="*", help="run only these figures, e.g. --only P1b P2")
    parser.add_argument(
        "--profile",
        help="record a py-spy profile of the service while the figures run: an SVG flame graph, or collapsed stacks for .txt",
    )
    parser.add_argument("--json", default=os.path.join(HERE, "latest.json"), help="where to write the results")
    args = parser.parse_args()

    hub, meter, admin_token = bench_hub()
    hub.start()
    try:
        hub.wait_ready(timeout=120)
        bench = Bench(hub, meter, admin_token, args.quick, args.only, args.profile)
        asyncio.run(bench.run())
    finally:
        hub.stop()
        meter.close()
    with open(args.json, "w") as f:
        json.dump({"quick": args.quick, "results": bench.results}, f, indent=2)
    print(f"\nwritten to {args.json}")
    if not all(row["met"] for row in bench.results):
        print("some targets are not met: see docs/benchmarks.rst", flush=True)


if __name__ == "__main__":
    main()
