"""Write rate limits kept in Redis, so they hold across every worker and node.

A token bucket per editor and per client address, refilled by Redis's clock and checked and
spent in one script call: one round trip per limit per write (writes are rare). The bucket
expires once it would be full again, so idle editors and addresses cost nothing.
"""

from __future__ import annotations

from redis.asyncio import Redis

from livefeed.errors import TooManyRequests
from livefeed.storage.keys import Keys

# KEYS[1] the bucket; ARGV rate (actions/s), burst. Returns {1, 0} when an action was taken,
# else {0, ms until one is available}.
_TAKE_LUA = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
if tokens < 1 then
  return {0, math.ceil((1 - tokens) * 1000 / rate)}
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {1, 0}
"""


class SharedRateLimiter:
    """``rate`` actions a second per key, in bursts of up to ``burst``, across all nodes;
    rate 0 is off. ``limit`` names the bucket family (``editor``, ``address``)."""

    def __init__(self, redis: Redis, keys: Keys, limit: str, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(burst, 1)
        self._keys = keys
        self._limit = limit
        self._take = redis.register_script(_TAKE_LUA)

    async def check(self, key: str, what: str) -> None:
        """Take one action for ``key`` or raise TooManyRequests with a Retry-After hint."""
        if self.rate <= 0:
            return
        taken, wait_ms = await self._take(
            keys=[self._keys.rate(self._limit, key)], args=[repr(self.rate), self.burst]
        )
        if not int(taken):
            retry = max(1, round(int(wait_ms) / 1000))
            raise TooManyRequests(f"too many {what}; slow down", retry_after=retry)
