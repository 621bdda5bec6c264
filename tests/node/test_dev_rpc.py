"""The anvil / Hardhat dev controls of the node, with web3.py over HTTP against a real node
process: snapshots, mining, time travel, state setters, impersonation, dump/load, txpool,
access lists, precompiles, and a -32602 naming the parameter for each bad input.

The node is this module's own: these controls change its clock and mining mode."""

from __future__ import annotations

import gzip
import json
import time

import pytest
from hypothesis import given, settings, strategies as st

from ogevm.node.dump import parse_state
from ogevm.node.snapshots import Snapshots
from ogevm.node.params import ParamError

from node_helpers import DEV_KEYS, JsonRpcError, NodeProcess, address_of, artifact, model_bytes, sign

web3 = pytest.importorskip("web3", reason="web3.py is not installed")
from web3 import Web3  # noqa: E402

FEATURES = [(1, 0), (2, 0), (3, 0), (4, 0)]  # linear_regression: 7.1
#: SLOAD slot 0, MSTORE it at 0, RETURN 32 bytes: the contract answers its slot 0.
RETURN_SLOT0 = "0x60005460005260206000f3"


OWN_NODE = True  # its state changes would leak into other modules (see conftest)


@pytest.fixture(scope="module")
def forecast(node, w3):
    """PriceForecast on the linear_regression model, deployed by dev account 1."""
    cid = node.rpc("og_addModel", "0x" + model_bytes("linear_regression").hex())
    art = artifact("PriceForecast")
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    tx_hash = factory.constructor(cid, "x", "y").transact({"from": w3.eth.accounts[1]})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.05)
    return w3.eth.contract(address=receipt.contractAddress, abi=art["abi"])


@pytest.fixture
def manual(node):
    """Blocks only on demand during the test (automine off), automine again after."""
    assert node.rpc("evm_setAutomine", False) is True
    yield
    node.rpc("evm_setAutomine", True)


def fresh_address(tag: int) -> str:
    return Web3.to_checksum_address("0x" + f"{tag:02x}" * 20)


def wait_state(node, tx_hash: str, states: set[str], timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while (status := node.rpc("og_getTransactionStatus", tx_hash))["state"] not in states:
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    return status


def invalid(node, method: str, *params) -> str:
    """The message of the -32602 the call must answer."""
    with pytest.raises(JsonRpcError) as error:
        node.rpc(method, *params)
    assert error.value.code == -32602, (method, params, error.value.message)
    return error.value.message


def head(w3):
    return w3.eth.get_block("latest")


# --- snapshots ------------------------------------------------------------------------------------
def test_snapshot_and_revert_restore_chain_pool_records_and_models(node, w3, forecast, manual):
    sender = w3.eth.accounts[2]
    pooled = forecast.functions.forecast(FEATURES).transact({"from": sender})
    wait_state(node, pooled.to_0x_hex(), {"ready"})  # its inference ran: it waits for a block
    records = node.rpc("og_getInferenceRecords", pooled.to_0x_hex())
    assert records and records[0]["output"]["numbers"][0]["decimal"] == ["7.1"]
    snapshot_head, sender_balance = head(w3), w3.eth.get_balance(sender)
    models = {m["cid"] for m in node.rpc("og_listModels")}
    snapshot = node.rpc("evm_snapshot")

    later_model = node.rpc("og_addModel", "0x" + model_bytes("small_mlp").hex())
    node.rpc("evm_mine")
    assert w3.eth.get_transaction_receipt(pooled).status == 1
    later = w3.eth.send_transaction({"from": w3.eth.accounts[3], "to": fresh_address(0x51), "value": 5})
    node.rpc("evm_mine")
    node.rpc("anvil_setBalance", sender, "0x1")
    assert head(w3).number == snapshot_head.number + 2

    assert node.rpc("evm_revert", snapshot) is True
    assert head(w3).hash == snapshot_head.hash and w3.eth.get_balance(sender) == sender_balance
    assert w3.eth.get_balance(fresh_address(0x51)) == 0
    assert node.rpc("eth_getTransactionReceipt", pooled.to_0x_hex()) is None
    assert node.rpc("og_getTransactionStatus", pooled.to_0x_hex())["state"] not in ("included", "rejected")
    assert node.rpc("og_getInferenceRecords", pooled.to_0x_hex()) == records
    assert node.rpc("eth_getTransactionByHash", later.to_0x_hex()) is None
    assert "never accepted" in invalid(node, "og_getTransactionStatus", later.to_0x_hex())
    assert {m["cid"] for m in node.rpc("og_listModels")} == models and later_model not in models
    assert node.rpc("txpool_status") == {"pending": "0x1", "queued": "0x0"}
    assert node.rpc("evm_revert", snapshot) is False  # used up
    assert node.rpc("evm_revert", "0x99") is False

    node.rpc("evm_mine")  # the restored pool is mined again, with the same result
    receipt = w3.eth.get_transaction_receipt(pooled)
    assert receipt.status == 1 and receipt.blockNumber == snapshot_head.number + 1
    assert node.rpc("og_getInferenceRecords", pooled.to_0x_hex())[0]["output"] == records[0]["output"]


def test_revert_drops_later_snapshots(node, w3):
    first, second = node.rpc("anvil_snapshot"), node.rpc("evm_snapshot")
    assert int(second, 16) == int(first, 16) + 1
    node.rpc("evm_mine")
    assert node.rpc("anvil_revert", first) is True
    assert node.rpc("evm_revert", second) is False


# --- mining and time --------------------------------------------------------------------------
def test_mining_modes(node, w3):
    assert node.rpc("anvil_getAutomine") is True and node.rpc("hardhat_getAutomine") is True
    assert node.rpc("anvil_setAutomine", False) is None
    try:
        assert node.rpc("hardhat_getAutomine") is False
        tx = w3.eth.send_transaction({"from": w3.eth.accounts[4], "to": fresh_address(0x52), "value": 1})
        wait_state(node, tx.to_0x_hex(), {"ready"})
        time.sleep(0.3)
        assert node.rpc("eth_getTransactionReceipt", tx.to_0x_hex()) is None
        assert node.rpc("evm_mine") == "0x0"
        assert w3.eth.get_transaction_receipt(tx).status == 1
        start = head(w3).number
        assert node.rpc("evm_setIntervalMining", 1000) is True  # ms, as Hardhat
        deadline = time.monotonic() + 10
        while head(w3).number < start + 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert node.rpc("anvil_setIntervalMining", 0) is None  # s, as anvil; 0 stops
        time.sleep(0.2)
        stopped = head(w3).number
        time.sleep(1.5)
        assert head(w3).number == stopped
    finally:
        node.rpc("evm_setIntervalMining", 0)
        node.rpc("evm_setAutomine", True)


def test_time_travel_shows_in_block_timestamps(node, w3):
    wall = int(time.time())
    offset = node.rpc("evm_increaseTime", 3600)
    assert offset >= 3600 and node.rpc("anvil_increaseTime", "0x3c") == offset + 60
    node.rpc("evm_mine")
    assert head(w3).timestamp >= wall + offset + 60
    target = head(w3).timestamp + 1000
    assert node.rpc("evm_setNextBlockTimestamp", target) is None
    node.rpc("evm_mine")
    assert head(w3).timestamp == target
    node.rpc("evm_mine", target + 50)
    assert head(w3).timestamp == target + 50
    node.rpc("evm_mine")  # later blocks follow on from there, not from the wall clock
    assert target + 50 < head(w3).timestamp < target + 60
    start = head(w3)
    assert node.rpc("hardhat_mine", "0x3", "0x3c") is True
    blocks = [w3.eth.get_block(start.number + i) for i in range(1, 4)]
    assert [b.timestamp - a.timestamp for a, b in zip(blocks, blocks[1:])] == [60, 60]
    assert node.rpc("anvil_mine", 2) is None and head(w3).number == start.number + 5
    assert head(w3).timestamp - w3.eth.get_block(start.number + 4).timestamp == 1  # default interval
    assert "not after the latest block" in invalid(node, "evm_setNextBlockTimestamp", head(w3).timestamp)
    assert "timestamp" in invalid(node, "evm_mine", 5)


# --- state -------------------------------------------------------------------------------------------
def test_state_setters_in_both_namespaces(node, w3):
    target, number = fresh_address(0x53), head(w3).number
    assert node.rpc("anvil_setBalance", target, hex(10**20)) is None
    assert node.rpc("hardhat_setNonce", target, "0x7") is True
    assert node.rpc("anvil_setCode", target, RETURN_SLOT0) is None
    assert node.rpc("hardhat_setStorageAt", target, "0x0", "0x" + "00" * 31 + "2a") is True
    assert head(w3).number == number  # no block: the head is re-sealed with the new state
    assert w3.eth.get_balance(target) == 10**20 and w3.eth.get_transaction_count(target) == 7
    assert w3.eth.get_code(target).to_0x_hex() == RETURN_SLOT0
    assert int(w3.eth.call({"to": target}).hex(), 16) == 42  # the code runs on the slot set
    w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction({"from": w3.eth.accounts[5], "to": target,
                                                                 "value": 3}), timeout=30, poll_latency=0.05)
    assert w3.eth.get_balance(target) == 10**20 + 3  # later blocks build on the edited state
    assert node.rpc("hardhat_setBalance", target, "0x5") is True and node.rpc("anvil_setNonce", target, 1) is None
    assert w3.eth.get_balance(target) == 5 and w3.eth.get_transaction_count(target) == 1
    assert node.rpc("anvil_setStorageAt", target, "0x0", "0x" + "00" * 32) is None
    assert node.rpc("hardhat_setCode", target, "0x") is True and w3.eth.get_code(target) == b""
    assert "lower than the account's nonce 1" in invalid(node, "hardhat_setNonce", target, "0x0")


def test_dump_and_load_state_round_trip(node, w3):
    target = fresh_address(0x54)
    node.rpc("anvil_setBalance", target, "0x1234")
    node.rpc("anvil_setCode", target, RETURN_SLOT0)
    node.rpc("anvil_setStorageAt", target, "0x0", "0x" + "ab" * 32)
    dump = node.rpc("anvil_dumpState")
    state = json.loads(gzip.decompress(bytes.fromhex(dump[2:])))
    account = state["accounts"][target.lower()]
    assert account == {"balance": "0x1234", "nonce": 0, "code": RETURN_SLOT0,
                       "storage": {"0x" + "00" * 32: "0x" + "ab" * 32}}
    dev = state["accounts"][address_of(DEV_KEYS[6]).lower()]
    assert int(dev["balance"], 16) == w3.eth.get_balance(address_of(DEV_KEYS[6]))
    node.rpc("anvil_setBalance", target, "0x1")
    node.rpc("anvil_setStorageAt", target, "0x0", "0x" + "00" * 32)
    node.rpc("anvil_setCode", target, "0x")
    assert node.rpc("anvil_loadState", dump) is True
    assert node.rpc("anvil_dumpState") == dump
    plain = {"accounts": {fresh_address(0x55): {"balance": "0x9", "nonce": 2}}}  # plain JSON loads too
    assert node.rpc("anvil_loadState", "0x" + json.dumps(plain).encode().hex()) is True
    assert w3.eth.get_balance(fresh_address(0x55)) == 9 and w3.eth.get_transaction_count(fresh_address(0x55)) == 2


# --- impersonation --------------------------------------------------------------------------------
def test_impersonated_transaction_goes_through_pipe(node, w3, forecast):
    whale = fresh_address(0x56)
    assert node.rpc("hardhat_impersonateAccount", whale) is True
    node.rpc("hardhat_setBalance", whale, hex(10**19))
    tx_hash = forecast.functions.forecast(FEATURES).transact({"from": whale})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.05)
    assert receipt.status == 1 and receipt["from"] == whale
    assert w3.eth.get_transaction(tx_hash)["from"] == whale
    status = node.rpc("og_getTransactionStatus", tx_hash.to_0x_hex())
    assert {"simulated", "inferring", "ready", "included"} <= {step["state"] for step in status["history"]}
    (record,) = node.rpc("og_getInferenceRecords", tx_hash.to_0x_hex())
    assert record["output"]["numbers"][0]["decimal"] == ["7.1"]
    assert forecast.functions.latestPrediction().call() == [71, 1]
    # the pool's admission rules hold for it
    with pytest.raises(JsonRpcError, match="nonce too low"):
        node.rpc("eth_sendTransaction", {"from": whale, "to": whale, "nonce": "0x0", "gas": "0x5208"})
    poor = fresh_address(0x57)
    assert node.rpc("anvil_impersonateAccount", poor) is None
    with pytest.raises(JsonRpcError, match="insufficient funds") as refused:
        node.rpc("eth_sendTransaction", {"from": poor, "to": whale, "value": "0x1", "gas": "0x5208"})
    assert refused.value.code == -32003
    assert node.rpc("hardhat_stopImpersonatingAccount", whale) is True
    assert node.rpc("hardhat_stopImpersonatingAccount", whale) is False
    assert node.rpc("anvil_stopImpersonatingAccount", poor) is None
    assert "impersonated" in invalid(node, "eth_sendTransaction", {"from": whale, "to": whale, "gas": "0x5208"})


def test_impersonated_transaction_survives_a_restart(tmp_path):
    """Pooled on disk with its marker, it is admitted again after a restart, from the same sender."""
    process = NodeProcess(tmp_path / "node.log", data_dir=tmp_path / "data").start()
    sender = fresh_address(0x5d)
    try:
        process.rpc("evm_setAutomine", False)
        process.rpc("anvil_impersonateAccount", sender)
        process.rpc("anvil_setBalance", sender, hex(10**18))
        tx_hash = process.rpc("eth_sendTransaction", {"from": sender, "to": fresh_address(0x5e), "value": "0x3"})
    finally:
        process.stop()
    process.start()  # automine again
    try:
        receipt = process.wait_receipt(tx_hash)
        assert receipt["from"] == sender.lower() and receipt["status"] == "0x1"
        assert int(process.rpc("eth_getBalance", fresh_address(0x5e)), 16) == 3
    finally:
        process.stop()


def test_impersonation_marker_is_refused_as_a_raw_transaction(node, w3):
    """The bytes of an impersonated transaction carry an invalid signature (r = 0): sent raw,
    or read by any validator, they are refused."""
    from eth.vm.forks.prague import PragueVM

    from ogevm.node.impersonation import impersonated

    builder = PragueVM.get_transaction_builder()
    tx = impersonated(builder, bytes.fromhex("58" * 20), 31337, b"\x11" * 20, b"", 0, 21_000, 0, 10**10, 10**9)
    with pytest.raises(JsonRpcError, match="invalid signature") as refused:
        node.rpc("eth_sendRawTransaction", "0x" + tx.encode().hex())
    assert refused.value.code == -32003
    ordinary = builder.decode(tx.encode())
    with pytest.raises(Exception):
        ordinary.check_signature_validity()


# --- txpool, access lists, precompiles ------------------------------------------------------------
def test_txpool_in_geth_shapes(node, w3, manual):
    key = "0x" + "5a" * 32
    sender = address_of(key)
    node.rpc("anvil_setBalance", sender, hex(10**18))
    ready_raw, ready = sign(key, 0, fresh_address(0x59), value=7, gas=21_000)
    gapped_raw, gapped = sign(key, 2, fresh_address(0x59), value=8, gas=21_000)
    node.rpc("eth_sendRawTransaction", ready_raw)
    node.rpc("eth_sendRawTransaction", gapped_raw)
    assert node.rpc("txpool_status") == {"pending": "0x1", "queued": "0x1"}
    content = node.rpc("txpool_content")
    assert content["pending"][sender]["0"]["hash"] == ready and content["queued"][sender]["2"]["hash"] == gapped
    assert content["pending"][sender]["0"]["blockHash"] is None
    inspect = node.rpc("txpool_inspect")
    assert inspect["pending"][sender]["0"] == f"{fresh_address(0x59)}: 7 wei + 21000 gas × {10 * 10**9} wei"
    wait_state(node, ready, {"ready"})
    node.rpc("evm_mine")
    assert node.rpc("txpool_status") == {"pending": "0x0", "queued": "0x1"}


def test_create_access_list(node, w3):
    contract, other = fresh_address(0x5b), fresh_address(0x5c)
    # PUSH1 3 SLOAD POP, PUSH20 other BALANCE POP, STOP
    node.rpc("anvil_setCode", contract, "0x6003545073" + other[2:].lower() + "315000")
    answer = node.rpc("eth_createAccessList", {"from": w3.eth.accounts[1], "to": contract})
    assert answer["accessList"] == [{"address": contract.lower(), "storageKeys": ["0x" + "00" * 31 + "03"]},
                                    {"address": other.lower(), "storageKeys": []}]
    # EIP-2930: the slot saves 100 but its (already warm) recipient costs 2,400; the cold account saves 100
    estimate = w3.eth.estimate_gas({"from": w3.eth.accounts[1], "to": contract})
    assert int(answer["gasUsed"], 16) == estimate - 100 + 2_400 - 100


def test_precompiles(node):
    precompiles = node.rpc("og_precompiles")
    assert precompiles["ECREC"] == "0x" + "00" * 19 + "01"
    assert precompiles["OG_INFERENCE"] == "0x" + "00" * 19 + "f4"
    assert precompiles["OG_ATTESTATION"] == "0x" + "00" * 19 + "f5"
    assert len(set(precompiles.values())) == len(precompiles)


# --- bad params -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "params", "named"), [
    ("evm_revert", ["0xzz"], "snapshotId"),
    ("evm_revert", [], "snapshotId"),
    ("evm_mine", ["later"], "timestamp"),
    ("anvil_mine", ["0x3e9"], "blocks"),
    ("hardhat_mine", ["0x1", -1], "interval"),
    ("anvil_mine", ["0x2", hex(2**40)], "interval"),
    ("evm_setAutomine", ["yes"], "enabled"),
    ("anvil_setAutomine", [], "enabled"),
    ("evm_setIntervalMining", [500], "interval"),
    ("anvil_setIntervalMining", [10**9], "interval"),
    ("evm_increaseTime", [2**40], "seconds"),
    ("evm_increaseTime", ["-0x1"], "seconds"),
    ("anvil_setNextBlockTimestamp", [2**40], "timestamp"),
    ("anvil_setBalance", ["0x12", "0x1"], "address"),
    ("hardhat_setBalance", ["0x" + "11" * 20, hex(2**256)], "balance"),
    ("anvil_setCode", ["0x" + "11" * 20, "0x1"], "code"),
    ("hardhat_setNonce", ["0x" + "11" * 20, hex(2**64)], "nonce"),
    ("anvil_setStorageAt", ["0x" + "11" * 20, "0x0", "0x01"], "value"),
    ("hardhat_setStorageAt", ["0x" + "11" * 20, hex(2**256), "0x" + "00" * 32], "slot"),
    ("anvil_impersonateAccount", [5], "address"),
    ("hardhat_stopImpersonatingAccount", [], "address"),
    ("anvil_loadState", ["0x00"], "state"),
    ("anvil_loadState", ["0x" + gzip.compress(b"[1]").hex()], "state"),
    ("anvil_loadState", ["0x" + json.dumps({"accounts": {"0x12": {}}}).encode().hex()], "state.accounts"),
    ("anvil_loadState", ["0x" + json.dumps({"accounts": {"0x" + "11" * 20: {"balance": "0xzz"}}}).encode().hex()],
     "balance"),
    ("anvil_loadState", ["0x" + gzip.compress(b"{" * 100_000).hex()], "state"),
    ("anvil_loadState", ["0x1f8b00"], "state"),
    ("eth_createAccessList", [{"to": "0x12"}], "transaction.to"),
    ("evm_snapshot", ["0x1"], "params"),
    ("txpool_status", [1], "params"),
    ("og_precompiles", [None, 1], "params"),
])
def test_bad_params_name_the_parameter(node, method, params, named):
    message = invalid(node, method, *params)
    assert message.startswith("invalid params: ") and named in message, message


def test_a_gzip_bomb_is_refused(node):
    bomb = gzip.compress(b" " * (65 * 1024 * 1024))
    assert "unpacks to more than" in invalid(node, "anvil_loadState", "0x" + bomb.hex())


# --- the state document parser, in process ----------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2**260) | st.text(alphabet="0x123abz", max_size=70),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet="0x12ab", max_size=42), inner,
                                                                max_size=3), max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values.map(lambda v: {"accounts": v}),
                 st.dictionaries(st.sampled_from(["0x" + "11" * 20, "0x12"]),
                                 st.fixed_dictionaries({}, optional={"nonce": json_values, "balance": json_values,
                                                                     "code": json_values, "storage": json_values}),
                                 max_size=2).map(lambda a: {"accounts": a}),
                 json_values),
       st.booleans())
def test_state_documents_parse_or_are_refused_by_name(document, packed):
    raw = json.dumps(document).encode()
    try:
        accounts = parse_state(gzip.compress(raw) if packed else raw)
    except ParamError as error:
        assert error.name.startswith("state")
    else:
        for address, account in accounts.items():
            assert len(address) == 20 and 0 <= account.nonce < 2**64 and 0 <= account.balance < 2**256
            assert all(0 <= k < 2**256 and 0 <= v < 2**256 for k, v in account.storage.items())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.just("take"), st.integers(0, 12)), max_size=30))
def test_snapshot_ids_follow_anvils_rule(steps):
    """Ids count up from 1; reverting to one uses it up with every later one; an unknown or
    used id is refused (checked against a plain list of live ids)."""
    snapshots, live, taken = Snapshots(), [], 0
    for step in steps:
        if step == "take":
            taken += 1
            assert snapshots.add(f"snapshot {taken}") == taken
            live.append(taken)
        else:
            found = snapshots.pop(step)
            assert (found == f"snapshot {step}") == (step in live) and (found is None) == (step not in live)
            if step in live:
                live = [i for i in live if i < step]
        assert bool(snapshots) == bool(live)
