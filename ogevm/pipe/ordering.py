"""Which ready transaction goes next: highest effective tip first, nonces in order."""

from __future__ import annotations

import heapq
from typing import Iterable, Iterator

from ogevm.pipe.mempool import PoolEntry


def effective_tip(entry: PoolEntry, base_fee: int) -> int:
    """What the block producer earns per gas from ``entry`` at ``base_fee``."""
    return min(entry.tx.max_priority_fee_per_gas, entry.tx.max_fee_per_gas - base_fee)


def best_transactions(entries: Iterable[PoolEntry], base_fee: int) -> Iterator[PoolEntry]:
    """Entries by effective tip (ties: arrival), each sender's strictly in nonce order."""
    queues: dict[bytes, list[PoolEntry]] = {}
    for entry in sorted(entries, key=lambda e: e.nonce, reverse=True):
        queues.setdefault(entry.sender, []).append(entry)
    heap = [(-effective_tip(q[-1], base_fee), q[-1].arrival, sender) for sender, q in queues.items()]
    heapq.heapify(heap)
    while heap:
        _, _, sender = heapq.heappop(heap)
        queue = queues[sender]
        yield queue.pop()
        if queue:
            heapq.heappush(heap, (-effective_tip(queue[-1], base_fee), queue[-1].arrival, sender))
