"""A circuit breaker for the consumer: stop fetching while the database (or broker) is down.

Plain state, no I/O, so it is unit-testable; :mod:`workers.batching` drives it from the
consumer's event loop. A batch that failed on a transient error (``retry``/``requeue``)
:meth:`trip`\\ s it: it opens for a backoff (1 s, 2 s, 4 s, 8 s = ``cap``, jittered). While
open, the consumer stops consuming its queue and holds what it already buffered. When
the backoff ends it is half-open: consumption resumes and the next batch decides —
a success :meth:`reset`\\ s it, another failure opens it for twice as long.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field


@dataclass
class CircuitBreaker:
    """Consecutive-failure breaker with exponential, jittered open periods."""

    cap_s: float = 8.0
    failures: int = 0
    open_until: float = 0.0
    clock: object = field(default=time.monotonic, repr=False)

    @property
    def is_open(self) -> bool:
        """True while fetching and dispatching should stay paused."""
        return self.clock() < self.open_until

    def trip(self) -> float:
        """A batch failed transiently: open (again) and return the pause in seconds. A
        failure reported while already open (batches that were in flight) does not
        lengthen the current pause."""
        if self.is_open:
            return self.open_until - self.clock()
        base = min(self.cap_s, 2.0 ** self.failures)
        pause = base / 2 + random.uniform(0, base / 2)
        self.failures += 1
        self.open_until = self.clock() + pause
        return pause

    def reset(self) -> None:
        """A batch succeeded: closed."""
        self.failures = 0
        self.open_until = 0.0
