"""Where a benchmark's CPU went: the machine's busy time and each process's, from /proc.

With two cores shared by the ledger's processes, PostgreSQL and the load, a rate is
bounded by the CPU one operation costs across all of them: these figures say which part
to make cheaper."""

from __future__ import annotations

import os
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds all cores have spent not idle since boot (user, nice, system, irq, softirq, steal)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS_PER_S


def process_cpu_s(pid: int) -> float:
    """CPU seconds a process has used (user and system), 0 if it is gone."""
    try:
        after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(after_name[11]) + int(after_name[12])) / TICKS_PER_S


def named_cpu_s(name: str) -> float:
    """CPU seconds of every live process whose command name is ``name`` (e.g. postgres)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if text[text.index("(") + 1:text.rindex(")")] == name:
            total += process_cpu_s(int(stat.parent.name))
    return total


def children_of(parent: int) -> list[int]:
    """The live processes ``parent`` started (a server's workers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return sorted(found)


class CpuShare:
    """CPU used between ``start`` and ``stop`` by the machine, PostgreSQL and some processes."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.busy_s = self.postgres_s = self.processes_s = 0.0

    def _now(self) -> tuple[float, float, float]:
        return machine_busy_s(), named_cpu_s("postgres"), sum(process_cpu_s(p) for p in self.pids)

    def start(self) -> None:
        self._started = self._now()

    def stop(self) -> None:
        ended = self._now()
        self.busy_s, self.postgres_s, self.processes_s = (b - a for a, b in zip(self._started, ended, strict=True))

    def line(self, seconds: float, operations: int, processes: str) -> str:
        per = 1e6 / max(operations, 1)
        other = self.busy_s - self.postgres_s - self.processes_s
        return (f"{self.busy_s / seconds:.2f} cores busy; CPU per request: {processes} {self.processes_s * per:,.0f} us, "
                f"PostgreSQL {self.postgres_s * per:,.0f} us, client and the rest {other * per:,.0f} us")
