"""Per-key rate limits (the `limits` library): a caller past its rate gets 429 with
Retry-After, and nothing of the request runs. Counted per verified key id after
authentication, so one noisy client slows only itself.

LEDGER_RATE_LIMIT is a rate in the library's notation ("200/second", "1000 per minute;
20/second"), "off" to turn it off. LEDGER_RATE_LIMIT_STORAGE says where the counts live:
memory:// (per process: each gunicorn worker counts its own share) or redis://host:port
to share them across workers and replicas."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from ledger_core.errors import RateLimited


class RateLimits:
    def __init__(self, rates: str, storage_uri: str) -> None:
        self.items: list[RateLimitItem] = [] if rates.strip().lower() == "off" else parse_many(rates)
        self.limiter = SlidingWindowCounterRateLimiter(storage_from_string(storage_uri)) if self.items else None

    def check(self, key_id: str) -> None:
        if self.limiter is None:
            return
        for item in self.items:
            if not self.limiter.hit(item, "key", key_id):
                stats = self.limiter.get_window_stats(item, "key", key_id)
                retry_after_s = max(1, math.ceil(stats.reset_time - time.time()))
                raise RateLimited(f"this key is over its rate of {item}; retry after {retry_after_s} s",
                                  limit=str(item), retry_after_s=retry_after_s)
