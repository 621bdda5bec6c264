"""PIPE for scheduled tasks: their inference is requested before the block that runs them.

A block runs its due tasks at the top, before any transaction (:mod:`ogevm.vm.scheduler`).
No model may run on the block path, so before each block the pipeline simulates (CAPTURE)
the calls the *next* block will make — the head's state, the next number, a predicted
timestamp — and sends their requests to the executor; the builder then replays the tasks
with those results, like transactions. Dependent calls are found in rounds: each new
result known makes the next capture see further.

A task whose results are not all in the block when it is built (late, or its inputs
differ from the capture's, e.g. because they read ``block.timestamp`` and the prediction
was off) is *deferred*: its call is undone and recorded ``Deferred``, and it stays due.
The block commits to its bundle, so a validator reaches the same outcome without timing.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Mapping, Sequence

from ogevm.precompile.modes import CaptureProvider, ReplayProvider
from ogevm.records import InferenceRecord, InferenceRequest, RequestId
from ogevm.vm.blocks import PendingBlock
from ogevm.vm.scheduler import TaskRun, TaskStatus, due_tasks


def wall_clock_next(parent_timestamp: int) -> int:
    """The timestamp a block built now gets, as :class:`PendingBlock` stamps it."""
    return max(int(time.time()), parent_timestamp + 1)


def scheduled_records(runs: Sequence[TaskRun], provider: ReplayProvider,
                      records: Mapping[RequestId, InferenceRecord]) -> list[InferenceRecord]:
    """The records a block's scheduled calls used, in order: a deferred call's count for nothing."""
    return [records[request.id] for run in runs if run.status is not TaskStatus.DEFERRED
            for request in provider.used.get(run.call_hash, ())]


class ScheduledInference:
    """The inference of the next block's scheduled calls, requested ahead of the block.

    ``chain`` is a :class:`~ogevm.vm.chain.DevChain`; ``next_timestamp(parent_timestamp)``
    predicts the timestamp of the next block; at most ``max_rounds`` captures run on one
    head (calls whose inputs depend on earlier results need one per step of the chain).
    Thread-safe: the pipeline's background step captures while a worker thread stores
    results.
    """

    def __init__(self, chain, next_timestamp: Callable[[int], int] = wall_clock_next, max_rounds: int = 4) -> None:
        self.chain = chain
        self.next_timestamp = next_timestamp
        self.max_rounds = max_rounds
        self._records: dict[RequestId, InferenceRecord] = {}
        self._in_flight: set[RequestId] = set()
        self._captured: tuple | None = None
        self._rounds: tuple[bytes, int] = (b"", 0)  # (head, captures on it)
        self._lock = threading.Lock()

    def missing(self) -> list[InferenceRequest]:
        """Requests of the next block's scheduled calls with no result and none on the way.

        Captures again only when the head, the due tasks or the results known changed, and
        at most ``max_rounds`` times on one head. A request the executor could not run is
        asked for again on the next head (meanwhile its call is deferred).
        """
        head = self.chain.head
        timestamp = self.next_timestamp(head.timestamp)
        tasks = due_tasks(self.chain.state(), timestamp)
        if not tasks:
            return []
        with self._lock:
            key = (head.hash, tasks, len(self._records))
            rounds = self._rounds[1] if self._rounds[0] == head.hash else 0
            if key == self._captured or rounds >= self.max_rounds:
                return []
            self._rounds = (head.hash, rounds + 1)
            known = {rid: record.result for rid, record in self._records.items()}
        provider = CaptureProvider(self.chain.models, known)
        # the header's pre-processing runs the due calls; the block is never sealed
        pending = PendingBlock(self.chain.chain, self.chain.base_vm_class.with_provider(provider), timestamp=timestamp)
        with self._lock:
            self._captured = key
            fresh = [request for run in pending.vm.scheduled_runs for request in provider.missing(run.call_hash)
                     if request.id not in self._in_flight]
            self._in_flight.update(request.id for request in fresh)
        return fresh

    def store(self, records: Sequence[InferenceRecord]) -> None:
        """Keep the records of finished requests for the block that will use them."""
        with self._lock:
            for record in records:
                self._in_flight.discard(record.request_id)
                self._records[record.request_id] = record

    def release(self, request_ids: Sequence[RequestId]) -> None:
        """Requests the executor could not run: a capture on the next head asks again."""
        with self._lock:
            self._in_flight.difference_update(request_ids)

    def records(self) -> dict[RequestId, InferenceRecord]:
        """Every record kept so far (a block uses those of its own calls)."""
        with self._lock:
            return dict(self._records)

    def forget(self) -> None:
        """Drop the records once a block is built: the next block's calls have other ids."""
        with self._lock:
            self._records.clear()
            self._captured = None
