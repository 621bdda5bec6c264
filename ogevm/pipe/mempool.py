"""The transaction pool: admission, per-sender nonce queues, replacement, eviction,
and the lifecycle every accepted transaction goes through.

States: ``pending`` (accepted; waits for simulation, or for a nonce gap to close) ->
``simulated`` (its inference requests are known) -> ``inferring`` (the executor runs
them) -> ``ready`` (every request it made has a result) -> ``included``; or
``deferred`` (its replay in the builder met a request without a result: that request
runs next) and ``rejected`` with a reason. A transaction never leaves the pool without a terminal
state (``included`` or ``rejected``) that :meth:`TxPool.status` keeps answering.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Iterator

from eth.abc import SignedTransactionAPI, StateAPI

from ogevm.errors import TransactionRejected
from ogevm.pipe.admission import AdmissionRules
from ogevm.records import InferenceRecord, InferenceRequest, RequestId

#: A replacement must raise both fee caps by at least this many percent (as geth).
REPLACEMENT_BUMP_PERCENT = 10


class TxState(str, Enum):
    PENDING = "pending"
    SIMULATED = "simulated"
    INFERRING = "inferring"
    READY = "ready"
    INCLUDED = "included"
    DEFERRED = "deferred"
    REJECTED = "rejected"


TERMINAL = (TxState.INCLUDED, TxState.REJECTED)


@dataclass(frozen=True)
class PoolLimits:
    """How much of the pool one sender may hold (the defaults follow geth's).

    A transaction is *queued* when a nonce gap separates it from the sender's account
    nonce (it cannot run yet); the others are *executable*. When the pool is full, a
    sender over ``account_slots`` loses its highest-nonce transaction first; below that,
    the cheapest transaction goes for a better-paying one.
    """

    capacity: int = 4096
    #: Transactions a sender keeps before it is the first to be evicted.
    account_slots: int = 16
    #: Queued (nonce-gapped) transactions a sender may have.
    max_queued_per_sender: int = 64
    #: Seconds a queued transaction waits for its gap to close before it is dropped.
    queued_lifetime: float = 3 * 3600.0


@dataclass
class PoolEntry:
    """A transaction in the pool and what PIPE knows about it (owned by the pool)."""

    tx: SignedTransactionAPI
    sender: bytes
    arrival: int
    state: TxState = TxState.PENDING
    reason: str | None = None
    requests: tuple[InferenceRequest, ...] = ()
    records: dict[RequestId, InferenceRecord] = field(default_factory=dict)
    rounds: int = 0
    deferrals: int = 0
    #: Whether a simulation has captured its requests (it is not simulated again: the
    #: builder's replay confirms them, and finds any request they missed).
    simulated: bool = False
    #: EVM passes spent on it: simulations and replay attempts.
    passes: int = 0
    #: The builder is replaying it into a block right now (it cannot be replaced or evicted).
    building: bool = False
    #: Why the executor last failed to run one of its requests (they went back to the rounds).
    executor_failure: str | None = None
    block_number: int | None = None
    #: ``time.monotonic()`` at admission (queued txs expire after ``queued_lifetime``).
    admitted_at: float = field(default_factory=time.monotonic)
    #: Every state it has been in, in order: what an explorer draws as its timeline.
    history: list[Transition] = field(default_factory=list)

    @property
    def hash(self) -> bytes:
        return self.tx.hash

    @property
    def nonce(self) -> int:
        return self.tx.nonce


@dataclass(frozen=True)
class Transition:
    """One step of a transaction's path through PIPE, as subscribers and explorers see it."""

    tx_hash: bytes
    state: TxState
    reason: str | None
    #: Wall-clock time (``time.time()``) of the step.
    at: float
    rounds: int
    passes: int
    block_number: int | None

    def to_json(self) -> dict:
        return {"txHash": "0x" + self.tx_hash.hex(), "state": self.state.value, "reason": self.reason,
                "at": round(self.at, 6), "rounds": self.rounds, "passes": self.passes, "block": self.block_number}


@dataclass(frozen=True)
class TxStatus:
    """What a user can ask about a transaction."""

    state: TxState
    reason: str | None
    requests: tuple[str, ...]
    block_number: int | None
    history: tuple[Transition, ...]


class TxPool:
    """Accepted transactions by sender and nonce; thread-safe."""

    def __init__(self, rules: AdmissionRules, limits: PoolLimits = PoolLimits()) -> None:
        self.rules = rules
        self.limits = limits
        self._by_sender: dict[bytes, dict[int, PoolEntry]] = {}
        self._by_hash: dict[bytes, PoolEntry] = {}
        self._finished: dict[bytes, PoolEntry] = {}
        self._arrivals = itertools.count()
        self.lock = threading.RLock()
        #: Called with each entry that reaches a terminal state (a node persists it).
        self.on_finish = None
        #: Called with every :class:`Transition`, under the pool's lock: listeners must be
        #: quick and must not raise (a subscription queues the event and returns).
        self.listeners: list[Callable[[Transition], None]] = []
        #: How many transitions there have been (a cheap "did anything change?").
        self.transitions = 0

    # --- admission ----------------------------------------------------------------
    def add(self, tx: SignedTransactionAPI, state: StateAPI, base_fee: int,
            on_admit: Callable[[PoolEntry], None] | None = None) -> bytes:
        """Accept ``tx`` or raise :class:`TransactionRejected` with the reason.

        A tx with the nonce of a queued one replaces it only with both fee caps raised by
        ``REPLACEMENT_BUMP_PERCENT``; a sender may queue at most ``max_queued_per_sender``
        txs behind a nonce gap; a full pool makes room as :class:`PoolLimits` says. The
        admission rules run before the pool's lock is taken; ``on_admit(entry)`` runs under
        it, before any other thread can see the entry (a node persists the tx there).
        """
        self.rules.check(tx, state, base_fee)
        with self.lock:
            if tx.hash in self._by_hash:
                raise TransactionRejected("already known")
            sender = tx.sender
            queue = self._by_sender.get(sender, {})
            old = queue.get(tx.nonce)
            if old is not None:
                if not _bumps(tx, old.tx):
                    raise TransactionRejected(
                        f"replacement transaction underpriced: raise both fee caps by at least "
                        f"{REPLACEMENT_BUMP_PERCENT}%")
                if old.state is TxState.INFERRING:
                    raise TransactionRejected("cannot replace a transaction whose inference is running")
                if old.building:
                    raise TransactionRejected("cannot replace a transaction that is being included in a block")
                self._finish(old, TxState.REJECTED, f"replaced by 0x{tx.hash.hex()}")
            else:
                account_nonce = state.get_nonce(sender)
                if tx.nonce > _next_free_nonce(queue, account_nonce):
                    queued = sum(1 for n in queue if n > _next_free_nonce(queue, account_nonce))
                    if queued >= self.limits.max_queued_per_sender:
                        raise TransactionRejected(
                            f"too many queued transactions: this sender already has {queued} waiting "
                            f"behind a nonce gap (account nonce {account_nonce})")
                if len(self._by_hash) >= self.limits.capacity:
                    self._evict_for(tx, sender)
            entry = PoolEntry(tx, sender, next(self._arrivals))
            self._by_sender.setdefault(sender, {})[tx.nonce] = entry
            self._by_hash[tx.hash] = entry
            if on_admit is not None:
                on_admit(entry)
            self._record(entry)
            return tx.hash

    def _evict_for(self, tx: SignedTransactionAPI, sender: bytes) -> None:
        """Make room for ``tx``: the largest sender over its slots loses its last tx; else
        the cheapest tx goes if ``tx`` pays a better tip."""
        largest = max(self._by_sender, key=lambda s: len(self._by_sender[s]))
        if len(self._by_sender[largest]) > self.limits.account_slots:
            if largest == sender:
                raise TransactionRejected(
                    f"transaction pool is full and this sender holds the most transactions "
                    f"({len(self._by_sender[largest])})")
            victims = [e for e in self._by_sender[largest].values() if _evictable(e)]
            if victims:
                victim = max(victims, key=lambda e: e.nonce)
                self._finish(victim, TxState.REJECTED, "evicted: the pool is full and this sender held the most "
                                                       "transactions")
                return
        candidates = [e for e in self._by_hash.values() if _evictable(e)]
        cheapest = min(candidates, key=lambda e: (e.tx.max_priority_fee_per_gas, -e.arrival), default=None)
        if cheapest is None or cheapest.tx.max_priority_fee_per_gas >= tx.max_priority_fee_per_gas:
            raise TransactionRejected("transaction pool is full")
        self._finish(cheapest, TxState.REJECTED, "evicted: the pool is full and this tx paid least")

    # --- lifecycle ------------------------------------------------------------------
    def get(self, tx_hash: bytes) -> PoolEntry | None:
        with self.lock:
            return self._by_hash.get(tx_hash) or self._finished.get(tx_hash)

    def status(self, tx_hash: bytes) -> TxStatus | None:
        """The state of ``tx_hash``, including finished ones; None if never accepted."""
        with self.lock:
            entry = self.get(tx_hash)
            if entry is None:
                return None
            return TxStatus(entry.state, entry.reason, tuple(str(r.id) for r in entry.requests),
                            entry.block_number, tuple(entry.history))

    def set_state(self, entry: PoolEntry, state: TxState, reason: str | None = None) -> None:
        with self.lock:
            if state in TERMINAL:
                self._finish(entry, state, reason)
            elif (entry.state, entry.reason) != (state, reason):
                entry.state, entry.reason = state, reason
                self._record(entry)

    def _finish(self, entry: PoolEntry, state: TxState, reason: str | None) -> None:
        entry.state, entry.reason = state, reason
        self._by_hash.pop(entry.hash, None)
        queue = self._by_sender.get(entry.sender, {})
        if queue.get(entry.nonce) is entry:
            del queue[entry.nonce]
        if not queue:
            self._by_sender.pop(entry.sender, None)
        self._finished[entry.hash] = entry
        self._record(entry)
        if self.on_finish is not None:
            self.on_finish(entry)

    def _record(self, entry: PoolEntry) -> None:
        step = Transition(entry.hash, entry.state, entry.reason, time.time(), entry.rounds, entry.passes,
                          entry.block_number)
        entry.history.append(step)
        self.transitions += 1
        for listener in self.listeners:
            listener(step)

    def drop_stale(self, nonce_of) -> None:
        """Reject txs whose nonce the chain has passed (another tx with it was included),
        and queued txs whose nonce gap stayed open longer than ``queued_lifetime``."""
        expired = time.monotonic() - self.limits.queued_lifetime
        with self.lock:
            for sender, queue in list(self._by_sender.items()):
                account_nonce = nonce_of(sender)
                free = _next_free_nonce(queue, account_nonce)
                for entry in list(queue.values()):
                    if entry.building:  # its block may be imported and not settled yet
                        continue
                    if entry.nonce < account_nonce:
                        self._finish(entry, TxState.REJECTED, "nonce already used on chain")
                    elif entry.nonce > free and entry.admitted_at < expired:
                        self._finish(entry, TxState.REJECTED,
                                     f"dropped: nonce gap before it (at nonce {free}) not filled within "
                                     f"{self.limits.queued_lifetime:g} s")

    # --- views ------------------------------------------------------------------------
    def executable(self, nonce_of) -> Iterator[list[PoolEntry]]:
        """Per sender, the queued txs from the account's next nonce on, without a gap."""
        with self.lock:
            for sender, queue in list(self._by_sender.items()):
                nonce = nonce_of(sender)
                run = []
                while nonce in queue:
                    run.append(queue[nonce])
                    nonce += 1
                if run:
                    yield run

    def __len__(self) -> int:
        return len(self._by_hash)

    def entries(self) -> list[PoolEntry]:
        with self.lock:
            return list(self._by_hash.values())

    def restore(self, entries: list[PoolEntry], forget: list[bytes]) -> None:
        """Hold exactly ``entries`` and forget the finished txs ``forget`` (a dev node's
        ``evm_revert`` puts back the pool of a snapshot). No terminal state is recorded and no
        listener called: for the chain the dropped transactions never happened."""
        with self.lock:
            self._by_sender, self._by_hash = {}, {entry.hash: entry for entry in entries}
            for entry in entries:
                self._by_sender.setdefault(entry.sender, {})[entry.nonce] = entry
            for tx_hash in [*forget, *self._by_hash]:
                self._finished.pop(tx_hash, None)


def _evictable(entry: PoolEntry) -> bool:
    """Neither its inference nor its inclusion is under way."""
    return entry.state is not TxState.INFERRING and not entry.building


def _next_free_nonce(queue: dict[int, PoolEntry], account_nonce: int) -> int:
    """The first nonce from ``account_nonce`` on that ``queue`` does not hold: txs above it
    are queued behind a gap."""
    nonce = account_nonce
    while nonce in queue:
        nonce += 1
    return nonce


def _bumps(new: SignedTransactionAPI, old: SignedTransactionAPI) -> bool:
    factor = 100 + REPLACEMENT_BUMP_PERCENT
    return (new.max_fee_per_gas * 100 >= old.max_fee_per_gas * factor
            and new.max_priority_fee_per_gas * 100 >= old.max_priority_fee_per_gas * factor)
