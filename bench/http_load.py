"""A closed-loop HTTP load generator in plain asyncio: nothing to install, and cheap enough
(one thread, pre-encoded requests, no HTTP library) that the client takes little of the
machine the server runs on. Its own CPU time is reported beside the figures.

Each lane is one client: it sends a request on its kept-alive connection (a new one when
the server has closed it; `keep_alive=False`: a fresh connection per request), reads the
whole answer, and sends the next. Requests
come from one shared queue (any lane may send any request) or, for ordered work such as a
reserve and then its settle, from the lane's own queue.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: dict[str, Any] | None = None
    tag: Any = None  # handed back with the answer (what the request meant, for the books)

    def encoded(self, host: str, key: str, keep_alive: bool = False) -> bytes:
        body = b"" if self.body is None else json.dumps(self.body).encode()
        head = (f"{self.method} {self.path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
                f"Connection: {'keep-alive' if keep_alive else 'close'}\r\nContent-Length: {len(body)}\r\n")
        if self.body is not None:
            head += "Content-Type: application/json\r\n"
        return head.encode() + b"\r\n" + body


@dataclass
class Result:
    seconds: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0  # connections that failed without an answer
    client_cpu_s: float = 0.0
    answered: list[tuple[Any, int, bytes]] = field(default_factory=list)  # (tag, status, body) when kept

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    def percentile_ms(self, p: float) -> float:
        if not self.latencies_s:
            return 0.0
        ordered = sorted(self.latencies_s)
        return 1000 * ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def line(self, name: str, target: str = "") -> str:
        return (f"{name}: {self.requests} in {self.seconds:.1f} s = {self.per_s:,.0f}/s; "
                f"p50 {self.percentile_ms(50):.2f} ms, p90 {self.percentile_ms(90):.2f} ms, "
                f"p99 {self.percentile_ms(99):.2f} ms; non-2xx {self.non_2xx}, "
                f"client CPU {100 * self.client_cpu_s / max(self.seconds, 1e-9):.0f}% of a core"
                + (f" ({target})" if target else ""))


def run(base: str, key: str, lanes: list[Iterator[Request]] | Iterator[Request], *, connections: int,
        seconds: float, keep: Callable[[Request], bool] = lambda r: False, keep_alive: bool = True) -> Result:
    """Drives the server for ``seconds`` with ``connections`` lanes; ``lanes`` is one shared
    iterator or one per connection. Answers to requests for which ``keep`` holds are kept."""
    host, port = base.removeprefix("http://").split(":")
    shared = not isinstance(lanes, list)
    result = Result()

    async def exchange(request: Request, connection: list[Any]) -> bytes:
        if not keep_alive:
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(request.encoded(host, key))
            answer = await reader.read()
            writer.close()
            return answer
        if not connection:
            connection.extend(await asyncio.open_connection(host, int(port)))
        reader, writer = connection
        writer.write(request.encoded(host, key, keep_alive=True))
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), None)
        body = await (reader.read() if length is None else reader.readexactly(length))  # no length: until closed
        if length is None or b"connection: close" in head.lower():
            writer.close()
            connection.clear()
        return head + body

    async def lane(source: Iterator[Request], deadline: float) -> None:
        connection: list[Any] = []
        while time.perf_counter() < deadline:
            request = next(source, None)
            if request is None:
                break
            started = time.perf_counter()
            try:
                answer = await exchange(request, connection)
            except (OSError, asyncio.IncompleteReadError):
                result.errors += 1
                connection.clear()
                continue
            result.latencies_s.append(time.perf_counter() - started)
            status = int(answer[9:12]) if answer.startswith(b"HTTP/1.") else 0
            result.statuses[status] += 1
            if keep(request):
                result.answered.append((request.tag, status, answer.split(b"\r\n\r\n", 1)[-1]))
        if connection:
            connection[1].close()

    async def main() -> None:
        deadline = time.perf_counter() + seconds
        sources = [lanes] * connections if shared else lanes
        await asyncio.gather(*(lane(s, deadline) for s in sources))  # type: ignore[arg-type]

    cpu, wall = time.process_time(), time.perf_counter()
    asyncio.run(main())
    result.seconds, result.client_cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    return result
