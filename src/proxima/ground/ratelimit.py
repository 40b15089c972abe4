"""A per-client token-bucket rate limiter with bounded memory.

Each client (an opaque key: a hash of an address, an account handle) has a bucket of ``burst``
tokens refilled at ``rate_per_s`` tokens per second; a request takes one token or is refused with
the time until one is there. Over any span of ``t`` seconds a client gets at most
``burst + rate_per_s * t`` requests through.

Pure: the caller passes the time (seconds on any monotonic clock), so tests need no sleeping.
Memory stays bounded: beyond ``max_clients`` the least recently seen clients are forgotten (a
forgotten client comes back with a full bucket, which is why ``max_clients`` should comfortably
exceed the number of clients active within ``burst / rate_per_s`` seconds).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Final

from proxima.errors import ConfigError, RateLimited

__all__ = ["RateLimiter"]

# Added to a computed wait so that waiting exactly that long refills a whole token despite
# rounding: of floats, and of clocks (a Unix time in seconds as a float is only good to about
# 0.2 µs, a ``timedelta`` to 1 µs).
_SLACK_RELATIVE: Final = 1e-9
_SLACK_S: Final = 1e-4


class RateLimiter:
    """Token buckets per client: ``burst`` requests at once, then ``rate_per_s`` per second."""

    __slots__ = ("_buckets", "burst", "max_clients", "rate_per_s")

    def __init__(self, rate_per_s: float, burst: float, max_clients: int) -> None:
        if not (math.isfinite(rate_per_s) and rate_per_s > 0):
            raise ConfigError(f"rate_per_s must be a positive number, not {rate_per_s!r}")
        if not (math.isfinite(burst) and burst >= 1):
            raise ConfigError(f"burst must be at least 1, not {burst!r}")
        if isinstance(max_clients, bool) or not isinstance(max_clients, int) or max_clients < 1:
            raise ConfigError(f"max_clients must be a positive integer, not {max_clients!r}")
        self.rate_per_s = float(rate_per_s)
        self.burst = float(burst)
        self.max_clients = max_clients
        # client -> (tokens, time of the last refill); most recently seen last.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        """How many clients are remembered (never more than ``max_clients``)."""
        return len(self._buckets)

    def __contains__(self, client: object) -> bool:
        return client in self._buckets

    def check(self, client: str, now: float) -> None:
        """Let one request of ``client`` through at time ``now``, or raise :class:`RateLimited`.

        ``retry_after`` is the number of seconds until the client's next request can pass. A
        time earlier than one already seen for the client counts as no time elapsed.
        """
        bucket = self._buckets.get(client)
        if bucket is None:
            tokens, last = self.burst, now
        else:
            tokens, last = bucket
            if now > last:
                tokens = min(self.burst, tokens + (now - last) * self.rate_per_s)
                last = now
        self._buckets[client] = (tokens - 1.0 if tokens >= 1.0 else tokens, last)
        self._buckets.move_to_end(client)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        if tokens < 1.0:
            wait = (1.0 - tokens) / self.rate_per_s
            wait += wait * _SLACK_RELATIVE + _SLACK_S
            raise RateLimited(f"too many requests; try again in {math.ceil(wait)} s", retry_after=wait)

    def forget(self, client: str) -> None:
        """Drop a client's bucket (it comes back full)."""
        self._buckets.pop(client, None)
