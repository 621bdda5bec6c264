"""JSON-RPC over WebSocket on the node's port: every method, eth_subscribe (newHeads, logs,
newPendingTransactions, og_pipeTransitions) with web3.py, ethers v6 and a raw client, and
the inputs a careless or hostile client sends.

The node and its server run in this process (the server's event loop in a thread), so a
test can look at the server's sessions and hold its loop still to make a client slow.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from contextlib import ExitStack, contextmanager

import pytest
from hypothesis import given, settings, strategies as st

from ogevm.abi.codec import MODEL_INFERENCE_EVENT_TOPIC
from ogevm.node.node import DevNode, NodeConfig
from ogevm.node.rpc import RpcMethods
from ogevm.node.server import MAX_BODY_BYTES, ThreadedServer
from ogevm.node.subscriptions import NEW_HEADS, PIPE, SubscriptionHub, SubscriptionLimits

from node_helpers import DEV_KEYS, FIXTURES, artifact, model_bytes, sign
from test_ethers import ETHERS_DIR, node_js  # noqa: F401 (node_js is a fixture)

web3 = pytest.importorskip("web3", reason="web3.py is not installed")
from web3 import AsyncWeb3, Web3, WebSocketProvider  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402 (websockets comes with web3)
from websockets.sync.client import connect  # noqa: E402

INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, PARSE_ERROR, LIMIT_EXCEEDED = (
    -32600, -32601, -32602, -32700, -32005)
SOMEONE = "0x" + "42" * 20
FEATURES = [(1, 0), (2, 0), (3, 0), (4, 0)]  # linear_regression: 7.1
#: Fields of eth_getBlockByNumber that a newHeads notification leaves out (as geth).
NOT_IN_HEADER = {"transactions", "uncles", "withdrawals", "size", "totalDifficulty"}


class Served:
    """An RpcServer on a free port with its event loop in a thread."""

    def __init__(self, node: DevNode, limits: SubscriptionLimits = SubscriptionLimits()) -> None:
        self.threaded = ThreadedServer(RpcMethods(node), limits=limits)
        self.loop, self.server = self.threaded.loop, self.threaded.server
        self.http, self.ws = self.threaded.url, self.threaded.ws_url

    def on_loop(self, function, *args):
        """Run ``function`` on the server's loop and return its result."""
        async def run():
            return function(*args)
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def stop(self) -> None:
        self.threaded.stop()

    def rpc(self, method: str, *params):
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
        request = urllib.request.Request(self.http, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        if "error" in answer:
            raise AssertionError(f"{method}: {answer['error']}")
        return answer["result"]


@pytest.fixture(scope="module")
def node():
    running = DevNode(NodeConfig(sim_workers=0)).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def served(node):
    server = Served(node)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def w3(served) -> Web3:
    return Web3(Web3.HTTPProvider(served.http, request_kwargs={"timeout": 30}))


@pytest.fixture(scope="module")
def forecast(served, w3):
    """PriceForecast deployed (over HTTP) with the linear_regression model."""
    cid = served.rpc("og_addModel", "0x" + model_bytes("linear_regression").hex())
    art = artifact("PriceForecast")
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    receipt = _send(w3, DEV_KEYS[2], factory.constructor(cid, "x", "y"))
    return w3.eth.contract(address=receipt.contractAddress, abi=art["abi"])


def _send(w3: Web3, key: str, function, wait: bool = True):
    """Sign ``function`` with ``key`` and send it over HTTP; its receipt, or its hash."""
    account = w3.eth.account.from_key(key)
    tx = function.build_transaction({"from": account.address, "gas": 2_000_000,
                                     "nonce": w3.eth.get_transaction_count(account.address, "pending")})
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    if not wait:
        return tx_hash.to_0x_hex()
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.05)
    assert receipt.status == 1, receipt
    return receipt


def wait_until(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


# --- a raw client -----------------------------------------------------------------------------
class Client:
    """A plain WebSocket JSON-RPC client that keeps notifications apart from answers."""

    def __init__(self, url: str) -> None:
        self._opened = ExitStack()
        self.socket = self._opened.enter_context(connect(url, max_size=None, open_timeout=10))
        self.notes: list[dict] = []
        self._ids = 0

    def request(self, method: str, *params) -> dict:
        self._ids += 1
        self.socket.send(json.dumps({"jsonrpc": "2.0", "id": self._ids, "method": method, "params": list(params)}))
        return self.answer(lambda a: isinstance(a, dict) and a.get("id") == self._ids)

    def result(self, method: str, *params):
        answer = self.request(method, *params)
        assert "result" in answer, answer
        return answer["result"]

    def answer(self, wanted, timeout: float = 10.0):
        """The next message ``wanted`` accepts; notifications read meanwhile are kept."""
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.socket.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            if wanted(message):
                return message
            assert isinstance(message, dict) and message.get("method") == "eth_subscription", message
            self.notes.append(message["params"])

    def until(self, done, timeout: float = 30.0) -> None:
        """Read notifications until ``done()`` holds."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"not reached in {timeout} s; notifications: {self.notes[-5:]}")
            try:
                self.answer(lambda m: False, timeout=0.2)
            except TimeoutError:
                pass

    def notes_of(self, sub_id: str, count: int, timeout: float = 30.0) -> list:
        """At least ``count`` notifications of ``sub_id`` (results, or an error object)."""
        self.until(lambda: len(self.of(sub_id)) >= count, timeout)
        return self.of(sub_id)

    def of(self, sub_id: str) -> list:
        """The notifications of ``sub_id`` read so far."""
        return [n.get("result", n.get("error")) for n in self.notes if n["subscription"] == sub_id]

    def close(self) -> None:
        self._opened.close()


@contextmanager
def client(served: Served):
    opened = Client(served.ws)
    try:
        yield opened
    finally:
        opened.close()


def _transfer(served: Served, key: str, nonce: int | None = None, **fees) -> tuple[str, str]:
    if nonce is None:
        nonce = int(served.rpc("eth_getTransactionCount", _address(key), "pending"), 16)
    return sign(key, nonce, SOMEONE, value=1, gas=21_000, **fees)


def _address(key: str) -> str:
    from eth_account import Account
    return Account.from_key(key).address


# --- plain JSON-RPC over WebSocket ----------------------------------------------------------------
def test_methods_batches_and_errors_answer_as_over_http(served):
    with client(served) as ws:
        assert ws.result("eth_chainId") == "0x7a69"
        assert ws.result("eth_blockNumber") == served.rpc("eth_blockNumber")
        error = ws.request("eth_nope")["error"]
        assert error == {"code": METHOD_NOT_FOUND, "message": "the method eth_nope does not exist/is not available"}
        error = ws.request("eth_getBalance", "0xzz")["error"]
        assert error["code"] == INVALID_PARAMS and error["message"].startswith("invalid params: address")
        ws.socket.send(json.dumps([{"jsonrpc": "2.0", "id": "a", "method": "eth_chainId"},
                                   {"jsonrpc": "2.0", "id": "b", "method": "net_version"},
                                   {"jsonrpc": "2.0", "method": "eth_chainId"},  # a notification: no answer
                                   {"jsonrpc": "1.0", "id": "c", "method": "eth_chainId"}]))
        batch = ws.answer(lambda m: isinstance(m, list))
        assert {a["id"]: a.get("result", a.get("error", {}).get("code")) for a in batch} == \
            {"a": "0x7a69", "b": "31337", "c": INVALID_REQUEST}
        ws.socket.send(json.dumps({"jsonrpc": "2.0", "method": "eth_chainId"}))  # a notification
        assert ws.result("net_version") == "31337"  # the next message is this answer, not one to the notification


def test_subscriptions_exist_only_over_websocket(served):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}).encode()
    request = urllib.request.Request(served.http, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        error = json.loads(response.read())["error"]
    assert error["code"] == METHOD_NOT_FOUND and "only available over WebSocket" in error["message"]


def test_plain_get_is_the_page_and_a_bad_handshake_is_400(served):
    with urllib.request.urlopen(served.http, timeout=10) as response:
        assert response.status == 200 and "html" in response.headers["Content-Type"]
    bad = urllib.request.Request(served.http, headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(bad, timeout=10)
    assert refused.value.code == 400


# --- web3.py -------------------------------------------------------------------------------------
def test_web3_receives_heads_logs_pending_and_the_pipe_lifecycle(served, w3, forecast):
    """A forecast tx sent over HTTP: its pending hash, the PIPE path to included (the same
    path og_getTransactionStatus keeps), the block's header, and exactly its Forecast log."""

    async def watch():
        async with AsyncWeb3(WebSocketProvider(served.ws)) as ws3:
            heads = await ws3.eth.subscribe("newHeads")
            logs = await ws3.eth.subscribe("logs", {"address": forecast.address})
            pending = await ws3.eth.subscribe("newPendingTransactions")
            pipe = await ws3.eth.subscribe("og_pipeTransitions")
            tx_hash = await asyncio.to_thread(_send, w3, DEV_KEYS[3], forecast.functions.forecast(FEATURES), False)
            seen: dict[str, list] = {heads: [], logs: [], pending: [], pipe: []}
            async with asyncio.timeout(60):
                async for message in ws3.socket.process_subscriptions():
                    seen[message["subscription"]].append(message["result"])
                    mine = [t for t in seen[pipe] if t["txHash"] == tx_hash]
                    if mine and mine[-1]["state"] == "included" and seen[logs] and \
                            any(h["number"] >= mine[-1]["block"] for h in seen[heads]):
                        return tx_hash, seen[heads], seen[logs], seen[pending], mine

    tx_hash, heads, logs, pending, path = asyncio.run(watch())
    receipt = w3.eth.get_transaction_receipt(tx_hash)
    assert tx_hash in [h.to_0x_hex() for h in pending]
    states = [t["state"] for t in path]
    history = served.rpc("og_getTransactionStatus", tx_hash)["history"]
    assert states == [t["state"] for t in history]
    assert states[0] == "pending" and states[-1] == "included" and "inferring" in states and "ready" in states
    assert path[-1]["block"] == receipt.blockNumber and path[-1]["passes"] >= 2
    head = next(h for h in heads if h["number"] == receipt.blockNumber)
    assert head["hash"] == receipt.blockHash and head["stateRoot"] == w3.eth.get_block(receipt.blockNumber).stateRoot
    (event_log,) = [entry for entry in logs if entry["transactionHash"].to_0x_hex() == tx_hash]
    event = forecast.events.Forecast().process_log(event_log)
    assert (event.args.value, event.args.decimals) == (71, 1)
    assert event_log["logIndex"] == receipt.logs[-1].logIndex  # the precompile's log comes first


# --- a raw client: exact shapes ---------------------------------------------------------------------
def test_notifications_match_the_polling_methods_exactly(served, w3, forecast):
    """newHeads is eth_getBlockByNumber without the body fields; a logs subscription's
    notifications are eth_getLogs's entries, under the same address and topic rules."""
    with client(served) as ws:
        heads = ws.result("eth_subscribe", "newHeads")
        every_log = ws.result("eth_subscribe", "logs")
        precompile_topic = "0x" + MODEL_INFERENCE_EVENT_TOPIC.hex()
        inference_logs = ws.result("eth_subscribe", "logs", {"topics": [precompile_topic]})
        nothing = ws.result("eth_subscribe", "logs", {"address": SOMEONE})
        full = ws.result("eth_subscribe", "newPendingTransactions", True)
        receipt = _send(w3, DEV_KEYS[4], forecast.functions.forecast(FEATURES))
        number = hex(receipt.blockNumber)
        block = served.rpc("eth_getBlockByNumber", number, False)
        header = next(h for h in ws.notes_of(heads, 1) if h["number"] == number)
        assert header == {k: v for k, v in block.items() if k not in NOT_IN_HEADER}
        expected = served.rpc("eth_getLogs", {"fromBlock": number, "toBlock": number})
        assert len(expected) == 2
        assert [n for n in ws.notes_of(every_log, 2) if n["blockNumber"] == number] == expected
        assert [n for n in ws.notes_of(inference_logs, 1) if n["blockNumber"] == number] == \
            served.rpc("eth_getLogs", {"fromBlock": number, "toBlock": number, "topics": [precompile_topic]})
        tx = next(t for t in ws.notes_of(full, 1) if t["hash"] == receipt.transactionHash.to_0x_hex())
        mined = served.rpc("eth_getTransactionByHash", tx["hash"])
        assert tx == {**mined, "blockHash": None, "blockNumber": None, "transactionIndex": None}
        assert ws.result("eth_unsubscribe", nothing) is True
        assert ws.of(nothing) == []


def test_pipe_stream_shows_a_rejection_with_its_reason(served):
    """A tx waiting behind a nonce gap is replaced: the stream says rejected, and why."""
    key = DEV_KEYS[5]
    with client(served) as ws:
        pipe = ws.result("eth_subscribe", "og_pipeTransitions")
        nonce = int(served.rpc("eth_getTransactionCount", _address(key), "pending"), 16)
        first_raw, first = _transfer(served, key, nonce + 1)
        bumped_raw, bumped = _transfer(served, key, nonce + 1, max_fee=11 * 10**9, tip=11 * 10**8)
        gap_raw, gap = _transfer(served, key, nonce)
        for raw in (first_raw, bumped_raw, gap_raw):
            ws.result("eth_sendRawTransaction", raw)
        ws.until(lambda: any(t["txHash"] == bumped and t["state"] == "included" for t in ws.of(pipe)))
        replaced = [t for t in ws.of(pipe) if t["txHash"] == first]
        assert [t["state"] for t in replaced] == ["pending", "rejected"]
        assert replaced[-1]["reason"] == f"replaced by {bumped}" and replaced[-1]["block"] is None
        assert [t["state"] for t in ws.of(pipe) if t["txHash"] == gap][-1] == "included"


# --- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize("params, name", [
    (["newBlocks"], "type: unknown subscription type 'newBlocks'"),
    ([], "type: missing parameter 0"),
    ([7], "type: must be a string"),
    (["logs", {"address": "0xzz"}], "filter.address"),
    (["logs", {"topics": 5}], "filter.topics"),
    (["logs", {"fromBlock": "0x1"}], "filter.fromBlock: not supported by a logs subscription"),
    (["logs", []], "filter: must be an object"),
    (["newHeads", {}], "params: newHeads takes no options"),
    (["newPendingTransactions", "yes"], "fullTransactions: must be true or false"),
    (["og_pipeTransitions", None, None], "params: too many"),
])
def test_bad_subscribe_params_name_the_problem(served, params, name):
    with client(served) as ws:
        error = ws.request("eth_subscribe", *params)["error"]
        assert error["code"] == INVALID_PARAMS and error["message"].startswith(f"invalid params: {name}"), error
        assert ws.result("eth_chainId") == "0x7a69"


def test_subscription_params_must_be_an_array(served):
    with client(served) as ws:
        for method in ("eth_subscribe", "eth_unsubscribe"):
            ws.socket.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": {"type": "newHeads"}}))
            error = ws.answer(lambda m: m.get("id") == 1)["error"]
            assert error == {"code": INVALID_PARAMS, "message": "invalid params: params must be an array"}


def test_unsubscribe_of_unknown_ids_is_false(served):
    with client(served) as ws, client(served) as other:
        sub_id = ws.result("eth_subscribe", "newHeads")
        assert other.result("eth_unsubscribe", sub_id) is False  # ids belong to their connection
        assert ws.result("eth_unsubscribe", "0x" + "00" * 16) is False
        assert ws.result("eth_unsubscribe", sub_id) is True
        assert ws.result("eth_unsubscribe", sub_id) is False
        error = ws.request("eth_unsubscribe", 5)["error"]
        assert error["code"] == INVALID_PARAMS and error["message"].startswith("invalid params: subscriptionId")
        assert ws.request("eth_unsubscribe")["error"]["code"] == INVALID_PARAMS


def test_a_connection_holds_at_most_the_limit_of_subscriptions(served):
    limit = SubscriptionLimits().subscriptions
    with client(served) as ws:
        flood = [{"jsonrpc": "2.0", "id": i, "method": "eth_subscribe", "params": ["og_pipeTransitions"]}
                 for i in range(limit + 1)]
        ws.socket.send(json.dumps(flood))
        answers = ws.answer(lambda m: isinstance(m, list))
        refused = [a for a in answers if "error" in a]
        assert len(refused) == 1 and refused[0]["error"]["code"] == LIMIT_EXCEEDED
        assert f"the limit is {limit}" in refused[0]["error"]["message"]
        kept = [a["result"] for a in answers if "result" in a]
        assert len(set(kept)) == limit
        assert ws.result("eth_unsubscribe", kept[0]) is True
        assert ws.result("eth_subscribe", "newHeads").startswith("0x")


def test_frames_that_are_not_json_rpc(served):
    with client(served) as ws:
        ws.socket.send("not json")
        assert ws.answer(lambda m: True)["error"]["code"] == PARSE_ERROR
        ws.socket.send(b"\xff\xfe")
        error = ws.answer(lambda m: True)["error"]
        assert error["code"] == PARSE_ERROR and "not UTF-8" in error["message"]
        ws.socket.send(b'{"jsonrpc": "2.0", "id": 9, "method": "eth_chainId"}')  # binary JSON: answered as text
        assert ws.answer(lambda m: True) == {"jsonrpc": "2.0", "id": 9, "result": "0x7a69"}
        ws.socket.send("[" * 100)
        assert ws.answer(lambda m: True)["error"]["code"] == INVALID_REQUEST
        ws.socket.send("[]")
        assert ws.answer(lambda m: True)["error"]["message"] == "invalid request: empty batch"
        assert ws.result("eth_chainId") == "0x7a69"
    with client(served) as ws, client(served) as bystander:
        ws.socket.send("x" * (MAX_BODY_BYTES + 1))
        with pytest.raises(ConnectionClosed) as closed:
            ws.socket.recv(timeout=30)
        assert closed.value.rcvd.code == 1009  # message too big
        assert bystander.result("eth_chainId") == "0x7a69"


def test_a_client_vanishing_mid_stream_leaves_nothing_behind(served):
    sessions = served.on_loop(lambda: len(served.server.hub.sessions))
    key = DEV_KEYS[6]
    with client(served) as watcher:
        heads = watcher.result("eth_subscribe", "newHeads")
        leaver = Client(served.ws)
        for kind in ("newHeads", "og_pipeTransitions", "logs", "newPendingTransactions"):
            leaver.result("eth_subscribe", kind)
        raw, first = _transfer(served, key)
        served.rpc("eth_sendRawTransaction", raw)
        leaver.socket.socket.shutdown(socket.SHUT_RDWR)  # no close frame: the TCP connection just ends
        leaver.socket.socket.close()
        wait_until(lambda: served.on_loop(lambda: len(served.server.hub.sessions)) == sessions + 1)
        assert served.on_loop(lambda: +served.server.hub.demand) == {"newHeads": 1}
        raw, second = _transfer(served, key)
        served.rpc("eth_sendRawTransaction", raw)
        wait_until(lambda: served.rpc("eth_getTransactionReceipt", second) is not None)
        number = served.rpc("eth_getTransactionReceipt", second)["blockNumber"]
        watcher.until(lambda: any(h["number"] == number for h in watcher.of(heads)))


def test_a_slow_client_loses_its_subscription_not_the_node(node, served):
    """A client whose outbox overflows: the subscription is closed with an error
    notification after the notifications that fit; a reader elsewhere gets every event."""
    slow_server = Served(node, SubscriptionLimits(outbox=4))
    try:
        with client(slow_server) as slow, client(served) as reader:
            slow_sub = slow.result("eth_subscribe", "newPendingTransactions")
            reader_sub = reader.result("eth_subscribe", "newPendingTransactions")
            gate = threading.Event()
            slow_server.loop.call_soon_threadsafe(gate.wait, 30)  # the slow server's loop stands still
            key = DEV_KEYS[7]
            nonce = int(served.rpc("eth_getTransactionCount", _address(key), "pending"), 16)
            sent = []
            for i in range(10):
                raw, tx_hash = _transfer(served, key, nonce + i)
                served.rpc("eth_sendRawTransaction", raw)
                sent.append(tx_hash)
            gate.set()
            notes = slow.notes_of(slow_sub, 5)
            assert notes[:4] == sent[:4]
            assert notes[4]["code"] == LIMIT_EXCEEDED and "subscription closed" in notes[4]["message"]
            assert slow.result("eth_unsubscribe", slow_sub) is False  # closed by the server
            assert slow.result("eth_chainId") == "0x7a69"  # the connection itself goes on
            assert [h for h in reader.notes_of(reader_sub, 10) if h in sent] == sent
            wait_until(lambda: served.rpc("eth_getTransactionReceipt", sent[-1]) is not None)
            assert len(slow.of(slow_sub)) == 5
    finally:
        slow_server.stop()


def test_stopping_the_server_closes_its_connections_and_unhooks_it(node):
    second = Served(node)
    hub = second.server.hub
    with client(second) as ws:
        ws.result("eth_subscribe", "newHeads")
        assert hub._on_block in node.block_listeners
        started = time.monotonic()
        second.stop()
        assert time.monotonic() - started < 5
        with pytest.raises(ConnectionClosed) as closed:
            ws.socket.recv(timeout=10)
        assert closed.value.rcvd.code == 1001  # going away
    assert not hub.sessions and not +hub.demand
    assert hub._on_block not in node.block_listeners and hub._on_transition not in node.pipeline.pool.listeners


@settings(max_examples=200, deadline=None)
@given(limit=st.integers(1, 5),
       steps=st.lists(st.one_of(st.tuples(st.just("event"), st.sampled_from([NEW_HEADS, PIPE])),
                                st.tuples(st.just("read"), st.integers(0, 4))), max_size=40))
def test_outbox_keeps_order_and_bound_and_closes_only_the_overflowing_subscription(limit, steps):
    """A session's outbox against a model: each subscription gets its events in order; an
    event that finds ``limit`` notifications waiting closes that subscription, whose last
    message is then one error; answers are never dropped."""
    session = SubscriptionHub(node=None).open(SubscriptionLimits(outbox=limit))
    created: list[str] = []
    ids = {kind: session.call("eth_subscribe", [kind], created) for kind in (NEW_HEADS, PIPE)}
    session.send('"an answer"')
    session.announce(created)
    received: dict[str, list] = {sub_id: [] for sub_id in ids.values()}
    answers, queued, sent, open_ids = 0, 0, {kind: 0 for kind in ids}, set(ids.values())
    for action, value in steps:
        if action == "event":
            sub_id = ids[value]
            sent[value] += 1
            session.deliver(value, str(sent[value]))
            if sub_id in open_ids:
                if queued >= limit:
                    open_ids.discard(sub_id)
                else:
                    queued += 1
            assert set(session.subscriptions) == open_ids
            continue
        for _ in range(value):
            message = session.next_message()
            if message is None:
                assert queued == 0
                break
            decoded = json.loads(message[0])
            if "params" not in decoded:
                answers += 1
                continue
            note = decoded["params"]
            received[note["subscription"]].append(note.get("result", note.get("error")))
            queued -= "result" in note
    while (message := session.next_message()) is not None:
        decoded = json.loads(message[0])
        if "params" in decoded:
            received[decoded["params"]["subscription"]].append(
                decoded["params"].get("result", decoded["params"].get("error")))
        else:
            answers += 1
    assert answers == 1
    for kind, sub_id in ids.items():
        got = received[sub_id]
        results = [n for n in got if isinstance(n, int)]
        assert results == list(range(1, len(results) + 1))  # in order, from the first, no gaps
        errors = [n for n in got if isinstance(n, dict)]
        if sub_id in open_ids:
            assert not errors and len(results) == sent[kind]
        else:
            assert len(errors) == 1 and got[-1]["code"] == LIMIT_EXCEEDED and len(results) < sent[kind]


# --- ethers v6 ---------------------------------------------------------------------------------------
def test_ethers_v6_websocket_provider(served, node_js):
    """ws_check.mjs: ethers' block, pending and event subscriptions and the og_ stream, all
    over one WebSocketProvider."""
    done = subprocess.run(
        [node_js, "ws_check.mjs", served.ws, str(FIXTURES / "contracts" / "PriceForecast.json"),
         str(FIXTURES / "models" / "linear_regression.onnx")],
        cwd=ETHERS_DIR, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"ws_check.mjs failed:\n{done.stdout}\n{done.stderr}"
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    receipt = served.rpc("eth_getTransactionReceipt", summary["forecastTx"])
    assert summary["ok"] is True and summary["event"] == {"value": "71", "decimals": "1"}
    assert summary["pending"] == summary["forecastTx"]
    assert int(receipt["blockNumber"], 16) in summary["blocks"]
    assert summary["pipe"][0] == "pending" and summary["pipe"][-1] == "included"
