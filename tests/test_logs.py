"""logs.py: a server's output read from its end, bounded in bytes, lines cut, followers that end."""

import asyncio
import os

import pytest

from notebooks_service.logs import (
    CUT_MARK,
    EARLIER_MARK,
    LineSplitter,
    LocalLogs,
    last_lines,
    local_log_path,
    read_tail,
    start_local_log,
)

MiB = 1024 * 1024


def write_log(path, *parts: bytes) -> None:
    with open(path, "wb") as f:
        for part in parts:
            f.write(part)


@pytest.mark.parametrize(
    "content, tail, lines",
    [
        (b"a\nb\nc\n", 2, ["b", "c"]),
        (b"a\nb\nc", 2, ["b", "c"]),
        (b"a\nb\nc\n", 10, ["a", "b", "c"]),
        (b"a\nb\nc\n", 0, []),
        (b"", 5, []),
        (b"a\r\nb\r\n", 5, ["a", "b"]),
    ],
)
def test_the_last_lines_of_a_file(tmp_path, content, tail, lines):
    write_log(tmp_path / "log", content)
    with open(tmp_path / "log", "rb") as f:
        data, starts_inside, _ = read_tail(f, tail, MiB)
    assert last_lines(data, starts_inside, tail, 1024) == lines


def test_a_150_mb_line_is_read_from_its_end_and_cut(tmp_path):
    path = tmp_path / "log"
    with open(path, "wb") as f:
        f.write(b"first\n")
        for _ in range(150):
            f.write(b"x" * MiB)
        f.write(b"\nlast\n")
    with open(path, "rb") as f:
        data, starts_inside, size = read_tail(f, 5, MiB)
    assert len(data) == MiB and starts_inside and size == os.path.getsize(path)
    lines = last_lines(data, starts_inside, 5, 16 * 1024)
    assert lines[-1] == "last"
    [long] = lines[:-1]
    assert long.startswith(EARLIER_MARK) and long.endswith(CUT_MARK.format(MiB - 5 - 1 - 16 * 1024))
    assert len(long.encode()) < 17 * 1024


def test_a_splitter_holds_one_cut_line_however_long_the_line():
    splitter = LineSplitter(16 * 1024)
    chunk = b"y" * MiB
    for _ in range(200):  # 200 MB without a newline
        assert splitter.feed(chunk) == []
        assert len(splitter._partial) <= 16 * 1024
    [line] = splitter.feed(b"\nnext")
    assert line == "y" * 16 * 1024 + CUT_MARK.format(200 * MiB - 16 * 1024)
    assert splitter.flush() == "next" and splitter.flush() is None


async def test_a_follower_of_a_line_without_an_end_holds_it_cut(tmp_path):
    logs = LocalLogs(str(tmp_path), max_line_bytes=1024, poll=0.05)
    path = local_log_path(str(tmp_path), "alice", "alpha-python")
    os.makedirs(os.path.dirname(path))
    write_log(path, b"hello\n")
    following = logs.follow("alpha", "alice", "alpha-python", tail=10)
    assert await asyncio.wait_for(following.__anext__(), 10) == "hello"
    with open(path, "ab") as f:
        f.write(b"z" * (20 * MiB))
        f.write(b"\nafter\n")
    line = await asyncio.wait_for(following.__anext__(), 30)
    assert line == "z" * 1024 + CUT_MARK.format(20 * MiB - 1024)
    assert await asyncio.wait_for(following.__anext__(), 10) == "after"
    await following.aclose()


async def test_a_new_run_of_the_server_ends_the_followers_of_the_old_one(tmp_path):
    logs = LocalLogs(str(tmp_path), poll=0.05)
    start_local_log(str(tmp_path), "alice", "alpha-python").close()
    following = logs.follow("alpha", "alice", "alpha-python", tail=10)
    reading = asyncio.ensure_future(following.__anext__())
    await asyncio.sleep(0.2)
    assert not reading.done()  # nothing printed yet: it waits
    start_local_log(str(tmp_path), "alice", "alpha-python").close()  # what the demo's spawner does at a start
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(reading, 10)
