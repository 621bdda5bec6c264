"""The block producer never dies: a bad transaction is rejected with a reason, an
unexpected failure is logged and the loop goes on, a poisoned pool survives a restart."""

from __future__ import annotations

import time

import pytest
from eth.vm.forks.shanghai.constants import MAX_INITCODE_SIZE

from ogevm.errors import TransactionRejected
from ogevm.node.node import DevNode, NodeConfig
from ogevm.vm.chain import DevChain

#: A create transaction py-evm cannot execute at all (EIP-3860), signed on a throwaway chain
#: with the dev account 0 at nonce 0: what an older node could have put in its pool.
_SIGNER = DevChain()


def oversize_create(nonce: int = 0):
    return _SIGNER.sign(0, None, b"\x00" * (MAX_INITCODE_SIZE + 1), gas=10_000_000, nonce=nonce)


def wait_until(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def included(node: DevNode, tx_hash: bytes) -> bool:
    status = node.status(tx_hash)
    return status is not None and status["state"] == "included"


def transfer(node: DevNode, sender: int = 1):
    return node.chain.sign(sender, node.chain.accounts[9].address, value=1, gas=21_000)


@pytest.fixture
def node():
    running = DevNode(NodeConfig()).start()
    yield running
    running.stop()


def test_oversize_initcode_is_refused_at_the_door(node):
    with pytest.raises(TransactionRejected, match=r"exceeds the limit of 49152 \(EIP-3860\)"):
        node.send_raw_transaction(oversize_create().encode())
    fine = transfer(node)
    node.send_raw_transaction(fine.encode())
    wait_until(lambda: included(node, fine.hash))


def test_an_unexpected_failure_of_a_producer_step_is_survived(node, caplog):
    """Fault injection: one step of the pipeline raises; the producer logs it and goes on."""
    real_advance = node.pipeline.advance
    calls = []

    def failing_once():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("injected fault")
        return real_advance()

    node.pipeline.advance = failing_once
    fine = transfer(node)
    node.send_raw_transaction(fine.encode())
    wait_until(lambda: included(node, fine.hash))
    assert node.producer_failures == 1
    assert "block producer step failed" in caplog.text


def test_a_poisoned_pool_does_not_stop_a_restarted_node(tmp_path):
    """A pooled transaction that admission now refuses is rejected with the reason after a
    restart, and the node mines."""
    first = DevNode(NodeConfig(data_dir=tmp_path))
    poison = oversize_create()
    first.storage.put_pooled(poison.hash, poison.encode())
    first.storage.put_pooled(b"\x01" * 32, b"\x02not a transaction")
    first.stop()

    node = DevNode(NodeConfig(data_dir=tmp_path)).start()
    try:
        status = node.status(poison.hash)
        assert status["state"] == "rejected"
        assert status["reason"].startswith("after restart: initcode of 49153 bytes exceeds the limit")
        assert node.status(b"\x01" * 32)["reason"] == "after restart: invalid raw transaction: DecodingError"
        fine = transfer(node)
        node.send_raw_transaction(fine.encode())
        wait_until(lambda: included(node, fine.hash))
    finally:
        node.stop()
