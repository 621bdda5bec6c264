"""Fuzzing the WebSocket transport: random frames (text and binary), fuzzed eth_subscribe /
eth_unsubscribe params and batches mixing them with ordinary calls, on one long-lived
connection while transactions make notifications flow.

Every answer must be valid JSON: a result, or an error object with a documented code
(-32603, a bug, never). The connection survives every frame; when it closes, the server
holds none of its subscriptions; the node still mines.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections import Counter

import pytest
from hypothesis import given, strategies as st

from ogevm.node.node import DevNode, NodeConfig
from ogevm.node.rpc import RpcMethods
from ogevm.node.server import RpcServer
from ogevm.node.subscriptions import KINDS

from fuzz_budget import examples, fuzz_settings, report
from test_fuzz_rpc import bodies, check_answer, filters, json_values

pytest.importorskip("websockets", reason="websockets (installed with web3.py) is not installed")
from websockets.sync.client import connect  # noqa: E402

#: What any frame may be answered with: transport, params, limit (-32005), and what the
#: ordinary methods answer (reverts, rejected transactions).
CODES = {-32700, -32600, -32601, -32602, -32005, 3, -32003}

kinds = st.one_of(st.sampled_from(KINDS), st.text(max_size=12))
subscribe_params = st.one_of(
    st.tuples(kinds).map(list),
    st.tuples(st.just("logs"), st.one_of(filters, json_values)).map(list),
    st.tuples(st.just("newPendingTransactions"), st.one_of(st.booleans(), json_values)).map(list),
    st.tuples(kinds, json_values).map(list),
    st.lists(json_values, max_size=3),
)
unsubscribe_params = st.one_of(st.lists(json_values, max_size=2),
                               st.tuples(st.binary(min_size=16, max_size=16).map(lambda b: "0x" + b.hex())).map(list))
calls = st.one_of(
    subscribe_params.map(lambda p: ("eth_subscribe", p)),
    unsubscribe_params.map(lambda p: ("eth_unsubscribe", p)),
    st.sampled_from([("eth_chainId", []), ("eth_blockNumber", []), ("eth_subscribe", ["newHeads"])]),
)


def envelope(call: tuple[str, list], request_id) -> dict:
    method, values = call
    message = {"jsonrpc": "2.0", "method": method, "params": values}
    if request_id is not None:
        message["id"] = request_id
    return message


frames = st.one_of(
    bodies,  # raw bytes and JSON texts of the HTTP fuzzer
    st.tuples(calls, st.one_of(st.none(), st.integers(0, 10**6))).map(lambda c: json.dumps(envelope(*c))),
    st.lists(st.tuples(calls, st.integers(0, 10**6)), min_size=1, max_size=5).map(
        lambda cs: json.dumps([envelope(*c) for c in cs])),
)


@pytest.fixture(scope="module")
def served():
    node = DevNode(NodeConfig(sim_workers=0)).start()
    loop = asyncio.new_event_loop()
    server = RpcServer(RpcMethods(node), "127.0.0.1", 0)
    loop.run_until_complete(server.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield node, server, loop
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)
    node.stop()


def test_fuzz_frames_over_one_connection(served):
    node, server, loop = served
    count, codes = Counter(), Counter()
    sentinel = itertools.count()
    sender = node.chain.accounts[1]
    nonces = itertools.count(node.chain.nonce(sender.address))
    with connect(f"ws://127.0.0.1:{server.port}/", max_size=None) as ws:

        def answers_until_sentinel() -> list:
            """Send a sentinel call and return every answer that came before its own."""
            mark = f"sentinel-{next(sentinel)}"
            ws.send(json.dumps({"jsonrpc": "2.0", "id": mark, "method": "eth_chainId"}))
            found = []
            while True:
                message = json.loads(ws.recv(timeout=30))
                if isinstance(message, dict) and message.get("id") == mark:
                    assert message["result"] == "0x7a69"
                    return found
                if isinstance(message, dict) and message.get("method") == "eth_subscription":
                    count["notification"] += 1
                    continue
                found.append(message)

        @fuzz_settings(150)
        @given(frames)
        def run(frame):
            ws.send(frame)
            if count["frame"] % 10 == 0:  # notifications flow while the fuzzing goes on
                tx = node.chain.sign(sender, node.chain.accounts[9].address, value=1, gas=21_000, nonce=next(nonces))
                node.send_raw_transaction(tx.encode())
            for answer in answers_until_sentinel():
                for one in answer if isinstance(answer, list) else [answer]:
                    assert one["jsonrpc"] == "2.0" and "id" in one, one
                    codes[check_answer(one, CODES)] += 1
            count["frame"] += 1

        run()
    report("websocket frames", count["frame"])
    print(f"  answers by code (None: a result): {dict(codes)}; notifications read: {count['notification']}")
    assert count["frame"] >= min(examples(150), 50)
    deadline = time.monotonic() + 10
    while asyncio.run_coroutine_threadsafe(_held(server), loop).result(10):
        assert time.monotonic() < deadline, "the closed connection's subscriptions are still held"
        time.sleep(0.05)
    before = node.chain.head.block_number
    node.mine()
    assert node.chain.head.block_number == before + 1 and node.producer_failures == 0


async def _held(server: RpcServer) -> int:
    return len(server.hub.sessions) + sum(server.hub.demand.values())
