"""Failure counters with exponential backoff, per key (an account, a user's MFA, a client address).

After `free` failures a key must wait `base_delay` seconds after its last failure, doubling with
each further failure up to `max_delay` (the lockout). A key is forgotten after `forget_after`
seconds without a failure, or at once when its owner succeeds (`forgive`). An attempt is counted
as a failure before it is checked (`attempt`) and given back on success, so a burst of parallel
guesses cannot slip in before the first one is recorded. Counters live in memory: a restart
forgets them, and the oldest keys are dropped past `MAX_KEYS` so random keys cannot exhaust memory.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

MAX_KEYS = 10_000


@dataclass(frozen=True)
class Backoff:
    free: int
    base_delay: float
    max_delay: float
    forget_after: float = 3600.0

    def wait(self, failures: int) -> float:
        """How long after the last failure the next attempt must wait."""
        if failures < self.free or self.base_delay <= 0:
            return 0.0
        return min(self.base_delay * 2.0 ** min(failures - self.free, 64), self.max_delay)


@dataclass
class _Count:
    failures: int
    last: float


class TooManyAttempts(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after:.0f} s")
        # Whole seconds, rounded up: what the Retry-After header says.
        self.retry_after = max(1, math.ceil(retry_after))

    @property
    def message(self) -> str:
        return f"Too many failed attempts; try again in {self.retry_after} s."


class Throttle:
    def __init__(self) -> None:
        self._counts: OrderedDict[str, _Count] = OrderedDict()

    def _count(self, key: str, backoff: Backoff, now: float) -> _Count | None:
        count = self._counts.get(key)
        if count is not None and now - count.last >= backoff.forget_after:
            del self._counts[key]
            return None
        return count

    def attempt(self, keys: dict[str, Backoff], now: float) -> None:
        """Count one attempt as a failure of every key; TooManyAttempts (nothing counted) if any
        key is still waiting."""
        waits = [
            count.last + backoff.wait(count.failures) - now
            for key, backoff in keys.items()
            if (count := self._count(key, backoff, now)) is not None
        ]
        wait = max(waits, default=0.0)
        if wait > 0:
            raise TooManyAttempts(wait)
        for key in keys:
            count = self._counts.pop(key, None) or _Count(0, now)
            self._counts[key] = _Count(count.failures + 1, now)  # newest last
        while len(self._counts) > MAX_KEYS:
            self._counts.popitem(last=False)

    def forgive(self, key: str, *, all_failures: bool) -> None:
        """Undo this attempt's count (`all_failures`: the key's owner proved itself; start over)."""
        count = self._counts.get(key)
        if count is None:
            return
        count.failures = 0 if all_failures else max(0, count.failures - 1)
        if count.failures == 0:
            del self._counts[key]
