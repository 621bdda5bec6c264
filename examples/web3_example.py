"""web3.py against `ogevm node`: add a model, deploy SolidML's PriceForecast, call the model,
mock it, use a snapshot and time travel.

Run ``ogevm node`` in one terminal, then ``python examples/web3_example.py [RPC_URL]`` (default
http://127.0.0.1:8545). Prints what it checked; exits non-zero if a check fails.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from web3 import Web3

ROOT = Path(__file__).parents[1]
MODEL = ROOT / "fixtures" / "models" / "linear_regression.onnx"
ARTIFACT = ROOT / "fixtures" / "contracts" / "PriceForecast.json"  # `ogevm compile` gives the same shape
FEATURES = [(1, 0), (2, 0), (3, 0), (4, 0)]  # y = 0.5 - 2.5 + 6 + 3 + 0.1 = 7.1


def check(what: str, got, expected) -> None:
    if got != expected:
        raise SystemExit(f"FAILED {what}: got {got!r}, expected {expected!r}")
    print(f"ok  {what}: {got!r}")


def main(url: str = "http://127.0.0.1:8545") -> None:
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
    rpc = w3.provider.make_request
    me = w3.eth.accounts[0]

    def result(method: str, *params):
        answer = rpc(method, list(params))
        if "error" in answer:
            raise SystemExit(f"FAILED {method}: {answer['error']['message']}")
        return answer["result"]

    def mined(tx_hash):
        return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.05)

    cid = result("og_addModel", "0x" + MODEL.read_bytes().hex())
    compiled = json.loads(ARTIFACT.read_text())
    receipt = mined(w3.eth.contract(abi=compiled["abi"], bytecode=compiled["bytecode"])
                    .constructor(cid, "x", "y").transact({"from": me}))
    forecast = w3.eth.contract(address=receipt.contractAddress, abi=compiled["abi"])
    check("the model through eth_call", forecast.functions.forecastView(FEATURES).call(), (71, 1))

    snapshot = result("evm_snapshot")
    result("og_mockInference", cid, {"numbers": [{"name": "y", "shape": [1, 1], "values": [[-125, 1]]}]})
    check("a mined forecast of the mocked model",
          mined(forecast.functions.forecast(FEATURES).transact({"from": me})).status, 1)
    check("its stored (negative) price", forecast.functions.latestPrediction().call(), [-125, 1])
    result("evm_increaseTime", 3600)  # later blocks are an hour ahead of the wall clock
    now = int(time.time())
    result("evm_mine")
    check("the next block is an hour ahead", w3.eth.get_block("latest").timestamp >= now + 3600, True)
    result("og_clearMocks")
    check("evm_revert", result("evm_revert", snapshot), True)
    check("the snapshot's state", forecast.functions.predictionCount().call(), 0)
    check("the real model again", forecast.functions.forecastView(FEATURES).call(), (71, 1))


if __name__ == "__main__":
    main(*sys.argv[1:])
