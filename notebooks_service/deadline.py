"""The time budget of the request being served, which every Hub call and every wait spends.

Handlers set ``request_deadline`` when a request begins (``NotebooksService.request_budget``);
the Hub client, the server locks and the shared reads of user models wait only as long as
it leaves, so one slow Hub answer cannot hold a request past its budget.
"""

import asyncio
import contextlib
import contextvars
import time
from collections.abc import Iterator

from .errors import HubUnavailable


class Deadline:
    """The moment by which a request must be answered."""

    def __init__(self, seconds: float):
        self.expires = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.expires - time.monotonic())


#: the deadline of the request being served; set by the handlers, read by every Hub call
request_deadline: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("request_deadline", default=None)


@contextlib.contextmanager
def time_budget(seconds: float) -> Iterator[Deadline]:
    """Run the block's Hub calls within ``seconds`` (handlers set it per request instead)."""
    deadline = Deadline(seconds)
    token = request_deadline.set(deadline)
    try:
        yield deadline
    finally:
        request_deadline.reset(token)


def time_left() -> float | None:
    """Seconds the request being served may still wait (None: no budget, e.g. a background task)."""
    deadline = request_deadline.get()
    return None if deadline is None else deadline.remaining()


def out_of_time() -> HubUnavailable:
    return HubUnavailable("The Hub did not answer in time; please try again in a moment.")


async def acquire_within(lock: asyncio.Lock | asyncio.Semaphore, timeout: float | None) -> bool:
    """Acquire ``lock`` within ``timeout`` seconds; False (and not held) if that fails."""
    if not lock.locked():
        await lock.acquire()
        return True
    acquiring = asyncio.ensure_future(lock.acquire())
    done, _ = await asyncio.wait({acquiring}, timeout=timeout)
    if done:
        return True
    acquiring.cancel()
    # it may have won the lock in the instant it was cancelled: then give it back
    acquiring.add_done_callback(lambda f: None if f.cancelled() else lock.release())
    return False
