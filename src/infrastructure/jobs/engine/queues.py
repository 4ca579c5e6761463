"""The order in which a worker's claims look at its queues: strict priority, or weighted.

Strict priority (the default) always looks at the first queue first, so a busy `critical`
queue can keep `low` waiting indefinitely. Weighted order puts each queue first in a share of
the claims proportional to its weight (smooth weighted round-robin, as nginx balances
upstreams): with `critical=3, low=1`, `critical` leads 3 claims in 4 and `low` 1, evenly
spread, so no queue starves while another is busy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class QueueOrder:
    """Gives the queue order of each claim."""

    def __init__(self, queues: Sequence[str], weights: Mapping[str, int] | None = None) -> None:
        """`weights`: empty or None for strict priority in the order of `queues`; else each
        queue's weight (1 for queues it leaves out)."""
        self._queues = tuple(queues)
        self._weights = {queue: (weights or {}).get(queue, 1) for queue in self._queues}
        self._weighted = bool(weights)
        self._current = dict.fromkeys(self._queues, 0)
        if any(weight < 1 for weight in self._weights.values()):
            raise ValueError("queue weights must be at least 1")

    def next(self) -> tuple[str, ...]:
        """The queues in the order the next claim looks at them."""
        if not self._weighted:
            return self._queues
        for queue, weight in self._weights.items():
            self._current[queue] += weight
        order = sorted(self._queues, key=lambda queue: -self._current[queue])  # stable on ties
        self._current[order[0]] -= sum(self._weights.values())
        return tuple(order)
