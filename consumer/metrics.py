"""Prometheus metrics of the consumer: what it handled, in what batches, how far behind.

Events per second is the rate of ledger_consumer_messages_total; the dead-letter count is
its outcome="dead_letter" series.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter("ledger_consumer_messages_total", "Kafka messages handled, by outcome", ["outcome"])
BATCH_SIZE = Histogram("ledger_consumer_batch_messages", "Messages per polled batch",
                       buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000))
LAG = Gauge("ledger_consumer_lag_messages", "Messages not yet handled, per partition", ["topic", "partition"])
OUTBOX_PUBLISHED = Counter("ledger_consumer_outbox_published_total", "Dead letters and replies published")
