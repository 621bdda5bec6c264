"""web3.py against a real node subprocess: deploy, transact, read back, revert, filter."""

from __future__ import annotations

import time

import pytest

from ogevm.abi.codec import MODEL_INFERENCE_EVENT_TOPIC, decode_event_data, decode_revert_reason
from ogevm.abi.types import Number

from node_helpers import DEV_KEYS, NodeProcess, address_of, artifact, fund, model_bytes

web3 = pytest.importorskip("web3", reason="web3.py is not installed")
from hexbytes import HexBytes  # noqa: E402
from web3 import Web3  # noqa: E402
from web3.exceptions import ContractLogicError  # noqa: E402
from web3.logs import DISCARD  # noqa: E402

PRECOMPILE = "0x00000000000000000000000000000000000000f4"
FEATURES = [(1, 0), (2, 0), (3, 0), (4, 0)]  # linear_regression: 7.1


@pytest.fixture(scope="module")
def key(node) -> str:
    return fund(node)


@pytest.fixture(scope="module")
def model_cid(node) -> str:
    return node.rpc("og_addModel", "0x" + model_bytes("linear_regression").hex())


@pytest.fixture(scope="module")
def deployment(w3, key, model_cid):
    """PriceForecast deployed from the committed artifact, by a locally signed tx."""
    art = artifact("PriceForecast")
    account = w3.eth.account.from_key(key)
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    tx = factory.constructor(model_cid, "x", "y").build_transaction(
        {"from": account.address, "nonce": w3.eth.get_transaction_count(account.address, "pending")})
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.05)
    assert receipt.status == 1, receipt
    return w3.eth.contract(address=receipt.contractAddress, abi=art["abi"]), receipt


def _send_signed(w3, key, function, **overrides):
    account = w3.eth.account.from_key(key)
    tx = function.build_transaction({"from": account.address,
                                     "nonce": w3.eth.get_transaction_count(account.address, "pending"),
                                     **overrides})
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.05)


def test_deployment_code_and_transaction(w3, deployment, model_cid, key):
    contract, receipt = deployment
    art = artifact("PriceForecast")
    assert w3.eth.get_code(contract.address).hex().removeprefix("0x") == art["deployedBytecode"].removeprefix("0x")
    assert w3.eth.get_code(address_of(key)) == b""
    tx = w3.eth.get_transaction(receipt.transactionHash)
    assert tx["from"] == address_of(key) and tx["to"] is None and tx["blockNumber"] == receipt.blockNumber
    assert tx["input"].hex().removeprefix("0x").startswith(art["bytecode"].removeprefix("0x"))
    assert contract.functions.modelCID().call() == model_cid
    assert (contract.functions.inputName().call(), contract.functions.outputName().call()) == ("x", "y")


def test_forecast_signed_locally_with_events(w3, deployment, key, model_cid):
    contract, _ = deployment
    before = contract.functions.predictionCount().call()
    receipt = _send_signed(w3, key, contract.functions.forecast(FEATURES))
    assert receipt.status == 1
    (event,) = contract.events.Forecast().process_receipt(receipt, errors=DISCARD)
    assert dict(event.args) == {"id": before, "value": 71, "decimals": 1}
    assert contract.functions.latestPrediction().call() == [71, 1]
    assert contract.functions.predictionCount().call() == before + 1
    # the precompile's own log: address 0x...F4, topic ModelInferenceEvent, ABI data
    inference_logs = [log for log in receipt.logs if log.address.lower() == PRECOMPILE]
    assert len(inference_logs) == 1
    log = inference_logs[0]
    assert bytes(log.topics[0]) == MODEL_INFERENCE_EVENT_TOPIC
    inference_id, request, output = decode_event_data(bytes(log.data))
    assert request.model_cid == model_cid and request.input.numbers[0].values == tuple(Number(*f) for f in FEATURES)
    assert [(t.name, t.values) for t in output.numbers] == [("y", (Number(71, 1),))]
    assert not output.is_simulation_result and inference_id
    # the node's record of the same inference, exact
    records = w3.provider.make_request("og_getInferenceRecords", [receipt.transactionHash.to_0x_hex()])["result"]
    assert records[0]["output"]["numbers"][0]["decimal"] == ["7.1"] and records[0]["error"] is None


def test_forecast_with_eth_send_transaction(w3, deployment):
    contract, _ = deployment
    sender = w3.eth.accounts[1]
    tx_hash = contract.functions.forecast([(0, 0), (0, 0), (0, 0), (0, 0)]).transact({"from": sender})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.05)
    assert receipt.status == 1 and receipt["from"] == sender
    (event,) = contract.events.Forecast().process_receipt(receipt, errors=DISCARD)
    assert (event.args.value, event.args.decimals) == (1, 1)  # y = b = 0.1
    assert w3.eth.get_transaction(tx_hash)["type"] == 2


def test_eth_call_returns_real_outputs(deployment):
    contract, _ = deployment
    assert contract.functions.forecastView(FEATURES).call() == (71, 1)
    assert contract.functions.forecastView([(2, 0), (0, 0), (0, 0), (0, 0)]).call() == (11, 1)  # 1.1
    assert contract.functions.forecastView([(15, 1), (0, 0), (0, 0), (0, 0)]).call() == (85, 2)  # 0.85


def test_revert_reason_contract_logic_error(w3, deployment, key):
    contract, _ = deployment
    with pytest.raises(ContractLogicError) as caught:
        contract.functions.forecast([(1, 0)]).call()
    reason = "input 'x' has shape [1, 1]; the model expects ['?', 4]"
    assert caught.value.message == f"execution reverted: {reason}"
    assert caught.value.data.startswith("0x08c379a0")
    assert decode_revert_reason(bytes.fromhex(caught.value.data[2:])) == reason
    with pytest.raises(ContractLogicError, match="the model expects"):
        contract.functions.forecast([(1, 0)]).estimate_gas({"from": address_of(key)})


def test_estimate_gas_is_enough_for_deployment_and_calls(w3, key, model_cid, deployment):
    account = w3.eth.account.from_key(key)
    art = artifact("PriceForecast")
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    deploy_gas = factory.constructor(model_cid, "x", "y").estimate_gas({"from": account.address})
    receipt = _send_signed(w3, key, factory.constructor(model_cid, "x", "y"), gas=deploy_gas)
    assert receipt.status == 1 and receipt.gasUsed <= deploy_gas
    contract = w3.eth.contract(address=receipt.contractAddress, abi=art["abi"])
    call_gas = contract.functions.forecast(FEATURES).estimate_gas({"from": account.address})
    receipt = _send_signed(w3, key, contract.functions.forecast(FEATURES), gas=call_gas)
    assert receipt.status == 1 and receipt.gasUsed <= call_gas
    assert contract.functions.latestPrediction().call() == [71, 1]
    assert w3.eth.estimate_gas({"from": account.address, "to": w3.eth.accounts[3], "value": 1}) == 21_000


def test_get_logs_with_address_and_topic_filters(w3, deployment, key):
    contract, deploy_receipt = deployment
    receipts = [_send_signed(w3, key, contract.functions.forecast(FEATURES)) for _ in range(2)]
    forecast_topic = HexBytes(contract.events.Forecast().topic).to_0x_hex()
    everything = w3.eth.get_logs({"fromBlock": deploy_receipt.blockNumber, "toBlock": "latest",
                                  "address": contract.address})
    assert len(everything) == contract.functions.predictionCount().call()
    assert all(log.address == contract.address and log.topics[0].to_0x_hex() == forecast_topic
               for log in everything)
    # topic 1 is the indexed id: select exactly one event
    wanted_id = contract.events.Forecast().process_receipt(receipts[1], errors=DISCARD)[0].args.id
    by_id = w3.eth.get_logs({"fromBlock": 0, "address": contract.address,
                             "topics": [forecast_topic, "0x" + wanted_id.to_bytes(32, "big").hex()]})
    assert [log.transactionHash for log in by_id] == [receipts[1].transactionHash]
    # OR within a topic position, and the precompile's logs by address
    either = w3.eth.get_logs({"fromBlock": 0, "address": [contract.address, "0x" + "42" * 20],
                              "topics": [[forecast_topic, "0x" + "11" * 32]]})
    assert len(either) == len(everything)
    inference = w3.eth.get_logs({"fromBlock": receipts[0].blockNumber, "address": Web3.to_checksum_address(PRECOMPILE),
                                 "topics": ["0x" + MODEL_INFERENCE_EVENT_TOPIC.hex()]})
    assert {log.transactionHash for log in inference} >= {r.transactionHash for r in receipts}
    assert w3.eth.get_logs({"fromBlock": 0, "address": "0x" + "42" * 20}) == []
    by_hash = w3.eth.get_logs({"blockHash": receipts[0].blockHash, "address": contract.address})
    assert [log.transactionHash for log in by_hash] == [receipts[0].transactionHash]
    assert by_hash[0].logIndex == receipts[0].logs[-1].logIndex


def test_block_and_log_filters(w3, deployment, key):
    contract, _ = deployment
    block_filter = w3.eth.filter("latest")
    log_filter = w3.eth.filter({"address": contract.address})
    assert block_filter.get_new_entries() == []
    receipt = _send_signed(w3, key, contract.functions.forecast(FEATURES))
    assert receipt.blockHash in block_filter.get_new_entries()
    assert block_filter.get_new_entries() == []
    logs = log_filter.get_new_entries()
    assert [log.transactionHash for log in logs] == [receipt.transactionHash]
    assert w3.eth.uninstall_filter(block_filter.filter_id) is True
    assert w3.eth.uninstall_filter(block_filter.filter_id) is False


def test_blocks_by_number_and_hash(w3, deployment):
    _, receipt = deployment
    block = w3.eth.get_block(receipt.blockNumber, full_transactions=True)
    assert block.hash == receipt.blockHash and block.number == receipt.blockNumber
    assert receipt.transactionHash in [tx.hash for tx in block.transactions]
    assert w3.eth.get_block(receipt.blockHash) == w3.eth.get_block(receipt.blockNumber)
    parent = w3.eth.get_block(receipt.blockNumber - 1)
    assert block.parentHash == parent.hash and block.timestamp >= parent.timestamp
    latest = w3.eth.get_block("latest")
    assert latest.number == w3.eth.block_number >= block.number
    assert w3.eth.get_block("earliest").number == 0
    assert w3.provider.make_request("eth_getBlockByNumber", [hex(latest.number + 100), False])["result"] is None
    assert w3.provider.make_request("eth_getBlockByHash", ["0x" + "00" * 32, False])["result"] is None
    assert w3.eth.get_block_transaction_count(receipt.blockNumber) == len(block.transactions)


def test_fee_history(w3, deployment):
    head = w3.eth.block_number
    history = w3.eth.fee_history(4, "latest", [25, 75])
    assert history.oldestBlock == head - 3
    assert len(history.baseFeePerGas) == 5 and all(fee > 0 for fee in history.baseFeePerGas)
    assert len(history.gasUsedRatio) == 4 and all(0 <= r <= 1 for r in history.gasUsedRatio)
    assert len(history.reward) == 4 and all(len(r) == 2 for r in history.reward)
    assert w3.eth.gas_price >= history.baseFeePerGas[-1]


def test_storage_layout_read_with_get_storage_at(w3, deployment, key):
    contract, _ = deployment
    _send_signed(w3, key, contract.functions.forecast([(15, 1), (0, 0), (0, 0), (0, 0)]))  # 0.85
    count = contract.functions.predictionCount().call()
    # slot 1: inputName "x" (short string: bytes left-aligned, length * 2 in the last byte)
    assert w3.eth.get_storage_at(contract.address, 1) == b"x" + b"\x00" * 30 + b"\x02"
    # slot 3: latestPrediction, value (int128) in the low half, decimals in the high half
    slot = int.from_bytes(w3.eth.get_storage_at(contract.address, 3), "big")
    assert (slot & (2**128 - 1), slot >> 128) == (85, 2)
    assert int.from_bytes(w3.eth.get_storage_at(contract.address, 4), "big") == count
    assert w3.eth.get_storage_at(contract.address, 99) == b"\x00" * 32


def test_balances_and_transfer(w3, key):
    account = w3.eth.account.from_key(key)
    target = w3.eth.account.create().address
    before = w3.eth.get_balance(account.address)
    tx = {"to": target, "value": 12345, "gas": 21_000, "nonce": w3.eth.get_transaction_count(account.address),
          "maxFeePerGas": 2 * w3.eth.gas_price, "maxPriorityFeePerGas": w3.eth.max_priority_fee, "chainId": 31337}
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction), timeout=30, poll_latency=0.05)
    assert w3.eth.get_balance(target) == 12345
    assert w3.eth.get_balance(account.address) == before - 12345 - receipt.gasUsed * receipt.effectiveGasPrice
    assert w3.eth.get_balance(account.address, receipt.blockNumber - 1) == before


@pytest.fixture(scope="module")
def slow_node(tmp_path_factory):
    """A node that builds a block every second, so transactions stay pending for a while."""
    process = NodeProcess(tmp_path_factory.mktemp("slow") / "node.log", block_time=1.0).start()
    yield process
    process.stop()


def test_transaction_count_latest_vs_pending(slow_node):
    w3 = Web3(Web3.HTTPProvider(slow_node.url))
    account = w3.eth.account.from_key(DEV_KEYS[2])
    for _attempt in range(3):
        nonce = w3.eth.get_transaction_count(account.address)
        tx = {"to": w3.eth.accounts[3], "value": 1, "gas": 21_000, "nonce": nonce, "chainId": 31337,
              "maxFeePerGas": 10 * 10**9, "maxPriorityFeePerGas": 10**9}
        tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        latest = w3.eth.get_transaction_count(account.address, "latest")
        pending = w3.eth.get_transaction_count(account.address, "pending")
        pending_tx = w3.eth.get_transaction(tx_hash)
        status = w3.provider.make_request("og_getTransactionStatus", [tx_hash.to_0x_hex()])["result"]
        if slow_node.rpc("eth_getTransactionReceipt", tx_hash.to_0x_hex()) is not None:
            continue  # a block landed in between: try again with the next nonce
        assert (latest, pending) == (nonce, nonce + 1)
        assert pending_tx.blockNumber is None and pending_tx.blockHash is None
        assert status["state"] in ("pending", "simulated", "inferring", "ready") and status["block"] is None
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10, poll_latency=0.05)
        assert receipt.status == 1
        assert w3.eth.get_transaction_count(account.address, "latest") == nonce + 1
        assert w3.eth.get_transaction_count(account.address, "pending") == nonce + 1
        return
    pytest.fail("every transaction was mined before its pending count could be read")


def test_block_time_builds_blocks_on_schedule(slow_node):
    """With --block-time the node seals a block every interval, empty or not."""
    first = int(slow_node.rpc("eth_blockNumber"), 16)
    time.sleep(2.2)
    assert int(slow_node.rpc("eth_blockNumber"), 16) >= first + 1
