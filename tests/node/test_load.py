"""A bounded load test on loopback: 4 concurrent clients, 25 inference transactions each,
with calls in between. Asserts correctness only; the measured throughput and latency are
written to ``load.json`` in the test's tmp dir and printed on the terminal."""

from __future__ import annotations

import json
import statistics
import threading
import time

import numpy as np
import onnxruntime as ort
import pytest

from ogevm.abi.contract import ContractInterface
from ogevm.tensors import array_to_number_tensor

from node_helpers import DEV_KEYS, FIXTURES, NodeProcess, address_of, model_bytes, sign

CLIENTS = 4
TXS_PER_CLIENT = 25
FORECAST = ContractInterface.from_artifact(FIXTURES / "contracts" / "PriceForecast.json")


def expected_prediction(session: ort.InferenceSession, features: list[int]) -> list[int]:
    """[value, decimals] the node must record: the model run here, canonically encoded."""
    (y,) = session.run(None, {"x": np.array([features], dtype=np.float32)})
    (number,) = array_to_number_tensor("y", y).values
    return [number.value, number.decimals]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def test_concurrent_clients(tmp_path, capsys):
    node = NodeProcess(tmp_path / "node.log").start()
    try:
        cid = node.rpc("og_addModel", "0x" + model_bytes("linear_regression").hex())
        code = FORECAST.bytecode + FORECAST.constructor_args(cid, "x", "y")
        deployed = node.wait_receipt(node.rpc("eth_sendTransaction", {"from": address_of(DEV_KEYS[0]),
                                                                      "data": "0x" + code.hex()}))
        contract = deployed["contractAddress"]
        session = ort.InferenceSession(str(FIXTURES / "models" / "linear_regression.onnx"),
                                       providers=["CPUExecutionProvider"])
        latencies: list[float] = []
        send_times: list[float] = []  # eth_sendRawTransaction alone
        errors: list[str] = []
        mined: dict[str, dict] = {}
        lock = threading.Lock()
        start = threading.Barrier(CLIENTS)

        def client(index: int) -> None:
            key = DEV_KEYS[1 + index]
            sender = address_of(key)
            nonce = int(node.rpc("eth_getTransactionCount", sender, "pending"), 16)
            start.wait()
            for i in range(TXS_PER_CLIENT):
                try:
                    features = [index + 1, i, -i, 7]
                    data = FORECAST.function("forecast").encode([(f, 0) for f in features])
                    raw, tx_hash = sign(key, nonce + i, contract, data, gas=500_000)
                    sent = time.perf_counter()
                    assert node.rpc("eth_sendRawTransaction", raw) == tx_hash
                    accepted = time.perf_counter() - sent
                    receipt = None
                    while receipt is None:
                        receipt = node.rpc("eth_getTransactionReceipt", tx_hash)
                        if receipt is None:
                            time.sleep(0.005)
                    latency = time.perf_counter() - sent
                    assert receipt["status"] == "0x1", receipt
                    want = expected_prediction(session, features)
                    (record,) = node.rpc("og_getInferenceRecords", tx_hash)
                    assert record["output"]["numbers"][0]["values"] == [want], (record, want)
                    view = node.rpc("eth_call", {"to": contract, "data": "0x" + FORECAST.function("forecastView")
                                                 .encode([(f, 0) for f in features]).hex()})
                    assert list(FORECAST.function("forecastView").decode(bytes.fromhex(view[2:]))[0]) == want
                    assert int(node.rpc("eth_getBalance", sender), 16) > 0
                    with lock:
                        latencies.append(latency)
                        send_times.append(accepted)
                        mined[tx_hash] = receipt
                except Exception as exc:  # collected: every client finishes its run
                    with lock:
                        errors.append(f"client {index} tx {i}: {type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=90)
        elapsed = time.perf_counter() - began
        assert errors == []
        assert len(mined) == CLIENTS * TXS_PER_CLIENT
        blocks = {r["blockNumber"] for r in mined.values()}
        for key in DEV_KEYS[1:1 + CLIENTS]:
            assert int(node.rpc("eth_getTransactionCount", address_of(key)), 16) == TXS_PER_CLIENT
        count = int(FORECAST.function("predictionCount").decode(bytes.fromhex(node.rpc(
            "eth_call", {"to": contract, "data": "0x" + FORECAST.function("predictionCount").encode().hex()})[2:]))[0])
        assert count == CLIENTS * TXS_PER_CLIENT
        stats = node.rpc("og_pipeStats")
    finally:
        node.stop()
    result = {
        "clients": CLIENTS, "txs": len(mined), "seconds": round(elapsed, 3),
        "tx_per_s": round(len(mined) / elapsed, 1),
        "latency_ms": {"p50": round(1000 * statistics.median(latencies), 1),
                       "p99": round(1000 * percentile(latencies, 99), 1),
                       "max": round(1000 * max(latencies), 1)},
        "send_ms": {"p50": round(1000 * statistics.median(send_times), 1),
                    "p99": round(1000 * percentile(send_times, 99), 1)},
        "blocks": len(blocks), "txs_per_block": round(len(mined) / len(blocks), 2), "pipe": stats,
    }
    (tmp_path / "load.json").write_text(json.dumps(result, indent=2))
    line = (f"node load: {result['txs']} inference txs from {CLIENTS} clients in {result['seconds']} s = "
            f"{result['tx_per_s']} tx/s; send->receipt p50 {result['latency_ms']['p50']} ms, "
            f"p99 {result['latency_ms']['p99']} ms (eth_sendRawTransaction alone p50 {result['send_ms']['p50']} ms); "
            f"{result['txs_per_block']} txs/block "
            f"({tmp_path / 'load.json'})")
    with capsys.disabled():  # shown without -s
        print("\n" + line)


@pytest.fixture(autouse=True)
def _quiet_onnxruntime():
    ort.set_default_logger_severity(3)
