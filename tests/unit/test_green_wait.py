"""psycopg's waits as gevent io watchers (entrypoints/green_wait.py): results as psycopg's
own wait gives them, other greenlets run meanwhile, and a timeout is kept."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import gevent
import psycopg
import pytest
from psycopg import errors, waiting

from entrypoints import green_wait


@pytest.fixture
def green() -> Iterator[None]:
    before = waiting.wait
    green_wait.install()
    try:
        yield
    finally:
        waiting.wait = before


def test_queries_and_pipelines_answer_as_with_psycopgs_own_wait(green: None, postgres_url: str) -> None:
    assert waiting.wait is green_wait.wait
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT %s::int + 1", (41,)).fetchone() == (42,)
        with conn.pipeline():
            cursors = [conn.execute("SELECT %s::text", (str(n),)) for n in range(50)]
        assert [c.fetchone() for c in cursors] == [(str(n),) for n in range(50)]
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("SELECT 1 / 0")


def test_other_greenlets_run_while_a_query_waits(green: None, postgres_url: str) -> None:
    ticks = []

    def ticking() -> None:
        while True:
            ticks.append(1)
            gevent.sleep(0.01)

    ticker = gevent.spawn(ticking)
    gevent.sleep(0)
    try:
        with psycopg.connect(postgres_url) as conn:
            before = len(ticks)
            conn.execute("SELECT pg_sleep(0.3)")
            during = len(ticks) - before
    finally:
        ticker.kill()
    assert during >= 10  # a wait that blocked the hub would let the ticker run not once


def test_a_wait_past_its_timeout_raises_wait_timeout() -> None:
    quiet, other = socket.socketpair()  # nothing is ever written to `quiet`

    def waits_to_read() -> Iterator[int]:
        yield waiting.WAIT_R
        raise AssertionError("told the socket was readable")

    try:
        with pytest.raises(errors._WaitTimeout):
            green_wait.wait(waits_to_read(), quiet.fileno(), timeout=0.05)
        other.send(b"x")
        gen = waits_to_read()
        with pytest.raises(AssertionError, match="readable"):  # readable now: told so at once
            green_wait.wait(gen, quiet.fileno(), timeout=5)
    finally:
        quiet.close()
        other.close()
