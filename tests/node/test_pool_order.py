"""Transactions of one sender queued behind an inference transaction.

A transaction that needs no inference, sent right after an inference transaction of the
same sender, is simulated ``ready`` while its predecessor still waits for its result; it
must wait for it rather than be replayed alone (a nonce gap py-evm would refuse).
"""

from __future__ import annotations

import time


from ogevm.abi.contract import ContractInterface

from node_helpers import DEV_KEYS, FIXTURES, address_of, model_bytes, sign

FORECAST = ContractInterface.from_artifact(FIXTURES / "contracts" / "PriceForecast.json")


def test_transfer_behind_an_inference_tx_of_the_same_sender_is_included(node):
    cid = node.rpc("og_addModel", "0x" + model_bytes("heavy").hex())
    code = FORECAST.bytecode + FORECAST.constructor_args(cid, "x", "y")
    deployed = node.wait_receipt(node.rpc("eth_sendTransaction", {"from": address_of(DEV_KEYS[0]),
                                                                  "data": "0x" + code.hex()}))
    key = DEV_KEYS[9]
    nonce = int(node.rpc("eth_getTransactionCount", address_of(key), "pending"), 16)
    raw0, first = sign(key, nonce, deployed["contractAddress"], FORECAST.function("forecast").encode([(1, 0)] * 64),
                       gas=2_000_000)
    raw1, second = sign(key, nonce + 1, "0x" + "11" * 20, value=1, gas=21_000)
    node.rpc("eth_sendRawTransaction", raw0)
    node.rpc("eth_sendRawTransaction", raw1)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        states = [node.rpc("og_getTransactionStatus", h) for h in (first, second)]
        if all(s["state"] in ("included", "rejected") for s in states):
            break
        time.sleep(0.05)
    assert [s["state"] for s in states] == ["included", "included"], states
