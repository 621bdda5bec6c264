"""Subscriptions over WebSocket: ``eth_subscribe`` / ``eth_unsubscribe`` as geth serves them,
plus ``og_pipeTransitions``, the PIPE lifecycle of every transaction.

Events happen on node threads: the pool records a transition under its lock, the producer
builds a block under the node's lock. The :class:`SubscriptionHub` turns each event into JSON
once, right there, only if some connection asked for its kind, and hands it to the event loop
with ``loop.call_soon_threadsafe``; it never waits for a client. On the loop, each connection's
:class:`Session` matches the event against its subscriptions and queues notifications in a
bounded outbox that one writer task drains to the socket. A client that reads too slowly
fills its outbox: the subscription whose notification did not fit is closed, and an error
notification follows the ones already queued; the connection and its other subscriptions go on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Callable

from ogevm.node import params
from ogevm.node.node import DevNode
from ogevm.node.params import LogFilter, Param, ParamError
from ogevm.node.rpc import INVALID_PARAMS, RpcError, block_json, log_json, log_matches, tx_json
from ogevm.pipe.builder import BuiltBlock
from ogevm.pipe.mempool import Transition, TxState

log = logging.getLogger("ogevm.node")

NEW_HEADS, LOGS, PENDING, PIPE = "newHeads", "logs", "newPendingTransactions", "og_pipeTransitions"
KINDS = (NEW_HEADS, LOGS, PENDING, PIPE)
#: Demand key of pending-transaction subscriptions that asked for whole transactions.
_PENDING_FULL = PENDING + "/full"
SUBSCRIBE, UNSUBSCRIBE = "eth_subscribe", "eth_unsubscribe"
METHODS = frozenset({SUBSCRIBE, UNSUBSCRIBE})
#: "Limit exceeded" (EIP-1474): too many subscriptions, or a client too slow to keep one.
LIMIT_EXCEEDED = -32005
#: Block fields a header notification leaves out, as geth's ``newHeads`` does.
_NOT_IN_HEADER = ("transactions", "uncles", "withdrawals", "size", "totalDifficulty")
_FILTER_KEYS = frozenset({"address", "topics"})


@dataclass(frozen=True)
class SubscriptionLimits:
    """What one WebSocket connection may hold: ``subscriptions`` at once, and ``outbox``
    notifications queued but not yet written to its socket."""

    subscriptions: int = 100
    outbox: int = 4096


@dataclass(frozen=True)
class Subscription:
    """One ``eth_subscribe``: its id, kind, and options (``criteria`` for logs, ``full`` for
    pending transactions)."""

    id: str
    kind: str
    criteria: LogFilter | None = None
    full: bool = False

    @property
    def demand(self) -> str:
        """The key under which the hub counts this subscription's kind of event."""
        return _PENDING_FULL if self.full else self.kind


def parse_subscription(values: list) -> Subscription:
    """The subscription ``eth_subscribe`` params ask for (with a fresh id). Raises ParamError."""
    if not values:
        raise ParamError("type", "missing parameter 0: the subscription type")
    if len(values) > 2:
        raise ParamError("params", f"too many: expected at most 2, got {len(values)}")
    kind = params.string(values[0], "type")
    option = values[1] if len(values) > 1 else None
    sub_id = "0x" + secrets.token_hex(16)
    if kind == LOGS:
        return Subscription(sub_id, kind, criteria=_log_criteria({} if option is None else option))
    if kind == PENDING:
        return Subscription(sub_id, kind, full=False if option is None else params.boolean(option, "fullTransactions"))
    if kind in KINDS:
        if option is not None:
            raise ParamError("params", f"{kind} takes no options")
        return Subscription(sub_id, kind)
    raise ParamError("type", f"unknown subscription type {kind[:80]!r}; expected one of {', '.join(KINDS)}")


def _log_criteria(option: Any) -> LogFilter:
    """A logs subscription's ``{address, topics}``: the eth_getLogs rules, without a block
    range (it streams the logs of blocks yet to come)."""
    if isinstance(option, dict) and not option.keys() <= _FILTER_KEYS:
        extra = sorted(option.keys() - _FILTER_KEYS)
        raise ParamError(f"filter.{extra[0]}", "not supported by a logs subscription, which streams the logs "
                                               "of new blocks; use address and topics")
    return params.log_filter(option, "filter")


UNSUBSCRIBE_PARAMS = (Param("subscriptionId", params.string),)


class Session:
    """One WebSocket connection: its subscriptions and what is queued for its socket.

    Lives on the event loop; only its hub's dispatch and the connection's handler call it.
    Answers are always queued (the connection bounds the requests in flight); notifications
    only while fewer than ``limits.outbox`` wait.
    """

    def __init__(self, hub: "SubscriptionHub", limits: SubscriptionLimits) -> None:
        self._hub, self._limits = hub, limits
        self.subscriptions: dict[str, Subscription] = {}
        #: Subscriptions whose id the client does not have yet (receive nothing until announced).
        self._unannounced: set[str] = set()
        #: (subscription id of a counted notification, else None; text; callback once written)
        self._outbox: deque[tuple[str | None, str, Callable[[], None] | None]] = deque()
        self._queued_notifications = 0
        self._wake = asyncio.Event()
        self.closed = False

    # --- requests ----------------------------------------------------------------------
    def call(self, method: str, values: Any, created: list[str]) -> Any:
        """Run ``eth_subscribe`` or ``eth_unsubscribe``; ids made are appended to ``created``
        and stay silent until :meth:`announce`. Raises :class:`RpcError`."""
        if values is None:
            values = []
        if not isinstance(values, list):
            raise RpcError(INVALID_PARAMS, "invalid params: params must be an array")
        try:
            if method == SUBSCRIBE:
                sub_id = self._subscribe(parse_subscription(values))
                created.append(sub_id)
                return sub_id
            (sub_id,) = params.parse_params(UNSUBSCRIBE_PARAMS, values)
            return self.unsubscribe(sub_id)
        except ParamError as exc:
            raise RpcError(INVALID_PARAMS, f"invalid params: {exc}") from exc

    def _subscribe(self, sub: Subscription) -> str:
        if len(self.subscriptions) >= self._limits.subscriptions:
            raise RpcError(LIMIT_EXCEEDED, f"too many subscriptions: this connection already holds "
                                           f"{len(self.subscriptions)} (the limit is {self._limits.subscriptions})")
        self.subscriptions[sub.id] = sub
        self._unannounced.add(sub.id)
        self._hub.demand[sub.demand] += 1
        return sub.id

    def announce(self, sub_ids: list[str]) -> None:
        """The answers carrying ``sub_ids`` are queued: their notifications may follow."""
        self._unannounced.difference_update(sub_ids)

    def unsubscribe(self, sub_id: str) -> bool:
        """Cancel ``sub_id``; False if this connection holds no such subscription."""
        sub = self.subscriptions.pop(sub_id, None)
        if sub is None:
            return False
        self._unannounced.discard(sub_id)
        self._hub.demand[sub.demand] -= 1
        return True

    def close(self) -> None:
        """The connection ended: cancel every subscription and drop what was queued."""
        for sub_id in list(self.subscriptions):
            self.unsubscribe(sub_id)
        self.closed = True
        self._outbox.clear()
        self._wake.set()

    # --- outgoing --------------------------------------------------------------------------
    def send(self, text: str, written: Callable[[], None] | None = None) -> None:
        """Queue an answer; ``written`` is called once it is on the socket (or dropped)."""
        if self.closed:
            if written is not None:
                written()
            return
        self._outbox.append((None, text, written))
        self._wake.set()

    def deliver(self, kind: str, payload: Any) -> None:
        """Notify the matching subscriptions of one event (see :class:`SubscriptionHub`)."""
        for sub in [s for s in self.subscriptions.values() if s.kind == kind and s.id not in self._unannounced]:
            if kind == LOGS:
                for entry, text in payload:
                    if log_matches(entry, sub.criteria) and not self._notify(sub, text):
                        break
            elif kind == PENDING:
                text = payload[1] if sub.full else payload[0]
                if text is not None:  # None: posted before any subscription wanted whole txs
                    self._notify(sub, text)
            else:
                self._notify(sub, payload)

    def _notify(self, sub: Subscription, result_text: str) -> bool:
        """Queue one notification; on overflow close ``sub`` instead and return False."""
        if sub.id not in self.subscriptions:
            return False
        if self._queued_notifications >= self._limits.outbox:
            self._overflow(sub)
            return False
        self._outbox.append((sub.id, _notification(sub.id, "result", result_text), None))
        self._queued_notifications += 1
        self._wake.set()
        return True

    def _overflow(self, sub: Subscription) -> None:
        """Close ``sub``: its last message is an error after what it already has queued."""
        self.unsubscribe(sub.id)
        error = RpcError(LIMIT_EXCEEDED, f"subscription closed: the client did not read its notifications "
                                         f"fast enough ({self._limits.outbox} were waiting)")
        self._outbox.append((None, _notification(sub.id, "error", json.dumps(error.to_json())), None))
        self._wake.set()
        log.info("closed %s subscription %s of a slow client", sub.kind, sub.id)

    def next_message(self) -> tuple[str, Callable[[], None] | None] | None:
        """The next message to write and its callback; None when nothing is queued."""
        if self.closed or not self._outbox:
            return None
        owner, text, written = self._outbox.popleft()
        if owner is not None:
            self._queued_notifications -= 1
        return text, written

    async def write(self, send: Callable[[str], Any]) -> None:
        """Write the outbox with ``send`` (an async ``WebSocketResponse.send_str``) until closed."""
        while not self.closed:
            await self._wake.wait()
            self._wake.clear()
            while (message := self.next_message()) is not None:
                text, written = message
                try:
                    await send(text)
                finally:
                    if written is not None:
                        written()


def _notification(sub_id: str, field: str, value_text: str) -> str:
    """An ``eth_subscription`` message around already-encoded JSON ``value_text``."""
    return (f'{{"jsonrpc":"2.0","method":"eth_subscription",'
            f'"params":{{"subscription":"{sub_id}","{field}":{value_text}}}}}')


def _encode(value: Any) -> str:
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


class SubscriptionHub:
    """Connects a node's events to the WebSocket sessions of one server.

    :meth:`attach` registers it with the node (pool transitions, built blocks) from the
    event loop that serves the sessions; :meth:`detach` undoes it.
    """

    def __init__(self, node: DevNode) -> None:
        self.node = node
        self.sessions: set[Session] = set()
        #: Subscriptions per kind (per :attr:`Subscription.demand`), across sessions; written
        #: on the loop, read by node threads to skip events nobody asked for.
        self.demand: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.node.pipeline.pool.listeners.append(self._on_transition)
        self.node.block_listeners.append(self._on_block)

    def detach(self) -> None:
        for listeners, listener in ((self.node.pipeline.pool.listeners, self._on_transition),
                                    (self.node.block_listeners, self._on_block)):
            if listener in listeners:
                listeners.remove(listener)
        for session in list(self.sessions):
            self.close(session)

    def open(self, limits: SubscriptionLimits) -> Session:
        session = Session(self, limits)
        self.sessions.add(session)
        return session

    def close(self, session: Session) -> None:
        session.close()
        self.sessions.discard(session)

    # --- node threads ---------------------------------------------------------------------
    def _on_transition(self, step: Transition) -> None:
        """A pool listener (under the pool's lock): one transition; ``pending`` is a tx just admitted."""
        if self.demand[PIPE]:
            self._post(PIPE, _encode(step.to_json()))
        if step.state is TxState.PENDING and (self.demand[PENDING] or self.demand[_PENDING_FULL]):
            full = None
            if self.demand[_PENDING_FULL]:
                entry = self.node.pipeline.pool.get(step.tx_hash)
                full = _encode(tx_json(entry.tx, None, None))
            self._post(PENDING, (_encode("0x" + step.tx_hash.hex()), full))

    def _on_block(self, built: BuiltBlock) -> None:
        """A block listener (the producer, under the node's lock): its header and its logs."""
        block = built.block
        if self.demand[NEW_HEADS]:
            header = {k: v for k, v in block_json(block, False).items() if k not in _NOT_IN_HEADER}
            self._post(NEW_HEADS, _encode(header))
        if self.demand[LOGS]:
            logs, index = [], 0
            for tx_index, receipt in enumerate(built.receipts):
                for entry in receipt.logs:
                    logs.append((entry, _encode(log_json(entry, block, tx_index, index))))
                    index += 1
            if logs:
                self._post(LOGS, logs)

    def _post(self, kind: str, payload: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self._dispatch, kind, payload)
        except RuntimeError:  # the loop closed while the server stopped: nobody is listening
            pass

    # --- event loop ----------------------------------------------------------------------
    def _dispatch(self, kind: str, payload: Any) -> None:
        for session in list(self.sessions):
            session.deliver(kind, payload)
