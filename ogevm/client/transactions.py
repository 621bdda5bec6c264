"""Transactions from one key: nonces, gas, and waiting for their receipts."""

from __future__ import annotations

import threading
import time

from eth_utils import to_checksum_address

from ogevm.client.rpc import EXECUTION_REVERTED, TX_REJECTED, RpcCallError, RpcConnection, revert_error
from ogevm.errors import OgevmError, TransactionRejected


class ReceiptTimeout(OgevmError, TimeoutError):
    """A transaction was accepted but has no receipt after the timeout."""

    def __init__(self, tx_hash: str, timeout: float) -> None:
        super().__init__(f"no receipt for {tx_hash} after {timeout:g} s (see og_getTransactionStatus)")
        self.tx_hash = tx_hash


class TransactionSender(RpcConnection):
    """Signed EIP-1559 transactions from ``private_key``, sent through the node at ``rpc_url``:
    nonces kept locally (resynchronised after a refusal), gas estimated, receipts awaited
    for at most ``timeout`` seconds, polled every ``poll_interval`` seconds at first."""

    def __init__(self, rpc_url: str, private_key: str | bytes, *, timeout: float = 120.0,
                 poll_interval: float = 0.02) -> None:
        from eth_account import Account  # signing only; imported here to keep ``import ogevm`` light

        super().__init__(rpc_url)
        self.account = Account.from_key(private_key)
        self.address: str = self.account.address
        self.timeout = timeout
        self.poll_interval = poll_interval
        self._send_lock = threading.Lock()
        self._nonce: int | None = None
        self._gas_cap: int | None = None

    def send_transaction(self, to: str | None, data: bytes = b"", value: int = 0, gas: int | None = None) -> str:
        """Sign and send an EIP-1559 transaction; returns its hash (``to=None`` deploys).

        Without ``gas`` the node estimates it (plus 10%, capped at the block gas limit);
        a revert at estimation raises TransactionFailed and nothing is sent. A refusal of
        the pool raises TransactionRejected.
        """
        call = {"from": self.address, "data": "0x" + bytes(data).hex(), "value": hex(value)}
        if to is not None:
            call["to"] = to
        if gas is None:
            try:
                estimate = int(self.rpc("eth_estimateGas", call), 16)
            except RpcCallError as exc:
                if exc.code != EXECUTION_REVERTED:
                    raise
                raise revert_error(exc) from exc
            gas = min(estimate + estimate // 10, self._block_gas_limit())
        tip = int(self.rpc("eth_maxPriorityFeePerGas"), 16)
        max_fee = 2 * int(self.rpc("eth_gasPrice"), 16) + tip
        chain_id = self.chain_id
        with self._send_lock:
            for attempt in range(2):
                if self._nonce is None:
                    self._nonce = int(self.rpc("eth_getTransactionCount", self.address, "pending"), 16)
                tx = {"type": 2, "chainId": chain_id, "nonce": self._nonce, "value": value, "data": bytes(data),
                      "gas": gas, "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip}
                if to is not None:
                    tx["to"] = to_checksum_address(to)
                raw = self.account.sign_transaction(tx).raw_transaction
                try:
                    tx_hash = self.rpc("eth_sendRawTransaction", "0x" + bytes(raw).hex())
                except RpcCallError as exc:
                    self._nonce = None  # resynchronise from the node next time
                    if attempt == 0 and "nonce too low" in exc.message:
                        continue
                    if exc.code == TX_REJECTED:
                        raise TransactionRejected(exc.message) from exc
                    raise
                self._nonce += 1
                return tx_hash
        raise AssertionError("unreachable")

    def wait_for_receipt(self, tx_hash: str, timeout: float | None = None) -> dict:
        """Poll ``eth_getTransactionReceipt`` until the transaction is mined.

        Raises TransactionRejected if the pool drops it meanwhile, ReceiptTimeout after
        ``timeout`` seconds (default: the client's). The receipt's status is not checked.
        """
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        interval = self.poll_interval
        polls = 0
        while True:
            receipt = self.rpc("eth_getTransactionReceipt", tx_hash)
            if receipt is not None:
                return receipt
            polls += 1
            if polls % 10 == 0:  # now and then: was it rejected after acceptance?
                status = self.rpc("og_getTransactionStatus", tx_hash)
                if status["state"] == "rejected":
                    with self._send_lock:
                        self._nonce = None  # later nonces would wait behind the gap: resynchronise
                    error = TransactionRejected(status["reason"] or "rejected by the pool")
                    error.tx_hash = tx_hash
                    raise error
            if time.monotonic() > deadline:
                raise ReceiptTimeout(tx_hash, timeout)
            time.sleep(interval)
            interval = min(interval * 1.5, 0.25)

    def _block_gas_limit(self) -> int:
        if self._gas_cap is None:
            self._gas_cap = int(self.rpc("eth_getBlockByNumber", "latest", False)["gasLimit"], 16)
        return self._gas_cap
