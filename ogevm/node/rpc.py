"""JSON-RPC methods of the dev node: the standard ``eth_*`` set clients need, and ``og_*``.

Each method declares its params (``ogevm.node.params``), receives them parsed and returns
JSON-ready values; a bad param is code -32602 naming it, a revert code 3 with the revert
data, as anvil and geth answer. Documented in ``docs/RPC.md``.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import replace
from typing import Any, Callable

import rlp
from eth._utils.address import generate_contract_address
from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI
from eth.constants import CREATE_CONTRACT_ADDRESS
from eth.exceptions import BlockNotFound, HeaderNotFound, TransactionNotFound
from eth_utils import keccak

from ogevm import __version__
from ogevm.abi.codec import decode_revert_reason
from ogevm.errors import ModelStoreError, OgevmError, TransactionRejected, ZkmlUnsupported
from ogevm.node import params
from ogevm.node.node import DevNode
from ogevm.node.params import BlockRef, CallArgs, LogFilter, Param, ParamError, takes
from ogevm.pipe.admission import floor_gas
from ogevm.pipe.bundle import InferenceRecord
from ogevm.vm.calls import CALL_GAS, execute_call

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = (
    -32700, -32600, -32601, -32602, -32603)
EXECUTION_REVERTED = 3
TX_REJECTED = -32003
DEFAULT_PRIORITY_FEE = 1_000_000_000


class RpcError(Exception):
    """A JSON-RPC error object: ``code``, ``message`` and optional ``data``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def to_json(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


# --- value codecs --------------------------------------------------------------------
def qty(value: int) -> str:
    return hex(value)


def data(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def record_json(record: InferenceRecord) -> dict:
    """An inference record as ``og_getInferenceRecords`` returns it (exact decimals)."""
    from ogevm.tensors import number_to_decimal

    result = record.result
    output = None
    if result.output is not None:
        output = {
            "numbers": [{"name": t.name, "shape": list(t.shape),
                         "values": [[v.value, v.decimals] for v in t.values],
                         "decimal": [str(number_to_decimal(v)) for v in t.values]} for t in result.output.numbers],
            "strings": [{"name": t.name, "values": list(t.values)} for t in result.output.strings],
            "jsons": [{"name": j.name, "value": j.value} for j in result.output.jsons],
        }
    return {
        "requestId": str(result.request_id), "txHash": data(result.request_id.tx_hash),
        "index": result.request_id.index, "digest": data(result.digest), "mode": record.mode.name,
        "modelCid": record.model_cid, "node": data(record.node), "signature": data(record.signature),
        "attestation": data(record.attestation) if record.attestation else None,
        "proof": data(record.proof) if record.proof else None,
        "batch": None if record.batch is None else {
            "root": data(record.batch.root), "index": record.batch.index,
            "path": [data(sibling) for sibling in record.batch.path]},
        "output": output, "error": result.error,
    }


ADDRESS = Param("address", params.address)
BLOCK = Param("block", params.block, "latest")
TX_HASH = Param("hash", params.hash32)
FULL = Param("fullTransactions", params.boolean, False)
FILTER_ID = Param("filterId", params.string)
CALL = Param("transaction", params.call_object)


class RpcMethods:
    """The method table of a :class:`DevNode`. Each ``rpc_`` method declares its params
    (:func:`ogevm.node.params.takes`) and receives them parsed."""

    def __init__(self, node: DevNode) -> None:
        self.node = node
        self.chain = node.chain
        self._filters: dict[str, dict] = {}
        self._filter_ids = itertools.count(1)
        self._filter_lock = threading.Lock()
        self.table: dict[str, Callable[..., Any]] = {
            name[len("rpc_"):]: getattr(self, name) for name in dir(self) if name.startswith("rpc_")
        }

    def call(self, method: str, values: Any) -> Any:
        """Dispatch ``method`` with the JSON params ``values``. Raises :class:`RpcError`."""
        handler = self.table.get(method)
        if handler is None:
            raise RpcError(METHOD_NOT_FOUND, f"the method {method} does not exist/is not available")
        if values is None:
            values = []
        if not isinstance(values, list):
            raise RpcError(INVALID_PARAMS, "invalid params: params must be an array")
        try:
            return handler(*params.parse_params(getattr(handler, "params", ()), values))
        except ParamError as exc:
            raise RpcError(INVALID_PARAMS, f"invalid params: {exc}") from exc

    # --- chain ------------------------------------------------------------------
    def rpc_web3_clientVersion(self):
        return f"ogevm/{__version__}"

    @takes(Param("data", params.data))
    def rpc_web3_sha3(self, payload):
        return data(keccak(payload))

    def rpc_net_version(self):
        return str(self.chain.chain.chain_id)

    def rpc_net_listening(self):
        return True

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

    @takes(CALL, BLOCK)
    def rpc_eth_call(self, call, block):
        computation = self._execute(call, block)
        if computation.is_error:
            raise self._revert(computation)
        return data(computation.output)

    @takes(CALL, BLOCK)
    def rpc_eth_estimateGas(self, call, block):
        return qty(self._estimate_gas(call, block))

    # --- transactions --------------------------------------------------------------------
    @takes(Param("data", params.data))
    def rpc_eth_sendRawTransaction(self, raw):
        return self._send_raw(raw)

    @takes(CALL)
    def rpc_eth_sendTransaction(self, call):
        if call.sender is None:
            raise ParamError("transaction.from", "missing: eth_sendTransaction needs a from address")
        account = next((a for a in self.chain.accounts if a.address == call.sender), None)
        if account is None:
            raise ParamError("transaction.from", "not one of this node's unlocked development accounts")
        gas = call.gas if call.gas is not None else self._estimate_gas(call, "latest")
        if call.gas_price is not None:  # a legacy-style request: one price for both caps, as geth does
            tip = max_fee = call.gas_price
        else:
            tip = call.tip if call.tip is not None else DEFAULT_PRIORITY_FEE
            max_fee = call.max_fee if call.max_fee is not None else 2 * self._next_base_fee() + tip
            tip = min(tip, max_fee)
        nonce = call.nonce if call.nonce is not None else \
            self._pending_nonce(call.sender, self.chain.state().get_nonce(call.sender))
        tx = self.chain.sign(account, call.to, call.data, call.value, gas, nonce, max_fee, tip)
        return self._send_raw(tx.encode())

    @takes(TX_HASH)
    def rpc_eth_getTransactionByHash(self, tx_hash):
        try:
            number, index = self.chain.chain.get_canonical_transaction_index(tx_hash)
        except TransactionNotFound:
            entry = self.node.pipeline.pool.get(tx_hash)
            if entry is None or entry.state.value in ("included", "rejected"):
                return None
            return _tx_json(entry.tx, None, None)
        block = self.chain.chain.get_canonical_block_by_number(number)
        return _tx_json(block.transactions[index], block, index)

    @takes(TX_HASH)
    def rpc_eth_getTransactionReceipt(self, tx_hash):
        try:
            number, index = self.chain.chain.get_canonical_transaction_index(tx_hash)
        except TransactionNotFound:
            return None
        block = self.chain.chain.get_canonical_block_by_number(number)
        receipts = block.get_receipts(self.chain.chain.chaindb)
        return _receipt_json(block, index, receipts, self._log_offset(receipts, index))

    # --- blocks ---------------------------------------------------------------------------
    @takes(Param("block", params.block), FULL)
    def rpc_eth_getBlockByNumber(self, block, full):
        if isinstance(block, int) and block > self.chain.head.block_number:
            return None
        return _block_json(self.chain.chain.get_block_by_header(self._header(block)), full)

    @takes(Param("hash", params.hash32), FULL)
    def rpc_eth_getBlockByHash(self, block_hash, full):
        try:
            return _block_json(self.chain.chain.get_block_by_hash(block_hash), full)
        except (BlockNotFound, HeaderNotFound):
            return None

    @takes(Param("block", params.block))
    def rpc_eth_getBlockTransactionCountByNumber(self, block):
        return qty(len(self.chain.chain.get_block_by_header(self._header(block)).transactions))

    # --- logs and filters ----------------------------------------------------------------------
    @takes(Param("filter", params.log_filter))
    def rpc_eth_getLogs(self, criteria):
        return self._logs(criteria)

    @takes(Param("filter", params.log_filter))
    def rpc_eth_newFilter(self, criteria):
        self._block_range(criteria)  # unknown blocks are refused now, not at the first poll
        start = self.chain.head.block_number + 1 if criteria.from_block == "latest" else \
            self._header(criteria.from_block, "filter.fromBlock").block_number
        return self._new_filter({"kind": "logs", "criteria": criteria, "next": start})

    def rpc_eth_newBlockFilter(self):
        return self._new_filter({"kind": "blocks", "next": self.chain.head.block_number + 1})

    def rpc_eth_newPendingTransactionFilter(self):
        return self._new_filter({"kind": "pending", "seen": set()})

    @takes(FILTER_ID)
    def rpc_eth_getFilterChanges(self, filter_id):
        with self._filter_lock:
            flt = self._filters.get(filter_id)
            if flt is None:
                raise ParamError("filterId", "filter not found")
            head = self.chain.head.block_number
            if flt["kind"] == "pending":
                hashes = [e.hash for e in self.node.pipeline.pool.entries() if e.hash not in flt["seen"]]
                flt["seen"].update(hashes)
                return [data(h) for h in hashes]
            start, flt["next"] = flt["next"], head + 1
            if flt["kind"] == "blocks":
                return [data(self.chain.chain.get_canonical_block_header_by_number(n).hash)
                        for n in range(start, head + 1)]
            if start > head:
                return []
            return self._logs(replace(flt["criteria"], from_block=start, to_block=head))

    @takes(FILTER_ID)
    def rpc_eth_getFilterLogs(self, filter_id):
        flt = self._filters.get(filter_id)
        if flt is None or flt["kind"] != "logs":
            raise ParamError("filterId", "filter not found")
        return self._logs(flt["criteria"])

    @takes(FILTER_ID)
    def rpc_eth_uninstallFilter(self, filter_id):
        with self._filter_lock:
            return self._filters.pop(filter_id, None) is not None

    # --- dev -----------------------------------------------------------------------------
    def rpc_evm_mine(self):
        self.node.mine()
        return "0x0"

    # --- og_* ----------------------------------------------------------------------------------
    @takes(Param("model", params.data))
    def rpc_og_addModel(self, model):
        try:
            return self.chain.models.add(model).cid
        except ModelStoreError as exc:
            raise RpcError(INVALID_PARAMS, str(exc)) from exc

    @takes(Param("cid", params.string))
    def rpc_og_enableZkml(self, cid):
        if cid not in self.chain.models:
            raise RpcError(INVALID_PARAMS, "unknown model CID: add the model first (og_addModel)")
        try:
            with self.node.lock:
                info = self.chain.enable_zkml(cid)
        except (ZkmlUnsupported, OgevmError) as exc:
            raise RpcError(INVALID_PARAMS, f"model cannot be enabled for ZKML: {exc}") from exc
        return {"cid": cid, "vkHash": data(info.vk_hash), "logrows": info.logrows, "srs": info.srs}

    def rpc_og_listModels(self):
        return [{
            "cid": info.cid, "size": info.size, "gasPerSample": info.gas_per_sample, "batchable": info.batchable,
            "batchSizes": list(info.batch_sizes), "rowMixing": info.row_mixing,
            "inputs": [{"name": s.name, "type": s.type, "shape": [d if isinstance(d, int) else None for d in s.shape]}
                       for s in info.inputs],
            "outputs": [{"name": s.name, "type": s.type} for s in info.outputs],
        } for info in self.chain.models.values()]

    @takes(TX_HASH)
    def rpc_og_getTransactionStatus(self, tx_hash):
        status = self.node.status(tx_hash)
        if status is None:
            raise RpcError(INVALID_PARAMS, "unknown transaction: this node never accepted it")
        return status

    @takes(TX_HASH)
    def rpc_og_getInferenceRecords(self, tx_hash):
        try:
            number, _ = self.chain.chain.get_canonical_transaction_index(tx_hash)
        except TransactionNotFound:
            entry = self.node.pipeline.pool.get(tx_hash)
            records = list(entry.records.values()) if entry is not None else []
        else:
            header = self.chain.chain.get_canonical_block_header_by_number(number)
            records = [r for r in self.node.storage.bundle(header) if r.request_id.tx_hash == tx_hash]
        return [record_json(r) for r in records]

    def rpc_og_pipeStats(self):
        pool = self.node.pipeline.pool
        states: dict[str, int] = {}
        for entry in pool.entries():
            states[entry.state.value] = states.get(entry.state.value, 0) + 1
        return {"pool": states, "pooled": len(pool), "blocksBuilt": self.node.blocks_built,
                "producerFailures": self.node.producer_failures,
                "evmPassesPerIncludedTx": self.node.pipeline.passes_per_included_tx(),
                "inFlightRequests": len(self.node.pipeline._in_flight),
                "teeEnclave": {"address": data(self.node.identities[0].enclave), "simulated": True},
                "inferenceNodes": [{"node": data(i.node), "teeEnclave": data(i.enclave)} for i in self.node.identities]}

    # --- helpers ----------------------------------------------------------------------------------
    def _header(self, block: BlockRef, name: str = "block") -> BlockHeaderAPI:
        """The header a parsed block parameter names; ParamError if there is none."""
        head = self.chain.head
        if block == "earliest":
            return self.chain.chain.get_canonical_block_header_by_number(0)
        if isinstance(block, str):
            return head
        if isinstance(block, bytes):
            try:
                return self.chain.chain.get_block_header_by_hash(block)
            except HeaderNotFound as exc:
                raise ParamError(name, f"unknown block {data(block)}") from exc
        if block > head.block_number:
            raise ParamError(name, f"block {block} is beyond the head {head.block_number}")
        return self.chain.chain.get_canonical_block_header_by_number(block)

    def _state(self, block: BlockRef):
        return self.chain.chain.get_vm(self._header(block)).state

    def _pending_nonce(self, address: bytes, nonce: int) -> int:
        queued = {e.nonce for e in self.node.pipeline.pool.entries() if e.sender == address}
        while nonce in queued:
            nonce += 1
        return nonce

    def _next_base_fee(self) -> int:
        return self.chain.base_vm_class.create_header_from_parent(self.chain.head).base_fee_per_gas

    def _send_raw(self, raw: bytes) -> str:
        try:
            return data(self.node.send_raw_transaction(raw))
        except TransactionRejected as exc:
            raise RpcError(TX_REJECTED if "invalid raw" not in exc.reason else INVALID_PARAMS, exc.reason) from exc

    def _gas_cap(self, call: CallArgs) -> int:
        """The gas a call may use: its own ``gas``, at most the block gas limit (geth caps
        calls too), so no call runs unbounded."""
        limit = self.chain.head.gas_limit
        return limit if call.gas is None else min(call.gas, limit)

    def _execute(self, call: CallArgs, block: BlockRef, gas: int | None = None):
        sender = call.sender or self.chain.accounts[0].address
        if gas is None:
            gas = self._gas_cap(call) - _intrinsic_gas(call) if call.gas is not None else CALL_GAS
        header = self._header(block)
        state = self.chain.chain.get_vm(self.chain.base_vm_class.create_header_from_parent(header)).state
        if call.value > params.UINT256_MAX - state.get_balance(sender):
            raise ParamError("transaction.value", "the sender's balance plus value is above 2^256-1")
        return execute_call(state, call.to, call.data, sender, call.value, max(gas, 0))

    def _succeeds(self, call: CallArgs, block: BlockRef, gas: int) -> bool:
        return not self._execute(call, block, gas - _intrinsic_gas(call)).is_error

    def _estimate_gas(self, call: CallArgs, block: BlockRef) -> int:
        cap = self._gas_cap(call)
        computation = self._execute(call, block, cap - _intrinsic_gas(call))
        if computation.is_error:
            raise self._revert(computation)
        intrinsic = _intrinsic_gas(call)
        low = intrinsic + computation.get_gas_used() - min(computation.get_gas_refund(), computation.get_gas_used() // 5)
        low = max(low, floor_gas(call.data))
        if self._succeeds(call, block, low):  # the exact amount is enough (plain transfers: 21000)
            return low
        # the 63/64 rule can make the exact amount fail: search upwards, checking by execution
        high = cap
        candidate = min(high, low * 64 // 63 + 2_300)
        if self._succeeds(call, block, candidate):
            high = candidate
        while high - low > 1_000:
            middle = (low + high) // 2
            if self._succeeds(call, block, middle):
                high = middle
            else:
                low = middle
        return high

    @staticmethod
    def _revert(computation) -> RpcError:
        reason = decode_revert_reason(computation.output)
        message = f"execution reverted: {reason}" if reason else "execution reverted"
        if computation.output:
            return RpcError(EXECUTION_REVERTED, message, data(computation.output))
        return RpcError(EXECUTION_REVERTED, f"{message} ({type(computation.error).__name__})")

    @staticmethod
    def _log_offset(receipts, index: int) -> int:
        return sum(len(r.logs) for r in receipts[:index])

    def _new_filter(self, flt: dict) -> str:
        with self._filter_lock:
            filter_id = qty(next(self._filter_ids))
            self._filters[filter_id] = flt
            return filter_id

    def _block_range(self, criteria: LogFilter) -> range:
        if criteria.block_hash is not None:
            number = self._header(criteria.block_hash, "filter.blockHash").block_number
            return range(number, number + 1)
        start = self._header(criteria.from_block, "filter.fromBlock").block_number
        stop = self._header(criteria.to_block, "filter.toBlock").block_number
        return range(start, stop + 1)

    def _logs(self, criteria: LogFilter) -> list[dict]:
        found = []
        for number in self._block_range(criteria):
            block = self.chain.chain.get_canonical_block_by_number(number)
            receipts = block.get_receipts(self.chain.chain.chaindb)
            log_index = 0
            for tx_index, receipt in enumerate(receipts):
                for log in receipt.logs:
                    if _matches(log, criteria):
                        found.append(_log_json(log, block, tx_index, log_index))
                    log_index += 1
        return found


def _matches(log, criteria: LogFilter) -> bool:
    if criteria.addresses is not None and log.address not in criteria.addresses:
        return False
    if len(criteria.topics) > len(log.topics):
        return False
    return all(allowed is None or topic in allowed for allowed, topic in zip(criteria.topics, log.topics))


def _intrinsic_gas(call: CallArgs) -> int:
    zeros = call.data.count(0)
    gas = 21_000 + 4 * zeros + 16 * (len(call.data) - zeros)
    if call.to is None:
        gas += 32_000 + 2 * ((len(call.data) + 31) // 32)
    return gas


def _log_json(log, block: BlockAPI, tx_index: int, log_index: int) -> dict:
    return {
        "address": data(log.address), "topics": [data(t.to_bytes(32, "big")) for t in log.topics],
        "data": data(log.data), "blockNumber": qty(block.number), "blockHash": data(block.hash),
        "transactionHash": data(block.transactions[tx_index].hash), "transactionIndex": qty(tx_index),
        "logIndex": qty(log_index), "removed": False,
    }


def _receipt_json(block: BlockAPI, index: int, receipts: tuple[ReceiptAPI, ...], log_offset: int) -> dict:
    tx = block.transactions[index]
    receipt = receipts[index]
    previous = receipts[index - 1].gas_used if index else 0
    contract = None
    if tx.to == CREATE_CONTRACT_ADDRESS and receipt.state_root == b"\x01":
        contract = data(generate_contract_address(tx.sender, tx.nonce))
    base_fee = block.header.base_fee_per_gas
    return {
        "transactionHash": data(tx.hash), "transactionIndex": qty(index), "blockHash": data(block.hash),
        "blockNumber": qty(block.number), "from": data(tx.sender),
        "to": None if tx.to == CREATE_CONTRACT_ADDRESS else data(tx.to),
        "cumulativeGasUsed": qty(receipt.gas_used), "gasUsed": qty(receipt.gas_used - previous),
        "effectiveGasPrice": qty(min(tx.max_fee_per_gas, base_fee + tx.max_priority_fee_per_gas)),
        "contractAddress": contract,
        "logs": [_log_json(log, block, index, log_offset + i) for i, log in enumerate(receipt.logs)],
        "logsBloom": data(receipt.bloom.to_bytes(256, "big")),
        "status": qty(1 if receipt.state_root == b"\x01" else 0), "type": qty(getattr(tx, "type_id", 0) or 0),
    }


def _tx_json(tx: SignedTransactionAPI, block: BlockAPI | None, index: int | None) -> dict:
    type_id = getattr(tx, "type_id", None) or 0
    result = {
        "hash": data(tx.hash), "nonce": qty(tx.nonce), "from": data(tx.sender),
        "to": None if tx.to == CREATE_CONTRACT_ADDRESS else data(tx.to), "value": qty(tx.value),
        "gas": qty(tx.gas), "input": data(tx.data), "type": qty(type_id),
        "blockHash": data(block.hash) if block else None, "blockNumber": qty(block.number) if block else None,
        "transactionIndex": qty(index) if block else None,
        "r": qty(tx.r), "s": qty(tx.s), "v": qty(tx.y_parity if type_id else tx.v),
    }
    if type_id:
        result.update({"chainId": qty(tx.chain_id), "maxFeePerGas": qty(tx.max_fee_per_gas),
                       "maxPriorityFeePerGas": qty(tx.max_priority_fee_per_gas), "yParity": qty(tx.y_parity),
                       "accessList": [], "gasPrice": qty(tx.max_fee_per_gas)})
    else:
        result["gasPrice"] = qty(tx.gas_price)
    return result


def _block_json(block: BlockAPI, full: bool) -> dict:
    header = block.header
    result = {
        "number": qty(header.block_number), "hash": data(header.hash), "parentHash": data(header.parent_hash),
        "nonce": data(header.nonce), "sha3Uncles": data(header.uncles_hash),
        "logsBloom": data(header.bloom.to_bytes(256, "big")), "transactionsRoot": data(header.transaction_root),
        "stateRoot": data(header.state_root), "receiptsRoot": data(header.receipt_root),
        "miner": data(header.coinbase), "difficulty": qty(header.difficulty), "totalDifficulty": qty(0),
        "extraData": data(header.extra_data), "size": qty(len(rlp.encode(block))),
        "gasLimit": qty(header.gas_limit), "gasUsed": qty(header.gas_used), "timestamp": qty(header.timestamp),
        "mixHash": data(header.mix_hash), "baseFeePerGas": qty(header.base_fee_per_gas), "uncles": [],
        "withdrawals": [], "withdrawalsRoot": data(header.withdrawals_root),
        "blobGasUsed": qty(header.blob_gas_used), "excessBlobGas": qty(header.excess_blob_gas),
        "parentBeaconBlockRoot": data(header.parent_beacon_block_root),
        "transactions": [_tx_json(tx, block, i) if full else data(tx.hash) for i, tx in enumerate(block.transactions)],
    }
    if hasattr(header, "requests_hash"):
        result["requestsHash"] = data(header.requests_hash)
    return result
