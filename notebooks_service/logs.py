"""A notebook server's output, for ``<prefix>/<workspace>/<image>/-/logs``.

Two sources: Kubernetes (the notebook container's log, through ``kube.py``)
and a local folder (the demo's spawner writes each server's output to
``<folder>/<user>/<server>.log``). Both give lines, the last ``tail`` of them,
or follow new ones as they come.

A user controls what their server prints, so everything here is bounded in
bytes: an answer reads at most ``max_bytes`` of the log, a line longer than
``max_line_bytes`` is cut (and says so), and a follower holds at most one cut
line. Files are read from their end, off the event loop.
"""

import asyncio
import contextlib
import os
from collections import Counter
from collections.abc import AsyncIterator
from typing import BinaryIO

from .errors import NotFound, ServiceUnavailable, TooManyRequests

#: what one answer reads of a log, and where a line is cut (NotebooksService.max_log_bytes, max_log_line_bytes)
DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_MAX_LINE_BYTES = 16 * 1024
#: how a cut line ends: what was left out, in bytes
CUT_MARK = " … [line cut: {} more bytes]"
#: how a line ends whose start lies before what was read
EARLIER_MARK = "[… the start of this line is earlier in the log] "
_BLOCK = 64 * 1024


class LineSplitter:
    """Splits a byte stream into lines of at most ``max_line_bytes`` (longer ones are cut and marked),
    holding at most one cut line, however long the lines it is fed."""

    def __init__(self, max_line_bytes: int):
        self.max_line_bytes = max_line_bytes
        self._partial = bytearray()
        self._dropped = 0

    def feed(self, chunk: bytes) -> list[str]:
        """The lines that ``chunk`` completes."""
        lines = []
        start = 0
        while True:
            newline = chunk.find(b"\n", start)
            piece = chunk[start:] if newline < 0 else chunk[start:newline]
            room = max(0, self.max_line_bytes - len(self._partial))
            self._partial += piece[:room]
            self._dropped += max(0, len(piece) - room)
            if newline < 0:
                return lines
            lines.append(self._take())
            start = newline + 1

    def flush(self) -> str | None:
        """The last line if it had no newline, else None."""
        return self._take() if self._partial or self._dropped else None

    def _take(self) -> str:
        line = self._partial.decode(errors="replace").rstrip("\r")
        if self._dropped:
            line += CUT_MARK.format(self._dropped)
        self._partial, self._dropped = bytearray(), 0
        return line


def split_lines(data: bytes, max_line_bytes: int, *, cut_at_start: bool = False) -> list[str]:
    """All the lines of ``data``, cut as LineSplitter cuts them; the first marked if it began earlier."""
    splitter = LineSplitter(max_line_bytes)
    lines = splitter.feed(data)
    last = splitter.flush()
    if last is not None:
        lines.append(last)
    if cut_at_start and lines:
        lines[0] = EARLIER_MARK + lines[0]
    return lines


def read_tail(f: BinaryIO, tail: int, max_bytes: int) -> tuple[bytes, bool, int]:
    """The end of an open file holding its last ``tail`` lines, at most ``max_bytes`` of it (blocking:
    run it in a thread). Returns the bytes, whether they start inside a line, and the file's size then."""
    end = f.seek(0, os.SEEK_END)
    if tail <= 0:
        return b"", False, end
    blocks: list[bytes] = []
    position, newlines = end, 0
    while position > 0 and end - position < max_bytes:
        step = min(_BLOCK, position, max_bytes - (end - position))
        position -= step
        f.seek(position)
        block = f.read(step)
        blocks.append(block)
        # a newline at the very end closes the last line: it separates nothing
        newlines += block.count(b"\n") - (1 if position + step == end and block.endswith(b"\n") else 0)
        if newlines >= tail:
            break
    data = b"".join(reversed(blocks))
    starts_inside = position > 0
    if starts_inside:
        f.seek(position - 1)
        starts_inside = f.read(1) != b"\n"
    return data, starts_inside, end


def last_lines(data: bytes, starts_inside: bool, tail: int, max_line_bytes: int) -> list[str]:
    """The last ``tail`` lines of what read_tail read."""
    lines = split_lines(data, max_line_bytes, cut_at_start=starts_inside)
    return lines[-tail:] if tail else []


def local_log_path(folder: str, user: str, server_name: str, *, previous: bool = False) -> str:
    """Where a server's output goes: one file per run, the run before it as ``.previous.log``."""
    # user and server names are Hub names: no '/' (named servers are slugs; usernames are checked here)
    if "/" in user or user in (".", ".."):
        raise ValueError(f"unsafe user name for a log path: {user!r}")
    return os.path.join(folder, user, f"{server_name}{'.previous' if previous else ''}.log")


def start_local_log(folder: str, user: str, server_name: str):
    """A new output file for a run of the server (the last run's becomes the previous); open for appending."""
    path = local_log_path(folder, user, server_name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        os.replace(path, local_log_path(folder, user, server_name, previous=True))
    return open(path, "ab")  # noqa: SIM115 (the caller hands it to the server process)


class LocalLogs:
    """Output files in a folder, as the demo's spawner writes them."""

    def __init__(
        self,
        folder: str,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        poll: float = 0.5,
    ):
        self.folder = folder
        self.max_bytes = max_bytes
        self.max_line_bytes = max_line_bytes
        self.poll = poll

    def _path(self, user: str, server_name: str, previous: bool = False) -> str:
        path = local_log_path(self.folder, user, server_name, previous=previous)
        if not os.path.exists(path):
            if previous:
                raise NotFound("There is no previous run of this server.")
            raise NotFound("This server has written no output yet.")
        return path

    async def lines(
        self, workspace: str, user: str, server_name: str, *, tail: int, previous: bool = False
    ) -> list[str]:
        with open(self._path(user, server_name, previous), "rb") as f:
            data, starts_inside, _ = await asyncio.to_thread(read_tail, f, tail, self.max_bytes)
        return last_lines(data, starts_inside, tail, self.max_line_bytes)

    async def follow(self, workspace: str, user: str, server_name: str, *, tail: int) -> AsyncIterator[str]:
        """The last lines, then each new one; ends when the server's next run starts a new file."""
        path = self._path(user, server_name)
        with open(path, "rb") as f:  # one open file: its tail, then what it gains (a new run is a new file)
            data, starts_inside, end = await asyncio.to_thread(read_tail, f, tail, self.max_bytes)
            for line in last_lines(data, starts_inside, tail, self.max_line_bytes):
                yield line
            f.seek(end)
            splitter = LineSplitter(self.max_line_bytes)
            while True:
                chunk = await asyncio.to_thread(f.read, _BLOCK)
                if chunk:
                    for line in splitter.feed(chunk):
                        yield line
                    continue
                if _replaced(path, f):  # a new run, a new file: this run's output is over
                    last = splitter.flush()
                    if last is not None:
                        yield last
                    return
                await asyncio.sleep(self.poll)


def _replaced(path: str, f) -> bool:
    """Whether ``path`` no longer names the open file ``f`` (rotated or removed)."""
    try:
        return os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        return True


class FollowSlots:
    """The server logs followed now, by everyone and by each user: each holds a stream to
    Kubernetes or an open file, so both counts are capped (NotebooksService.max_log_follows*)."""

    def __init__(self, most: int, most_per_user: int):
        self.most = most
        self.most_per_user = most_per_user
        self._by_user: Counter[str] = Counter()

    def __len__(self) -> int:
        return sum(self._by_user.values())

    @contextlib.contextmanager
    def taken(self, user: str):
        """Hold one slot for ``user`` while the block runs: 503 when the process is full, 429 when the user is."""
        if len(self) >= self.most:
            raise ServiceUnavailable("The service follows as many server logs as it can; try again in a moment.")
        if self._by_user[user] >= self.most_per_user:
            raise TooManyRequests(
                f"You are following {self._by_user[user]} server logs at once, the most allowed: "
                "close one and try again."
            )
        self._by_user[user] += 1
        try:
            yield
        finally:
            self._by_user[user] -= 1
            if self._by_user[user] <= 0:
                del self._by_user[user]
