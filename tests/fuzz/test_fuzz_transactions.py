"""Fuzzing raw transactions against a running node (in process, producer thread on).

Every raw transaction must end in one of two answers: rejected at the door with a
readable reason, or accepted, and then every accepted one is included, rejected with a
reason, or still waiting behind a nonce gap. The producer never fails, and the node
mines a plain transfer after the run.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given, strategies as st

from ogevm.errors import TransactionRejected
from ogevm.node.node import DevNode, NodeConfig

from fuzz_budget import fuzz_settings, report

GWEI = 10**9
SENDERS = range(1, 9)  # dev account 0 is the node's own operator


@pytest.fixture(scope="module")
def node():
    running = DevNode(NodeConfig()).start()
    yield running
    running.stop()


def _signed(node: DevNode, fields: dict) -> bytes:
    chain = node.chain
    account = chain.accounts[fields["sender"]]
    builder = chain.vm_class.get_transaction_builder()
    nonce = chain.nonce(account.address) + fields["nonce_offset"]
    common = dict(nonce=nonce, gas=fields["gas"], to=fields["to"], value=fields["value"], data=fields["data"])
    chain_id = fields["chain_id"]
    if fields["kind"] == "legacy":
        unsigned = builder.create_unsigned_transaction(gas_price=fields["max_fee"], **common)
    else:
        unsigned = builder.new_unsigned_dynamic_fee_transaction(
            chain_id=chain_id, max_priority_fee_per_gas=fields["tip"], max_fee_per_gas=fields["max_fee"],
            access_list=fields["access_list"], **common)
    return unsigned.as_signed_transaction(account.private_key, chain_id=chain_id).encode()


#: A plausible transaction: what most cases start from, so that many are admitted.
SENSIBLE = {
    "kind": st.sampled_from(["legacy", "eip1559"]),
    "sender": st.sampled_from(SENDERS),
    "nonce_offset": st.integers(0, 6),
    "gas": st.integers(60_000, 200_000),
    "to": st.binary(min_size=20, max_size=20),
    "value": st.integers(0, 10),
    "data": st.binary(max_size=64),
    "tip": st.integers(0, 3 * GWEI),
    "max_fee": st.integers(3 * GWEI, 5 * GWEI),
    "chain_id": st.just(31337),
    "access_list": st.just(()),
}
#: What an attacker puts in one field instead.
ADVERSARIAL = {
    "nonce_offset": st.one_of(st.integers(-2, -1), st.integers(3, 2**64)),
    "gas": st.one_of(st.integers(0, 21_000), st.integers(30_000_000, 2**64)),
    "to": st.just(b""),  # a contract creation, with initcode from "data"
    "value": st.integers(10**22, 2**256 - 1),
    "data": st.one_of(st.binary(min_size=49_150, max_size=49_160), st.just(b"\xfe" * 100)),
    "tip": st.integers(5 * GWEI, 2**256 - 1),
    "max_fee": st.one_of(st.integers(0, GWEI), st.integers(2**200, 2**256 - 1)),
    "chain_id": st.sampled_from([0, 1, 2**64]),
    "access_list": st.lists(st.tuples(st.binary(min_size=20, max_size=20),
                                      st.lists(st.integers(0, 2**256 - 1), max_size=2)), max_size=2).map(tuple),
}


def _fields(data) -> dict:
    fields = {name: data.draw(strategy) for name, strategy in SENSIBLE.items()}
    for name in data.draw(st.lists(st.sampled_from(sorted(ADVERSARIAL)), max_size=2, unique=True)):
        fields[name] = data.draw(ADVERSARIAL[name])
    if not fields["to"] and len(fields["data"]) > 64:
        fields["gas"] = max(fields["gas"], 15_000_000)  # enough intrinsic gas to meet EIP-3860
    return fields


def _mutate(raw: bytes, data) -> bytes:
    how = data.draw(st.sampled_from(["flip", "truncate", "append"]))
    if how == "flip" and raw:
        at = data.draw(st.integers(0, len(raw) - 1))
        return raw[:at] + bytes([raw[at] ^ data.draw(st.integers(1, 255))]) + raw[at + 1:]
    if how == "truncate":
        return raw[:data.draw(st.integers(0, len(raw)))]
    return raw + data.draw(st.binary(min_size=1, max_size=8))


def test_raw_transactions_are_answered_and_none_is_lost(node):
    accepted, rejected = [], []

    @fuzz_settings(300)
    @given(data=st.data())
    def fuzz(data):
        if data.draw(st.integers(0, 9)) == 0:
            raw = data.draw(st.binary(max_size=300))
        else:
            try:
                raw = _signed(node, _fields(data))
            except Exception:  # py-evm refuses to build some field combinations itself
                raw = data.draw(st.binary(max_size=300))
            if data.draw(st.integers(0, 3)) == 0:
                raw = _mutate(raw, data)
        try:
            accepted.append(node.send_raw_transaction(raw))
        except TransactionRejected as exc:
            assert isinstance(exc.reason, str) and exc.reason
            rejected.append(exc.reason)

    fuzz()
    report("raw transactions", len(accepted) + len(rejected))
    print(f"accepted {len(accepted)}, rejected at the door {len(rejected)}")

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and any(_unsettled(node, h) for h in accepted):
        time.sleep(0.1)
    for tx_hash in accepted:
        status = node.status(tx_hash)
        assert status is not None, f"0x{tx_hash.hex()} was accepted and then lost"
        if status["state"] == "rejected":
            assert status["reason"]
        else:
            assert not _unsettled(node, tx_hash), f"0x{tx_hash.hex()} stuck in {status['state']}"
    assert node.producer_failures == 0

    final = node.chain.sign(8, node.chain.accounts[9].address, value=1, gas=21_000)
    node.send_raw_transaction(final.encode())
    deadline = time.monotonic() + 30
    while node.status(final.hash)["state"] != "included":
        assert time.monotonic() < deadline, "the node stopped mining after the fuzz run"
        time.sleep(0.05)


def _unsettled(node: DevNode, tx_hash: bytes) -> bool:
    """Neither terminal nor waiting behind a nonce gap (the only way to stay pooled)."""
    status = node.status(tx_hash)
    if status["state"] in ("included", "rejected"):
        return False
    entry = node.pipeline.pool.get(tx_hash)
    return entry.nonce <= node.chain.nonce(entry.sender)
