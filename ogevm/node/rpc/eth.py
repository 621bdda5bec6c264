"""``eth_*``: the chain, accounts' state, transactions and blocks (calls and gas are in
:mod:`~ogevm.node.rpc.calls`, logs and filters in :mod:`~ogevm.node.rpc.filters`)."""

from __future__ import annotations

from eth.exceptions import BlockNotFound, HeaderNotFound, TransactionNotFound

from ogevm.node import params
from ogevm.node.params import Param, ParamError, takes
from ogevm.node.rpc.base import (ADDRESS, BLOCK, CALL, DEFAULT_PRIORITY_FEE, FULL, TX_HASH, Namespace, data,
                                 qty)
from ogevm.node.rpc.shapes import block_json, receipt_json, tx_json


class EthMethods(Namespace):
    # --- chain ------------------------------------------------------------------
    def rpc_eth_chainId(self):
        return qty(self.chain.chain.chain_id)

    def rpc_eth_syncing(self):
        return False

    def rpc_eth_mining(self):
        return True

    def rpc_eth_accounts(self):
        return [account.checksum_address for account in self.chain.accounts]

    def rpc_eth_blockNumber(self):
        return qty(self.chain.head.block_number)

    def rpc_eth_gasPrice(self):
        return qty(self._next_base_fee() + DEFAULT_PRIORITY_FEE)

    def rpc_eth_maxPriorityFeePerGas(self):
        return qty(DEFAULT_PRIORITY_FEE)

    @takes(Param("blockCount", params.uint64), Param("newestBlock", params.block, "latest"),
           Param("rewardPercentiles", params.percentiles, ()))
    def rpc_eth_feeHistory(self, count, newest_block, percentiles):
        if count < 1:
            raise ParamError("blockCount", "must be at least 1")
        count = min(count, 1024)
        newest = self._header(newest_block, "newestBlock").block_number
        oldest = max(0, newest - count + 1)
        headers = [self.chain.chain.get_canonical_block_header_by_number(n) for n in range(oldest, newest + 1)]
        next_fee = self.chain.base_vm_class.create_header_from_parent(headers[-1]).base_fee_per_gas
        result = {
            "oldestBlock": qty(oldest),
            "baseFeePerGas": [qty(h.base_fee_per_gas) for h in headers] + [qty(next_fee)],
            "gasUsedRatio": [h.gas_used / h.gas_limit for h in headers],
        }
        if percentiles:
            result["reward"] = [[qty(0)] * len(percentiles) for _ in headers]
        return result

    # --- state ------------------------------------------------------------------------
    @takes(ADDRESS, BLOCK)
    def rpc_eth_getBalance(self, address, block):
        return qty(self._state(block).get_balance(address))

    @takes(ADDRESS, BLOCK)
    def rpc_eth_getTransactionCount(self, address, block):
        nonce = self._state(block).get_nonce(address)
        if block == "pending":
            nonce = self._pending_nonce(address, nonce)
        return qty(nonce)

    @takes(ADDRESS, BLOCK)
    def rpc_eth_getCode(self, address, block):
        return data(self._state(block).get_code(address))

    @takes(ADDRESS, Param("slot", params.uint256), BLOCK)
    def rpc_eth_getStorageAt(self, address, slot, block):
        return data(self._state(block).get_storage(address, slot).to_bytes(32, "big"))

    # --- transactions --------------------------------------------------------------------
    @takes(Param("data", params.data))
    def rpc_eth_sendRawTransaction(self, raw):
        return self._submit(lambda: self.node.send_raw_transaction(raw))

    @takes(CALL)
    def rpc_eth_sendTransaction(self, call):
        """Signed for a development account, or marked for an impersonated address
        (:mod:`ogevm.node.impersonation`); either way admitted like a raw transaction."""
        if call.sender is None:
            raise ParamError("transaction.from", "missing: eth_sendTransaction needs a from address")
        account = next((a for a in self.chain.accounts if a.address == call.sender), None)
        if account is None and not self.node.impersonating(call.sender):
            raise ParamError("transaction.from", "not one of this node's unlocked development accounts "
                                                 "nor an impersonated address (anvil_impersonateAccount)")
        gas = call.gas if call.gas is not None else self._estimate_gas(call, "latest")
        if call.gas_price is not None:  # a legacy-style request: one price for both caps, as geth does
            tip = max_fee = call.gas_price
        else:
            tip = call.tip if call.tip is not None else DEFAULT_PRIORITY_FEE
            max_fee = call.max_fee if call.max_fee is not None else 2 * self._next_base_fee() + tip
            tip = min(tip, max_fee)
        nonce = call.nonce if call.nonce is not None else \
            self._pending_nonce(call.sender, self.chain.state().get_nonce(call.sender))
        if account is not None:
            tx = self.chain.sign(account, call.to, call.data, call.value, gas, nonce, max_fee, tip)
        else:
            tx = self.node.impersonated_transaction(call.sender, call.to, call.data, call.value, gas, nonce,
                                                    max_fee, tip)
        return self._submit(lambda: self.node.send_transaction(tx))

    @takes(TX_HASH)
    def rpc_eth_getTransactionByHash(self, tx_hash):
        try:
            number, index = self.chain.chain.get_canonical_transaction_index(tx_hash)
        except TransactionNotFound:
            entry = self.node.pipeline.pool.get(tx_hash)
            if entry is None or entry.state.value in ("included", "rejected"):
                return None
            return tx_json(entry.tx, None, None)
        block = self.chain.chain.get_canonical_block_by_number(number)
        return tx_json(block.transactions[index], block, index)

    @takes(TX_HASH)
    def rpc_eth_getTransactionReceipt(self, tx_hash):
        try:
            number, index = self.chain.chain.get_canonical_transaction_index(tx_hash)
        except TransactionNotFound:
            return None
        block = self.chain.chain.get_canonical_block_by_number(number)
        receipts = block.get_receipts(self.chain.chain.chaindb)
        return receipt_json(block, index, receipts, sum(len(r.logs) for r in receipts[:index]))

    # --- blocks ---------------------------------------------------------------------------
    @takes(Param("block", params.block), FULL)
    def rpc_eth_getBlockByNumber(self, block, full):
        if isinstance(block, int) and block > self.chain.head.block_number:
            return None
        return block_json(self.chain.chain.get_block_by_header(self._header(block)), full)

    @takes(Param("hash", params.hash32), FULL)
    def rpc_eth_getBlockByHash(self, block_hash, full):
        try:
            return block_json(self.chain.chain.get_block_by_hash(block_hash), full)
        except (BlockNotFound, HeaderNotFound):
            return None

    @takes(Param("block", params.block))
    def rpc_eth_getBlockTransactionCountByNumber(self, block):
        return qty(len(self.chain.chain.get_block_by_header(self._header(block)).transactions))
