"""Admission rules of the transaction pool: the checks made before a tx is accepted.

Pluggable (as reth's pool validator): :class:`AdmissionRules` is the default. Each
failed check raises :class:`~ogevm.errors.TransactionRejected` with the reason a
client sees.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth.abc import SignedTransactionAPI, StateAPI
from eth.constants import CREATE_CONTRACT_ADDRESS, SECPK1_N
from eth.vm.forks.shanghai.constants import MAX_INITCODE_SIZE

from ogevm.errors import TransactionRejected

#: Largest encoded transaction accepted (geth and reth use 128 KiB).
MAX_TX_BYTES = 128 * 1024
#: EIP-7623: calldata floor of 10 gas per token (a zero byte is 1 token, others 4).
FLOOR_GAS_PER_TOKEN = 10
TX_BASE_GAS = 21_000
#: EIP-2681: a nonce must stay below 2^64 - 1 (an account's nonce can then still grow).
MAX_NONCE = 2**64 - 1
#: EIP-4844 blob transactions: their blobs travel beside the block, which this node has no
#: place for; EIP-7702 set-code transactions are admitted.
BLOB_TX_TYPE = 3
SET_CODE_TX_TYPE = 4


def floor_gas(data: bytes) -> int:
    """EIP-7623 floor gas of a transaction with calldata ``data`` (py-evm does not check it)."""
    zeros = data.count(0)
    tokens = zeros + 4 * (len(data) - zeros)
    return TX_BASE_GAS + FLOOR_GAS_PER_TOKEN * tokens


@dataclass(frozen=True)
class AdmissionRules:
    """The default admission checks, against the head state and the next base fee."""

    chain_id: int
    block_gas_limit: int
    min_priority_fee: int = 0

    def check(self, transaction: SignedTransactionAPI, state: StateAPI, base_fee: int) -> None:
        """Raise :class:`TransactionRejected` unless ``transaction`` may enter the pool.

        The checks cover every rule that would make a block holding the transaction
        invalid (so no admitted transaction can stop block production), then the pool's
        own economics (fees, balance).
        """
        if len(transaction.encode()) > MAX_TX_BYTES:
            raise TransactionRejected(f"oversized transaction: over {MAX_TX_BYTES} bytes")
        try:
            # recovering the sender is the signature check: py-evm's check_signature_validity
            # recovers the key and verifies against it, which cannot fail once it recovered
            sender = transaction.sender
        except Exception as exc:  # eth-keys raises several types for bad signatures
            raise TransactionRejected(f"invalid signature: {exc}") from exc
        if transaction.s > SECPK1_N // 2:
            raise TransactionRejected("invalid signature: s above secp256k1n/2 (EIP-2)")
        chain_id = getattr(transaction, "chain_id", None)
        if chain_id is not None and chain_id != self.chain_id:
            raise TransactionRejected(f"wrong chain id {chain_id}; this chain is {self.chain_id}")
        _check_form(transaction)
        if transaction.gas > self.block_gas_limit:
            raise TransactionRejected(
                f"gas limit {transaction.gas} exceeds the block gas limit {self.block_gas_limit}")
        if transaction.gas < transaction.intrinsic_gas:
            raise TransactionRejected(
                f"intrinsic gas too low: {transaction.gas} < {transaction.intrinsic_gas}")
        floor = floor_gas(transaction.data)
        if transaction.gas < floor:
            raise TransactionRejected(f"gas {transaction.gas} below the EIP-7623 calldata floor {floor}")
        if transaction.max_priority_fee_per_gas > transaction.max_fee_per_gas:
            raise TransactionRejected(
                f"priority fee {transaction.max_priority_fee_per_gas} above the max fee "
                f"{transaction.max_fee_per_gas} (EIP-1559)")
        if transaction.max_fee_per_gas < base_fee:
            raise TransactionRejected(
                f"fee below the minimum: max fee {transaction.max_fee_per_gas} < base fee {base_fee}")
        if transaction.max_priority_fee_per_gas < self.min_priority_fee:
            raise TransactionRejected(
                f"fee below the minimum: priority fee {transaction.max_priority_fee_per_gas} "
                f"< {self.min_priority_fee}")
        nonce = state.get_nonce(sender)
        if transaction.nonce < nonce:
            raise TransactionRejected(f"nonce too low: {transaction.nonce} < {nonce}")
        cost = transaction.gas * transaction.max_fee_per_gas + transaction.value
        balance = state.get_balance(sender)
        if balance < cost:
            raise TransactionRejected(f"insufficient funds for gas * price + value: {balance} < {cost}")


def _check_form(transaction: SignedTransactionAPI) -> None:
    """Rules on the transaction's own fields that make any block holding it invalid."""
    if transaction.nonce >= MAX_NONCE:
        raise TransactionRejected(f"nonce {transaction.nonce} too high: the limit is 2^64-2 (EIP-2681)")
    tx_type = getattr(transaction, "type_id", None)
    if tx_type == BLOB_TX_TYPE:
        raise TransactionRejected("blob transactions (type 3) are not supported: this node keeps no blobs")
    creates = transaction.to == CREATE_CONTRACT_ADDRESS
    if creates and len(transaction.data) > MAX_INITCODE_SIZE:
        raise TransactionRejected(
            f"initcode of {len(transaction.data)} bytes exceeds the limit of {MAX_INITCODE_SIZE} (EIP-3860)")
    if tx_type == SET_CODE_TX_TYPE:
        if creates:
            raise TransactionRejected("a set-code transaction cannot create a contract (EIP-7702)")
        if not transaction.authorization_list:
            raise TransactionRejected("a set-code transaction needs a non-empty authorization list (EIP-7702)")
