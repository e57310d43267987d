"""psycopg's waits for its database socket, as one gevent io watcher each.

Under gevent psycopg waits through the patched ``select.poll``, which builds a poll
object, a watcher per descriptor and a timer (its 0.1 s wake-up interval) for every
round trip: about a tenth of a server worker's CPU on usage posts (py-spy). A round trip
needs one watcher on one descriptor, started and stopped here. Installed by the HTTP
worker after gevent has patched the standard library (entrypoints/http_worker.py)."""

from __future__ import annotations

from time import monotonic
from typing import Any

from gevent import Timeout, get_hub
from gevent.hub import Waiter
from psycopg import errors, waiting
from psycopg.waiting import READY_R, READY_W, WAIT_R, WAIT_RW, WAIT_W

# libev's and libuv's event bits, as gevent's io watchers take them
_READ, _WRITE = 1, 2
_EVENTS = {WAIT_R: _READ, WAIT_W: _WRITE, WAIT_RW: _READ | _WRITE}


def wait(gen: Any, fileno: int, interval: float = 0.0, timeout: float | None = None) -> Any:
    """``psycopg.waiting.wait``'s contract: drive ``gen`` until it returns, telling it which
    of the events it waits for are ready; past ``timeout`` seconds raise _WaitTimeout.
    The wake-up ``interval`` serves Ctrl-C in a blocking wait, which a greenlet never is."""
    hub = get_hub()
    deadline = None if timeout is None else monotonic() + timeout
    try:
        state = next(gen)
        while True:
            watcher = hub.loop.io(fileno, _EVENTS[state])
            waiter = Waiter(hub)
            watcher.start(waiter.switch, pass_events=True)
            try:
                if deadline is None:
                    events = waiter.get()
                else:
                    events = 0
                    with Timeout(max(deadline - monotonic(), 0.0), False):  # False: leaves the block quietly
                        events = waiter.get()
                    if not events:
                        raise errors._WaitTimeout("wait timeout expired")
            finally:
                watcher.stop()
                watcher.close()
            state = gen.send((READY_R if events & _READ else 0) | (READY_W if events & _WRITE else 0))
    except StopIteration as stop:
        return stop.value


def install() -> None:
    waiting.wait = wait
