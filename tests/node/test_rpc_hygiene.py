"""JSON-RPC hygiene: the transport refuses hostile bodies with an error object (never a crash),
every bad parameter is -32602 naming it, and every answer is valid JSON."""

from __future__ import annotations

import http.client
import inspect
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ogevm.node import params
from ogevm.node.params import ParamError
from ogevm.node.rpc import RpcMethods
from ogevm.node.server import MAX_BATCH, MAX_BODY_BYTES, MAX_DEPTH, nesting_depth

from node_helpers import DEV_KEYS, address_of

PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS = -32700, -32600, -32602
SOMEONE = "0x" + "42" * 20


def strict_json(text: bytes):
    """``json.loads`` that refuses NaN/Infinity, as JavaScript's JSON.parse does."""
    def refuse(name):
        raise ValueError(f"{name} in an answer")
    return json.loads(text, parse_constant=refuse)


def send(node, body, headers=None, *, chunked=False) -> tuple[int, object]:
    """POST ``body`` (bytes, or an iterable of chunks when ``chunked``) with raw headers;
    (HTTP status, answer parsed strictly)."""
    connection = http.client.HTTPConnection("127.0.0.1", node.port, timeout=60)
    try:
        headers = {"Content-Type": "application/json"} if headers is None else headers
        connection.request("POST", "/", body=body, headers=headers, encode_chunked=chunked)
        response = connection.getresponse()
        assert response.getheader("Content-Type", "").startswith("application/json")
        return response.status, strict_json(response.read())
    finally:
        connection.close()


@pytest.fixture(autouse=True)
def still_serving(node):
    """After every test here: the node process lives and answers."""
    yield
    assert node.proc.poll() is None, node.log()
    assert node.rpc("eth_chainId") == "0x7a69"


def request(method, *values, request_id=1) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(values)}).encode()


# --- F2: nesting depth ---------------------------------------------------------------------
@pytest.mark.parametrize("body", [b"[" * 70_000, b'{"a":' * 70_000, b'{"jsonrpc": "2.0", "id": 1, "params": ' + b"[" * 100_000])
def test_deep_nesting_is_refused_before_parsing(node, body):
    status, answer = send(node, body)
    assert status == 200
    assert answer == {"jsonrpc": "2.0", "id": None,
                      "error": {"code": INVALID_REQUEST,
                                "message": f"invalid request: JSON nested deeper than {MAX_DEPTH} levels"}}


def test_nesting_at_the_limit_is_parsed(node):
    """64 levels in all (the object, then 63 of params) reach the method; 65 do not."""
    deep = "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2)
    body = f'{{"jsonrpc": "2.0", "id": 3, "method": "web3_sha3", "params": [{deep}]}}'.encode()
    assert nesting_depth(body) == MAX_DEPTH
    _, answer = send(node, body)
    assert answer["id"] == 3 and answer["error"]["code"] == INVALID_PARAMS
    assert answer["error"]["message"] == "invalid params: data: must be 0x-prefixed hex"
    _, answer = send(node, body.replace(b"[]", b"[[]]"))
    assert answer["error"]["code"] == INVALID_REQUEST and answer["id"] is None


def test_brackets_inside_strings_do_not_count(node):
    _, answer = send(node, request("web3_sha3", "[" * 10_000 + '\\"' + "{" * 10_000))
    assert answer["error"]["message"] == "invalid params: data: must be 0x-prefixed hex"


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\u00e9'),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text('[]{}"\\k'), inner, max_size=3),
                    max_leaves=30))
def test_nesting_depth_is_the_depth_the_parser_sees(value):
    def depth(v):
        children = v.values() if isinstance(v, dict) else v if isinstance(v, list) else None
        return 0 if children is None else 1 + max(map(depth, children), default=0)
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False, indent=2)):
        assert nesting_depth(text.encode()) == depth(value)


# --- F10: ids, body size, envelope -------------------------------------------------------------
@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999"])
def test_non_finite_id_is_a_parse_error_with_id_null(node, literal):
    status, answer = send(node, b'{"jsonrpc": "2.0", "id": ' + literal + b', "method": "eth_chainId"}')
    assert status == 200 and answer["id"] is None and answer["error"]["code"] == PARSE_ERROR


@pytest.mark.parametrize("request_id", [True, [1], {"a": 1}])
def test_id_of_a_wrong_type_is_not_echoed(node, request_id):
    _, answer = send(node, json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "eth_chainId"}).encode())
    assert answer["id"] is None and answer["error"]["code"] == INVALID_REQUEST
    assert "id must be a string, a number or null" in answer["error"]["message"]


@pytest.mark.parametrize("request_id", ["x", 0, -5, 2**70, 1.5, None])
def test_valid_ids_are_echoed(node, request_id):
    _, answer = send(node, json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "eth_chainId"}).encode())
    assert answer == {"jsonrpc": "2.0", "id": request_id, "result": "0x7a69"}


def test_chunked_body_over_the_limit_is_a_json_413(node):
    chunk = b" " * (1024 * 1024)
    # past the limit, and past twice the limit (where aiohttp itself would answer in plain text)
    status, answer = send(node, (chunk for _ in range(2 * MAX_BODY_BYTES // len(chunk) + 2)), chunked=True)
    assert status == 413 and answer["id"] is None
    assert answer["error"]["code"] == INVALID_REQUEST and "request body too large" in answer["error"]["message"]


def test_body_just_under_the_limit_is_served(node):
    payload = b"\x01" * ((MAX_BODY_BYTES - 200) // 2)
    body = request("web3_sha3", "0x" + payload.hex())
    assert len(body) <= MAX_BODY_BYTES
    status, answer = send(node, body)
    assert status == 200 and answer["result"].startswith("0x") and len(answer["result"]) == 66


def test_chunked_body_under_the_limit_is_served(node):
    status, answer = send(node, iter([b'{"jsonrpc": "2.0", ', b'"id": 9, "method": "eth_chainId"}']), chunked=True)
    assert status == 200 and answer == {"jsonrpc": "2.0", "id": 9, "result": "0x7a69"}


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_wrong_content_type_is_a_json_415(node, content_type):
    status, answer = send(node, request("eth_chainId"), {"Content-Type": content_type})
    assert status == 415 and answer["error"]["code"] == INVALID_REQUEST
    assert content_type in answer["error"]["message"] and "application/json" in answer["error"]["message"]


@pytest.mark.parametrize("headers", [{}, {"Content-Type": "application/json; charset=utf-8"},
                                     {"Content-Type": "application/json-rpc"}])
def test_json_or_missing_content_type_is_served(node, headers):
    status, answer = send(node, request("eth_chainId"), headers)
    assert status == 200 and answer["result"] == "0x7a69"


@pytest.mark.parametrize(("body", "code", "fragment"), [
    (b"", PARSE_ERROR, "empty body"),
    (b"  \n", PARSE_ERROR, "empty body"),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "x": "\xc3\x28"}', PARSE_ERROR, "not UTF-8"),
    (b"[]", INVALID_REQUEST, "empty batch"),
    (b"42", INVALID_REQUEST, "JSON-RPC 2.0 object or a batch"),
    (b'"eth_chainId"', INVALID_REQUEST, "JSON-RPC 2.0 object or a batch"),
    (b"null", INVALID_REQUEST, "JSON-RPC 2.0 object or a batch"),
])
def test_envelope_errors(node, body, code, fragment):
    _, answer = send(node, body)
    assert answer["id"] is None and answer["error"]["code"] == code and fragment in answer["error"]["message"]


def test_batch_limit(node):
    call = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}
    _, answers = send(node, json.dumps([call] * MAX_BATCH).encode())
    assert len(answers) == MAX_BATCH and {a["result"] for a in answers} == {"0x7a69"}
    _, answer = send(node, json.dumps([call] * (MAX_BATCH + 1)).encode())
    assert answer["error"]["code"] == INVALID_REQUEST
    assert answer["error"]["message"] == f"invalid request: batch of {MAX_BATCH + 1} calls; the limit is {MAX_BATCH}"


# --- F8: bad params are -32602 naming the parameter ---------------------------------------------
FROM = address_of(DEV_KEYS[5])


@pytest.mark.parametrize(("method", "values", "message"), [
    ("eth_feeHistory", ["0x1", "latest", 5], "rewardPercentiles: must be a list of numbers"),
    ("eth_feeHistory", ["0x1", "latest", {"a": 1}], "rewardPercentiles: must be a list of numbers"),
    ("eth_feeHistory", ["0x1", "latest", [50, 10]], "rewardPercentiles: percentiles must be ascending"),
    ("eth_feeHistory", ["0x1", "latest", [101]], "rewardPercentiles: 101 is not a number in 0..100"),
    ("eth_getStorageAt", [SOMEONE, hex(2**256)], "slot: quantity above 2^256-1"),
    ("eth_call", [{"to": SOMEONE, "value": hex(2**256)}], "transaction.value: quantity above 2^256-1"),
    ("eth_call", [{"to": SOMEONE, "gas": hex(2**64)}], "transaction.gas: quantity above 2^64-1"),
    ("eth_estimateGas", [{"to": SOMEONE, "value": hex(2**256)}], "transaction.value: quantity above 2^256-1"),
    ("eth_estimateGas", [{"to": SOMEONE, "gas": hex(2**64)}], "transaction.gas: quantity above 2^64-1"),
    ("eth_sendTransaction", [{"from": FROM, "to": SOMEONE, "value": hex(2**256)}],
     "transaction.value: quantity above 2^256-1"),
    ("eth_sendTransaction", [{"from": FROM, "to": SOMEONE, "gas": hex(2**64)}], "transaction.gas: quantity above 2^64-1"),
    ("eth_sendTransaction", [{"from": FROM, "to": SOMEONE, "nonce": hex(2**64)}],
     "transaction.nonce: quantity above 2^64-1"),
    ("eth_call", [{"data": "0x" + "00" * 49_153}],
     "transaction.data: init code is 49153 bytes; the limit is 49152 bytes (EIP-3860)"),
    ("eth_estimateGas", [{"input": "0x" + "00" * 49_153}],
     "transaction.input: init code is 49153 bytes; the limit is 49152 bytes (EIP-3860)"),
    ("eth_call", [{"to": SOMEONE, "data": "0x01", "input": "0x02"}], "transaction: both data and input are set and differ"),
    ("eth_call", [{"to": SOMEONE, "value": "-0x1"}], "transaction.value: must be a 0x-prefixed hex quantity"),
    ("eth_call", [{"to": SOMEONE, "value": -1}], "transaction.value: quantity must not be negative"),
    ("eth_getBalance", [SOMEONE, hex(2**64)], "block: quantity above 2^64-1"),
    ("eth_getBalance", [SOMEONE, "0x1_0"], "block: '0x1_0' is not a hex quantity"),
    ("eth_getBalance", [SOMEONE, "0x"], "block: '0x' is not a hex quantity"),
    ("eth_getCode", [SOMEONE + "0"], "address: must be hex with an even number of digits"),
    ("eth_getBlockByNumber", ["latest", "yes"], "fullTransactions: must be true or false"),
    ("eth_chainId", ["extra"], "params: too many: expected at most 0, got 1"),
    ("eth_getLogs", [{"topics": [None] * 5}], "filter.topics: at most 4 topic positions"),
    ("eth_getLogs", [{"blockHash": "0x" + "00" * 32, "fromBlock": "0x0"}],
     "filter: blockHash cannot be combined with fromBlock/toBlock"),
    ("eth_getLogs", [{"blockHash": "0x" + "00" * 32}], "filter.blockHash: unknown block 0x" + "00" * 32),
])
def test_bad_params_are_invalid_params_naming_the_param(node, method, values, message):
    answer = node.call(method, *values)
    assert answer["error"] == {"code": INVALID_PARAMS, "message": f"invalid params: {message}"}


def test_init_code_at_the_limit_runs(node):
    """49,152 zero bytes are STOP at once: a successful empty deployment."""
    assert node.rpc("eth_call", {"data": "0x" + "00" * 49_152}) == "0x"


def test_call_gas_is_capped_at_the_block_gas_limit(node):
    """A call asking for the largest gas gets at most the block gas limit (no unbounded call)."""
    gas_left = "0x5a60005260206000f3"  # init code returning GAS: GAS PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN
    left = int(node.rpc("eth_call", {"data": gas_left, "gas": hex(2**64 - 1)}), 16)
    assert 29_000_000 < left < int(node.rpc("eth_getBlockByNumber", "latest", False)["gasLimit"], 16)


def test_legacy_gas_price_is_used_for_both_fee_caps(node):
    price = int(node.rpc("eth_gasPrice"), 16)
    tx_hash = node.rpc("eth_sendTransaction", {"from": address_of(DEV_KEYS[5]), "to": SOMEONE, "value": "0x1",
                                               "gasPrice": hex(price)})
    node.wait_receipt(tx_hash)
    tx = node.rpc("eth_getTransactionByHash", tx_hash)
    assert int(tx["maxFeePerGas"], 16) == int(tx["maxPriorityFeePerGas"], 16) == price


# --- the validation layer ------------------------------------------------------------------------
def test_every_method_declares_its_params():
    """Each ``rpc_`` method takes exactly the parameters it declares (``@takes``)."""
    for name, method in inspect.getmembers(RpcMethods, inspect.isfunction):
        if name.startswith("rpc_"):
            declared = getattr(method, "params", ())
            assert len(inspect.signature(method).parameters) - 1 == len(declared), name


@pytest.mark.parametrize(("parse", "value", "expected"), [
    (params.uint256, "0x0", 0), (params.uint256, "0x00ff", 255), (params.uint256, 7, 7),
    (params.uint256, hex(2**256 - 1), 2**256 - 1), (params.uint64, "0x" + "0" * 100 + "1", 1),
    (params.data, "0x", b""), (params.data, "0xABcd", b"\xab\xcd"),
    (params.block, "pending", "pending"), (params.block, "0x10", 16),
    (params.block, {"blockHash": "0x" + "11" * 32, "requireCanonical": True}, b"\x11" * 32),
    (params.block, {"blockNumber": "0x2"}, 2),
    (params.percentiles, [0, 25.5, 25.5, 100], [0.0, 25.5, 25.5, 100.0]),
])
def test_parsers_accept(parse, value, expected):
    assert parse(value, "p") == expected


@pytest.mark.parametrize(("parse", "value"), [
    (params.uint256, hex(2**256)), (params.uint64, 2**64), (params.uint256, True), (params.uint256, 1.0),
    (params.uint256, "0x" + "f" * 10_000), (params.uint256, "0x1 "), (params.uint256, " 0x1"), (params.uint256, "1"),
    (params.data, "0x1"), (params.data, "0x 12"), (params.data, "12"), (params.data, b"\x12"),
    (params.address, "0x" + "00" * 19), (params.hash32, "0x" + "00" * 33),
    (params.block, "Latest"), (params.block, {"blockHash": "0x" + "11" * 32, "blockNumber": "0x1"}),
    (params.block, {"blockNumber": "0x1", "requireCanonical": True}), (params.block, None),
    (params.boolean, 1), (params.string, 5),
    (params.percentiles, [float("nan")]), (params.percentiles, [True]), (params.percentiles, list(range(101))),
    (params.call_object, {"maxFeePerGas": "0x1", "maxPriorityFeePerGas": "0x2"}),
    (params.call_object, {"gasPrice": "0x1", "maxFeePerGas": "0x1"}),
    (params.log_filter, {"address": [SOMEONE, 5]}), (params.log_filter, {"topics": [["0x" + "00" * 32, 1]]}),
])
def test_parsers_refuse_with_the_param_name(parse, value):
    with pytest.raises(ParamError) as refused:
        parse(value, "p")
    assert str(refused.value).startswith("p")


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=12), st.text(alphabet="0123456789abcdefABCDEFx _\n\u0661-+", max_size=70),
                 st.integers(0, 2**260).map(hex)))
def test_hex_parsers_match_the_reference_rules(text):
    """Quantities: 0x and at least one ASCII hex digit, at most 2^256-1; data: 0x and pairs."""
    digits = text[2:] if text.startswith("0x") else None
    is_hex = digits is not None and re.fullmatch(r"[0-9a-fA-F]*", digits, re.ASCII) is not None
    quantity = int(digits, 16) if is_hex and digits else None
    if quantity is not None and quantity <= params.UINT256_MAX:
        assert params.uint256(text, "q") == quantity
    else:
        assert refused_by(params.uint256, text)
    if is_hex and len(digits) % 2 == 0:
        assert params.data(text, "d") == bytes.fromhex(digits)
    else:
        assert refused_by(params.data, text)


def refused_by(parse, value) -> bool:
    try:
        parse(value, "p")
    except ParamError:
        return True
    return False
