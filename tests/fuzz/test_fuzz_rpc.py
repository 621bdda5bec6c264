"""Fuzzing every JSON-RPC method of the dev node, in process and over real HTTP.

The methods are enumerated from the ``rpc_`` table, so a new method is fuzzed without
touching this file. Every answer must be a result that is valid JSON, or an error object
with a documented code; -32603 (a bug) never. A value the method's declared parser refuses
must be -32602: the coverage sweep checks every method x parameter x kind of bad value.
After the runs the node still answers and mines.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

import pytest
from hypothesis import given, strategies as st

from ogevm.node import params
from ogevm.node.node import DevNode, NodeConfig
from ogevm.node.params import ParamError
from ogevm.node.rpc import RpcError, RpcMethods
from ogevm.node.rpc.debug import trace_options
from ogevm.node.rpc.mock import mock_outcome
from ogevm.node.server import RpcServer

from fuzz_budget import examples, fuzz_settings, report

INVALID_PARAMS, INTERNAL_ERROR = -32602, -32603
#: Codes a method may answer (docs/RPC.md); the transport adds -32700, -32600, -32601.
METHOD_CODES = {INVALID_PARAMS, 3, -32003}
TRANSPORT_CODES = {-32700, -32600, -32601}
SOMEONE = "0x" + "42" * 20
PRECOMPILE = "0x" + "00" * 19 + "f4"
#: Dev accounts 1-3 (unlocked: eth_sendTransaction signs for them); 0 is the node's own.
DEV_ACCOUNTS = ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
                "0x90F79bf6EB2c797f573a8bE2f2F5a8eC0A1b56E7"]


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


# --- plausible values for each parser, and bad values by kind -------------------------------------
def hexq(n: int) -> str:
    return hex(n)


quantities = st.one_of(st.integers(0, 1000), st.integers(0, 2**64 - 1), st.sampled_from([0, 2**64 - 1, 2**256 - 1])).map(hexq)
hex_data = st.binary(max_size=48).map(lambda b: "0x" + b.hex())
addresses = st.one_of(st.sampled_from([SOMEONE, PRECOMPILE, "0x" + "00" * 20, *DEV_ACCOUNTS]), st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()))
hashes = st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex())
blocks = st.one_of(st.sampled_from(sorted(params.BLOCK_TAGS)), st.integers(0, 5).map(hexq),
                   st.fixed_dictionaries({"blockHash": hashes}), st.fixed_dictionaries({"blockNumber": st.integers(0, 3).map(hexq)}))
call_objects = st.fixed_dictionaries({}, optional={
    "from": st.one_of(st.sampled_from(DEV_ACCOUNTS), addresses), "to": st.one_of(st.none(), addresses), "gas": st.integers(0, 100_000).map(hexq),
    "value": st.integers(0, 10**18).map(hexq), "data": hex_data, "nonce": st.integers(0, 3).map(hexq),
    "maxFeePerGas": st.integers(0, 10**11).map(hexq), "maxPriorityFeePerGas": st.integers(0, 10**9).map(hexq),
    "type": st.just("0x2"), "chainId": st.just("0x7a69"), "accessList": st.just([])})
filters = st.fixed_dictionaries({}, optional={
    "fromBlock": st.sampled_from(["earliest", "latest", "0x0", "0x1"]), "toBlock": st.sampled_from(["latest", "0x1"]),
    "address": st.one_of(addresses, st.lists(addresses, max_size=3)),
    "topics": st.lists(st.one_of(st.none(), hashes, st.lists(hashes, max_size=2)), max_size=4)})
PLAUSIBLE = {
    params.address: addresses, params.hash32: hashes, params.uint64: quantities, params.uint256: quantities,
    params.data: hex_data, params.block: blocks, params.boolean: st.booleans(),
    params.string: st.one_of(st.sampled_from(["0x1", "0x2", "0x3"]), st.text(max_size=12)),
    params.percentiles: st.lists(st.floats(0, 100), max_size=5).map(sorted),
    params.call_object: call_objects, params.log_filter: filters,
}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
BAD_SCALARS = {
    "huge_number": st.integers(2**64, 2**300).flatmap(lambda n: st.sampled_from([hex(n), n])),
    "negative": st.one_of(st.integers(max_value=-1), st.integers(1, 2**70).map(lambda n: "-" + hex(n))),
    "bad_hex": st.one_of(
        st.sampled_from(["0x", "0X1", "0xzz", "0x1 ", " 0x1", "0x_1", "0x1_0", "12", "0x\u0661", "0x+1", "0xabc"]),
        st.text(alphabet="0123456789abcdefxXg _-\u0661", max_size=14)),
    "wrong_type": st.one_of(st.booleans(), st.floats(allow_nan=False, allow_infinity=False), st.lists(json_values, max_size=3),
                            st.dictionaries(st.text(max_size=6), json_values, max_size=3)),
    "nested": st.integers(2, 40).map(nested),
}
CALL_FIELDS = ["from", "to", "gas", "gasPrice", "maxFeePerGas", "maxPriorityFeePerGas", "value", "data", "input",
               "nonce", "fromBlock", "toBlock", "blockHash", "address", "topics"]
BAD_VALUES = {
    **BAD_SCALARS,
    "bad_field": st.tuples(call_objects, st.dictionaries(st.sampled_from(CALL_FIELDS), st.one_of(*BAD_SCALARS.values()),
                                                         min_size=1, max_size=3)).map(lambda pair: {**pair[0], **pair[1]}),
    "random_json": json_values,
}
#: One representative of each kind of bad value, for the coverage sweep.
REPRESENTATIVES = {
    "huge_number": hex(2**256), "negative": -1, "bad_hex": "0xzz", "wrong_type": [[1]], "float": 1.5,
    "nested": nested(30), "empty_string": "", "bad_field": {"value": "0xzz", "address": [1], "topics": 5},
}


def plausible(parser) -> st.SearchStrategy:
    """Values that look right for ``parser`` (random JSON for a parser this file does not know)."""
    return PLAUSIBLE.get(parser, json_values)


def refused(parser, value) -> bool:
    try:
        parser(value, "p")
    except ParamError:
        return True
    return False


@st.composite
def cases(draw, table: dict) -> tuple[str, str, list, bool]:
    """(method, kind of mutation, params, whether -32602 is due): plausible params for the
    method's declared parameters, then one mutation: a bad value of some kind, too many or
    too few params, a random list, or none."""
    method = draw(st.sampled_from(sorted(table)))
    spec = getattr(table[method], "params", ())
    values = [draw(plausible(p.parse)) for p in spec]
    kind = draw(st.sampled_from(["none", "too_many", "too_few", "random_list", *BAD_VALUES]))
    due = False
    if kind == "too_many":
        values += draw(st.lists(json_values, min_size=1, max_size=3))
        due = True
    elif kind == "too_few":
        values = values[:draw(st.integers(0, max(len(values) - 1, 0)))]
        due = any(p.default is params.REQUIRED for p in spec[len(values):])
    elif kind == "random_list":
        values = draw(st.lists(json_values, max_size=5))
    elif kind in BAD_VALUES and spec:
        index = draw(st.integers(0, len(spec) - 1))
        values[index] = draw(BAD_VALUES[kind])
        value, param = values[index], spec[index]
        due = param.default is params.REQUIRED if value is None else refused(param.parse, value)  # null: absent
    return method, kind, values, due


def check_answer(answer: dict | RpcError, allowed: set[int]) -> int | None:
    """The error code of an answer (None for a result), after checking it is well-formed."""
    if isinstance(answer, RpcError):
        answer = {"error": answer.to_json()}
    if "error" in answer:
        error = answer["error"]
        assert error["code"] != INTERNAL_ERROR, error
        assert error["code"] in allowed, error
        assert isinstance(error["message"], str) and error["message"], error
        return error["code"]
    json.dumps(answer["result"], allow_nan=False)
    return None


# --- in process --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def node():
    running = DevNode(NodeConfig()).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def methods(node) -> RpcMethods:
    return RpcMethods(node)


def test_every_refused_value_is_invalid_params(methods):
    """Coverage sweep: for every method, every declared parameter and every kind of bad
    value its parser refuses, and for too many / too few params, the answer is -32602."""
    covered, pairs = Counter(), set()
    for method, handler in sorted(methods.table.items()):
        spec = getattr(handler, "params", ())
        good = [_good_value(p.parse) for p in spec]
        for index, param in enumerate(spec):
            for kind, value in REPRESENTATIVES.items():
                if refused(param.parse, value):
                    values = good[:index] + [value] + good[index + 1:]
                    _assert_invalid_params(methods, method, values)
                    covered[kind] += 1
                    pairs.add((method, kind))
        _assert_invalid_params(methods, method, good + ["extra"])
        pairs.add((method, "too_many"))
        required = sum(p.default is params.REQUIRED for p in spec)
        if required:
            _assert_invalid_params(methods, method, [])
            pairs.add((method, "too_few"))
    report("rpc coverage (method x bad-param kind, -32602)", len(pairs))
    print(f"  {len(methods.table)} methods; bad values per kind: {dict(sorted(covered.items()))}")
    assert {m for m, _ in pairs} == set(methods.table)


def _good_value(parser):
    good = {params.address: SOMEONE, params.hash32: "0x" + "00" * 32, params.uint64: "0x1", params.uint256: "0x1",
            params.data: "0x", params.block: "latest", params.boolean: False, params.string: "0x1",
            params.percentiles: [50], params.call_object: {"to": SOMEONE}, params.log_filter: {},
            trace_options: {"tracer": "callTracer"}, mock_outcome: {"error": "x"}}
    return good[parser]


def _assert_invalid_params(methods, method, values):
    with pytest.raises(RpcError) as answer:
        methods.call(method, values)
    assert answer.value.code == INVALID_PARAMS, (method, values, answer.value.message)
    assert answer.value.message.startswith("invalid params: "), answer.value.message


def test_fuzz_methods_in_process(node, methods):
    codes: Counter = Counter()
    started = time.monotonic()

    @fuzz_settings(400)
    @given(cases(methods.table))
    def run(case):
        method, kind, values, due = case
        try:
            answer = {"result": methods.call(method, values)}
        except RpcError as exc:
            answer = exc
        code = check_answer(answer, METHOD_CODES)
        if due:
            assert code == INVALID_PARAMS, (method, values, answer)
        codes[(method, kind, code)] += 1

    run()
    elapsed = time.monotonic() - started
    report("rpc in-process", codes.total())
    by_code = Counter()
    for (_, _, code), n in codes.items():
        by_code[code] += n
    invalid = {(method, kind) for method, kind, code in codes if code == INVALID_PARAMS}
    print(f"  {elapsed:.1f} s; answers by code (None: a result): {dict(by_code)}; "
          f"(method, kind) pairs answered -32602: {len(invalid)}")
    assert codes.total() >= min(examples(400), 100)
    _still_serving(methods, node)


def _still_serving(methods, node):
    before = node.chain.head.block_number
    assert methods.call("evm_mine", []) == "0x0"
    assert int(methods.call("eth_blockNumber", []), 16) == before + 1
    assert node.producer_failures == 0


# --- over HTTP ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(methods):
    """The real aiohttp server on a free port, its event loop in a thread."""
    loop = asyncio.new_event_loop()
    served = RpcServer(methods, "127.0.0.1", 0)
    loop.run_until_complete(served.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield served
    asyncio.run_coroutine_threadsafe(served.stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)


def post(server, body: bytes, content_type: str = "application/json") -> tuple[int, object]:
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}/", body, {"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read()

    def refuse(name):
        raise AssertionError(f"{name} in an answer: {text[:200]!r}")
    return status, json.loads(text, parse_constant=refuse)


bodies = st.one_of(
    st.binary(max_size=64),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.integers(60, 200).map(lambda n: b"[" * n),
    st.sampled_from([b'{"jsonrpc":"2.0","id":NaN,"method":"eth_chainId"}', b'{"id":1e999}', b"[]", b"", b"\xff",
                     b'{"jsonrpc":"2.0","id":[1],"method":"eth_chainId"}']),
)


def test_fuzz_over_http(node, methods, server):
    """Envelopes with fuzzed params (single and in batches) and raw fuzzed bodies."""
    count = Counter()
    table = methods.table

    @fuzz_settings(120)
    @given(st.one_of(
        st.lists(cases(table), min_size=1, max_size=3).map(lambda cs: ("batch", cs)),
        cases(table).map(lambda c: ("single", [c])),
        bodies.map(lambda b: ("raw", b))))
    def run(item):
        shape, content = item
        if shape == "raw":
            status, answer = post(server, content)
            answers = answer if isinstance(answer, list) else [answer]
        else:
            calls = [{"jsonrpc": "2.0", "id": i, "method": m, "params": v} for i, (m, _, v, _) in enumerate(content)]
            status, answer = post(server, json.dumps(calls if shape == "batch" else calls[0]).encode())
            answers = answer if shape == "batch" else [answer]
            assert sorted(a["id"] for a in answers) == list(range(len(calls)))
        assert status in (200, 413, 415)
        for one in answers:
            if one == {}:  # the answer to a notification
                continue
            assert one["jsonrpc"] == "2.0" and "id" in one, one
            check_answer(one, METHOD_CODES | TRANSPORT_CODES)
        count[shape] += 1

    run()
    report("rpc over HTTP", sum(count.values()))
    print(f"  requests by shape: {dict(count)}")
    assert sum(count.values()) >= min(examples(120), 50)
    _, answer = post(server, b'{"jsonrpc": "2.0", "id": 1, "method": "evm_mine", "params": []}')
    assert answer["result"] == "0x0"
    _still_serving(methods, node)
