"""Running models: an LRU cache of onnxruntime sessions, a watchdog that stops runs past
their time budget, and the encoded result of a run."""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
from collections import OrderedDict
from typing import Sequence

import numpy as np
import onnxruntime as ort

from ogevm.abi.types import ModelOutput
from ogevm.constants import MODEL_RUN_BUDGET_FACTOR, MODEL_RUN_MIN_SECONDS, MODEL_RUN_NS_PER_GAS
from ogevm.errors import ModelExecutionError
from ogevm.models.binding import Feeds, encode_outputs, model_gas
from ogevm.models.store import ModelInfo, ModelStore, session_options


class ModelRuntime:
    """Runs stored models; keeps at most ``capacity`` sessions, least recently used out.

    Sessions use one intra-op thread each (parallelism comes from the caller's pool);
    ``run`` is safe from several threads, onnxruntime releases the GIL while it runs.
    ``providers`` are onnxruntime's execution providers, in order of preference.
    ``min_seconds`` and ``budget_factor`` set the time budget of a run (:meth:`time_budget`).
    """

    def __init__(self, store: ModelStore, capacity: int = 32,
                 providers: Sequence[str] = ("CPUExecutionProvider",),
                 min_seconds: float = MODEL_RUN_MIN_SECONDS,
                 budget_factor: float = MODEL_RUN_BUDGET_FACTOR) -> None:
        self.store = store
        self.capacity = capacity
        self.providers = list(providers)
        self.min_seconds = min_seconds
        self.budget_factor = budget_factor
        self._sessions: OrderedDict[str, ort.InferenceSession] = OrderedDict()
        self._lock = threading.Lock()

    def session(self, cid: str) -> ort.InferenceSession:
        """The cached session of ``cid``, created from hash-checked bytes on a miss."""
        with self._lock:
            session = self._sessions.get(cid)
            if session is not None:
                self._sessions.move_to_end(cid)
                return session
        session = ort.InferenceSession(
            self.store.load(cid), session_options(), providers=self.providers
        )
        with self._lock:
            self._sessions[cid] = session
            self._sessions.move_to_end(cid)
            while len(self._sessions) > self.capacity:
                self._sessions.popitem(last=False)
        return session

    def time_budget(self, info: ModelInfo, feeds: Feeds) -> float:
        """Seconds a run may take: ``max(min_seconds, budget_factor x time its gas pays for)``.

        Raises :class:`~ogevm.errors.InvalidInput` over the model's tensor-size limit.
        """
        paid_seconds = model_gas(info, feeds) * MODEL_RUN_NS_PER_GAS / 1e9
        return max(self.min_seconds, self.budget_factor * paid_seconds)

    def run_raw(self, info: ModelInfo, feeds: Feeds) -> list:
        """What onnxruntime returns for ``feeds``. Raises :class:`ModelExecutionError`.

        A run past its :meth:`time_budget` is stopped and fails the same way, with a
        reason that says so.
        """
        budget = self.time_budget(info, feeds)
        options = ort.RunOptions()
        try:
            session = self.session(info.cid)
            run_id = _WATCHDOG.start(options, budget)
            try:
                return session.run(None, dict(feeds), options)
            finally:
                _WATCHDOG.finish(run_id)
        except Exception as exc:  # onnxruntime's own exception types are not exported
            if options.terminate:
                raise ModelExecutionError(
                    f"model execution stopped: it ran past its time budget of {budget:.3g} s"
                ) from exc
            # The reason can end up in contract state: keep it free of version-specific text.
            raise ModelExecutionError("model execution failed: onnxruntime rejected the input") from exc

    def run(self, info: ModelInfo, feeds: Feeds) -> ModelOutput:
        """Run the model and encode its outputs canonically.

        Raises :class:`ModelExecutionError` when onnxruntime fails and
        :class:`~ogevm.errors.InvalidOutput` when an output cannot be encoded.
        """
        return encode_outputs(info, self.run_raw(info, feeds))


class _Watchdog:
    """One daemon thread that sets ``terminate`` on the run options of runs past their deadline.

    onnxruntime checks the flag between nodes, so a stopped run ends at the next node.
    Cheaper than a timer thread per run, which would cost more than a small model's run.
    The thread sleeps until the earliest deadline of a run still going (``_wake_at``) and is
    woken only by a run due earlier, so back-to-back short runs do not wake it per run.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._deadlines: list[tuple[float, int]] = []
        self._running: dict[int, ort.RunOptions] = {}
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._wake_at = math.inf

    def start(self, options: ort.RunOptions, seconds: float) -> int:
        """Terminate the run using ``options`` if it has not finished after ``seconds``.

        Returns the id to :meth:`finish` the run with (two plain calls per run: a context
        manager costs more than that on the precompile's path)."""
        run_id = next(self._ids)
        deadline = time.monotonic() + seconds
        with self._condition:
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="ogevm-run-watchdog", daemon=True)
                self._thread.start()
            self._running[run_id] = options
            heapq.heappush(self._deadlines, (deadline, run_id))
            if deadline < self._wake_at:
                self._condition.notify()
        return run_id

    def finish(self, run_id: int) -> None:
        """The run :meth:`start` returned ``run_id`` for has ended."""
        with self._condition:
            del self._running[run_id]
            if len(self._deadlines) > 2 * len(self._running) + 64:  # drop finished runs
                self._deadlines = [(d, i) for d, i in self._deadlines if i in self._running]
                heapq.heapify(self._deadlines)

    def _watch(self) -> None:
        with self._condition:
            while True:
                now = time.monotonic()
                while self._deadlines:  # drop finished runs, stop those past their deadline
                    deadline, run_id = self._deadlines[0]
                    options = self._running.get(run_id)
                    if options is not None and deadline > now:
                        break
                    heapq.heappop(self._deadlines)
                    if options is not None:
                        options.terminate = True
                self._wake_at = self._deadlines[0][0] if self._deadlines else math.inf
                self._condition.wait(self._wake_at - now if self._deadlines else None)


_WATCHDOG = _Watchdog()


def stack_feeds(info: ModelInfo, batch: list[Feeds], size: int) -> tuple[dict[str, np.ndarray], list[int]]:
    """Concatenate several requests' feeds along the leading dimension, padded to ``size`` rows
    with copies of the last row (so the run has a verified shape; their outputs are dropped);
    return each request's row count."""
    sizes = [len(feeds[info.inputs[0].name]) for feeds in batch]
    padding = size - sum(sizes)
    stacked = {}
    for spec in info.inputs:
        arrays = [feeds[spec.name] for feeds in batch]
        stacked[spec.name] = np.concatenate([*arrays, np.repeat(arrays[-1][-1:], padding, axis=0)])
    return stacked, sizes
