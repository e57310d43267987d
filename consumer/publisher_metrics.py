"""Prometheus metrics of the events publisher (`ledger publish-events`).

Published events per second is the rate of ledger_publisher_events_total; how far the
topic is behind the log is ledger_publisher_lag_events (positions, not seconds).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

EVENTS = Counter("ledger_publisher_events_total", "Ledger events published and acknowledged, by type", ["type"])
SKIPPED = Counter("ledger_publisher_skipped_total", "Log entries passed over: not Account events (client keys)")
POSITION = Gauge("ledger_publisher_position", "Last log position published (its notification id)")
LAG = Gauge("ledger_publisher_lag_events", "Log positions not yet published: newest position - published position")
