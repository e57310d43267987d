"""What the database's sessions were doing while a benchmark ran: pg_stat_activity sampled
every 20 ms on a connection of its own, summed as sessions on average.

"0.76 waiting for Lock advisory in SELECT pg_advisory_lock" means that at any moment,
on average, three quarters of a session stood there. Writers that take turns (the events
table's lock, the read model's turn) show as Lock waits; commits as IO WALSync; a
transaction whose client is busy in Python as "in transaction, client busy". With two
cores, a rate that leaves cores idle is bounded by such waits, not by CPU: this says by
which.
"""

from __future__ import annotations

import multiprocessing
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

SAMPLE_EVERY_S = 0.02  # 50 samples a second: a few hundred in a benchmark's run, at little cost
SAMPLE_SQL = (
    "SELECT state, wait_event_type, wait_event, left(query, 200) AS query FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
    "AND state <> 'idle'"
)


def statement(query: str) -> str:
    """The statement's first words, without schemas and quotes: what it is, not its values."""
    text = re.sub(r'"?\w+"?\."?(\w+)"?', r"\1", query)  # schema.table -> table
    text = re.sub(r"_[0-9a-f]{8,}\b", "", text)  # staging tables' random suffixes
    words: list[str] = []
    for word in text.split():
        if word.startswith("(") and len(words) >= 2:
            break  # a column list
        head = word.lstrip("(").split("(")[0]
        if head:
            words.append(head)
        if "(" in word.lstrip("(") or len(words) == 3:
            break
    return " ".join(words)


def activity(state: str, wait_type: str | None, wait: str | None, query: str) -> str:
    if state == "idle in transaction":
        return f"in transaction, client busy, after {statement(query)}"
    if wait_type is None:
        return f"running {statement(query)}"
    if wait_type == "Client":
        return f"in a pipeline, client busy, at {statement(query)}"
    return f"waiting for {wait_type} {wait} in {statement(query)}"


class Waits:
    """What one measured run's samples found."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.samples = 0

    def top(self, n: int = 5) -> list[tuple[float, str]]:
        """The ``n`` commonest activities, as sessions on average."""
        return [(count / max(self.samples, 1), what) for what, count in self.counts.most_common(n)]

    def line(self, n: int = 5) -> str:
        shown = "; ".join(f"{sessions:.2f} {what}" for sessions, what in self.top(n))
        return f"database sessions on average ({self.samples:,} samples): {shown or 'none busy'}"


class WaitSampler:
    """A sampling process, started (and connected) before the runs it measures, so that
    neither its start nor its samples take time from a load generator's thread:
    ``with sampler.measuring() as waits:`` samples until the block ends."""

    def __init__(self, url: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._commands, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(url, child), daemon=True)
        self._process.start()
        if self._commands.recv() != "ready":
            raise RuntimeError("the wait sampler did not start")

    @contextmanager
    def measuring(self) -> Iterator[Waits]:
        waits = Waits()
        self._commands.send("start")
        try:
            yield waits
        finally:
            self._commands.send("stop")
            waits.samples, counts = self._commands.recv()
            waits.counts.update(counts)

    def close(self) -> None:
        self._commands.send("exit")
        self._process.join(timeout=10)


def _serve(url: str, commands: Any) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        commands.send("ready")
        while commands.recv() == "start":
            counts: Counter[str] = Counter()
            samples = 0
            while not commands.poll(SAMPLE_EVERY_S):  # the wait between samples, until "stop"
                for row in conn.execute(SAMPLE_SQL, prepare=True).fetchall():
                    counts[activity(*row)] += 1
                samples += 1
            commands.recv()
            commands.send((samples, dict(counts)))
