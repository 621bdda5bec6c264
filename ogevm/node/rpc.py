"""JSON-RPC methods of the dev node: the standard ``eth_*`` set clients need, and ``og_*``.

Each method takes the JSON ``params`` list and returns JSON-ready values; bad params
raise :class:`RpcError` with code -32602, reverts code 3 with the revert data, as
anvil and geth answer. Documented in ``docs/RPC.md``.
"""

from __future__ import annotations

import itertools
import threading
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
from ogevm.node.node import DevNode
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


def parse_data(value: Any, name: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise RpcError(INVALID_PARAMS, f"{name} must be 0x-prefixed hex")
    try:
        return bytes.fromhex(value[2:])
    except ValueError as exc:
        raise RpcError(INVALID_PARAMS, f"{name} is not valid hex") from exc


def parse_qty(value: Any, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if not isinstance(value, str) or not value.startswith("0x"):
        raise RpcError(INVALID_PARAMS, f"{name} must be a 0x-prefixed hex quantity")
    try:
        return int(value, 16)
    except ValueError as exc:
        raise RpcError(INVALID_PARAMS, f"{name} is not a hex quantity") from exc


def parse_address(value: Any, name: str = "address") -> bytes:
    raw = parse_data(value, name)
    if len(raw) != 20:
        raise RpcError(INVALID_PARAMS, f"{name} must be 20 bytes")
    return raw


def parse_hash(value: Any, name: str = "hash") -> bytes:
    raw = parse_data(value, name)
    if len(raw) != 32:
        raise RpcError(INVALID_PARAMS, f"{name} must be 32 bytes")
    return raw


def _param(params: list, index: int, name: str, default: Any = ...) -> Any:
    if index < len(params) and params[index] is not None:
        return params[index]
    if default is ...:
        raise RpcError(INVALID_PARAMS, f"missing parameter {index}: {name}")
    return default


def _object(value: Any, name: str) -> dict:
    if not isinstance(value, dict):
        raise RpcError(INVALID_PARAMS, f"{name} must be an object")
    return value


def _filter_id(params: list) -> str:
    filter_id = _param(params, 0, "filterId")
    if not isinstance(filter_id, str):
        raise RpcError(INVALID_PARAMS, "filterId must be a hex string")
    return filter_id


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
        "output": output, "error": result.error,
    }


class RpcMethods:
    """The method table of a :class:`DevNode`."""

    def __init__(self, node: DevNode) -> None:
        self.node = node
        self.chain = node.chain
        self._filters: dict[str, dict] = {}
        self._filter_ids = itertools.count(1)
        self._filter_lock = threading.Lock()
        self.table: dict[str, Callable[[list], Any]] = {
            name[len("rpc_"):]: getattr(self, name) for name in dir(self) if name.startswith("rpc_")
        }

    def call(self, method: str, params: Any) -> Any:
        """Dispatch ``method``. Raises :class:`RpcError`."""
        handler = self.table.get(method)
        if handler is None:
            raise RpcError(METHOD_NOT_FOUND, f"the method {method} does not exist/is not available")
        if params is None:
            params = []
        if not isinstance(params, list):
            raise RpcError(INVALID_PARAMS, "params must be an array")
        return handler(params)

    # --- chain ------------------------------------------------------------------
    def rpc_web3_clientVersion(self, params):
        return f"ogevm/{__version__}"

    def rpc_web3_sha3(self, params):
        return data(keccak(parse_data(_param(params, 0, "data"), "data")))

    def rpc_net_version(self, params):
        return str(self.chain.chain.chain_id)

    def rpc_net_listening(self, params):
        return True

    def rpc_eth_chainId(self, params):
        return qty(self.chain.chain.chain_id)

    def rpc_eth_syncing(self, params):
        return False

    def rpc_eth_mining(self, params):
        return True

    def rpc_eth_accounts(self, params):
        return [account.checksum_address for account in self.chain.accounts]

    def rpc_eth_blockNumber(self, params):
        return qty(self.chain.head.block_number)

    def rpc_eth_gasPrice(self, params):
        return qty(self._next_base_fee() + DEFAULT_PRIORITY_FEE)

    def rpc_eth_maxPriorityFeePerGas(self, params):
        return qty(DEFAULT_PRIORITY_FEE)

    def rpc_eth_feeHistory(self, params):
        count = min(parse_qty(_param(params, 0, "blockCount"), "blockCount"), 1024)
        if count < 1:
            raise RpcError(INVALID_PARAMS, "blockCount must be at least 1")
        newest = self._header(_param(params, 1, "newestBlock", "latest")).block_number
        percentiles = _param(params, 2, "rewardPercentiles", [])
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
    def rpc_eth_getBalance(self, params):
        address = parse_address(_param(params, 0, "address"))
        return qty(self._state(_param(params, 1, "block", "latest")).get_balance(address))

    def rpc_eth_getTransactionCount(self, params):
        address = parse_address(_param(params, 0, "address"))
        tag = _param(params, 1, "block", "latest")
        nonce = self._state(tag).get_nonce(address)
        if tag == "pending":
            nonce = self._pending_nonce(address, nonce)
        return qty(nonce)

    def rpc_eth_getCode(self, params):
        address = parse_address(_param(params, 0, "address"))
        return data(self._state(_param(params, 1, "block", "latest")).get_code(address))

    def rpc_eth_getStorageAt(self, params):
        address = parse_address(_param(params, 0, "address"))
        slot = parse_qty(_param(params, 1, "position"), "position")
        value = self._state(_param(params, 2, "block", "latest")).get_storage(address, slot)
        return data(value.to_bytes(32, "big"))

    def rpc_eth_call(self, params):
        call = _param(params, 0, "transaction")
        computation = self._execute(call, _param(params, 1, "block", "latest"))
        if computation.is_error:
            raise self._revert(computation)
        return data(computation.output)

    def rpc_eth_estimateGas(self, params):
        call = _object(_param(params, 0, "transaction"), "transaction")
        tag = _param(params, 1, "block", "latest")
        cap = parse_qty(call.get("gas"), "gas") if call.get("gas") else self.chain.head.gas_limit
        computation = self._execute({**call, "gas": qty(cap)}, tag)
        if computation.is_error:
            raise self._revert(computation)
        intrinsic = _intrinsic_gas(call)
        low = intrinsic + computation.get_gas_used() - min(computation.get_gas_refund(), computation.get_gas_used() // 5)
        low = max(low, floor_gas(_payload(call)))
        if self._succeeds(call, tag, low):  # the exact amount is enough (plain transfers: 21000)
            return qty(low)
        # the 63/64 rule can make the exact amount fail: search upwards, checking by execution
        high = cap
        candidate = min(high, low * 64 // 63 + 2_300)
        if self._succeeds(call, tag, candidate):
            high = candidate
        while high - low > 1_000:
            middle = (low + high) // 2
            if self._succeeds(call, tag, middle):
                high = middle
            else:
                low = middle
        return qty(high)

    # --- transactions --------------------------------------------------------------------
    def rpc_eth_sendRawTransaction(self, params):
        raw = parse_data(_param(params, 0, "data"), "data")
        try:
            return data(self.node.send_raw_transaction(raw))
        except TransactionRejected as exc:
            raise RpcError(TX_REJECTED if "invalid raw" not in exc.reason else INVALID_PARAMS, exc.reason) from exc

    def rpc_eth_sendTransaction(self, params):
        call = _param(params, 0, "transaction")
        if not isinstance(call, dict) or "from" not in call:
            raise RpcError(INVALID_PARAMS, "transaction needs a from address")
        sender = parse_address(call["from"], "from")
        account = next((a for a in self.chain.accounts if a.address == sender), None)
        if account is None:
            raise RpcError(INVALID_PARAMS, "from is not one of this node's unlocked development accounts")
        to = parse_address(call["to"], "to") if call.get("to") else None
        payload = _payload(call)
        value = parse_qty(call.get("value", "0x0"), "value")
        gas = parse_qty(call["gas"], "gas") if call.get("gas") else parse_qty(self.rpc_eth_estimateGas([call]), "gas")
        tip = parse_qty(call.get("maxPriorityFeePerGas", qty(DEFAULT_PRIORITY_FEE)), "maxPriorityFeePerGas")
        max_fee = parse_qty(call["maxFeePerGas"], "maxFeePerGas") if call.get("maxFeePerGas") else \
            2 * self._next_base_fee() + tip
        nonce = parse_qty(call["nonce"], "nonce") if call.get("nonce") else \
            self._pending_nonce(sender, self.chain.state().get_nonce(sender))
        tx = self.chain.sign(account, to, payload, value, gas, nonce, max_fee, tip)
        return self.rpc_eth_sendRawTransaction([data(tx.encode())])

    def rpc_eth_getTransactionByHash(self, params):
        tx_hash = parse_hash(_param(params, 0, "hash"))
        try:
            number, index = self.chain.chain.get_canonical_transaction_index(tx_hash)
        except TransactionNotFound:
            entry = self.node.pipeline.pool.get(tx_hash)
            if entry is None or entry.state.value in ("included", "rejected"):
                return None
            return _tx_json(entry.tx, None, None)
        block = self.chain.chain.get_canonical_block_by_number(number)
        return _tx_json(block.transactions[index], block, index)

    def rpc_eth_getTransactionReceipt(self, params):
        tx_hash = parse_hash(_param(params, 0, "hash"))
        try:
            number, index = self.chain.chain.get_canonical_transaction_index(tx_hash)
        except TransactionNotFound:
            return None
        block = self.chain.chain.get_canonical_block_by_number(number)
        receipts = block.get_receipts(self.chain.chain.chaindb)
        return _receipt_json(block, index, receipts, self._log_offset(receipts, index))

    # --- blocks ---------------------------------------------------------------------------
    def rpc_eth_getBlockByNumber(self, params):
        tag = _param(params, 0, "block")
        full = bool(_param(params, 1, "fullTransactions", False))
        try:
            header = self._header(tag)
        except RpcError:
            if isinstance(tag, str) and tag.startswith("0x"):
                return None
            raise
        return _block_json(self.chain.chain.get_block_by_header(header), full)

    def rpc_eth_getBlockByHash(self, params):
        block_hash = parse_hash(_param(params, 0, "hash"))
        full = bool(_param(params, 1, "fullTransactions", False))
        try:
            return _block_json(self.chain.chain.get_block_by_hash(block_hash), full)
        except (BlockNotFound, HeaderNotFound):
            return None

    def rpc_eth_getBlockTransactionCountByNumber(self, params):
        return qty(len(self.chain.chain.get_block_by_header(self._header(_param(params, 0, "block"))).transactions))

    # --- logs and filters ----------------------------------------------------------------------
    def rpc_eth_getLogs(self, params):
        return self._logs(_param(params, 0, "filter"))

    def rpc_eth_newFilter(self, params):
        criteria = _object(_param(params, 0, "filter"), "filter")
        self._logs({**criteria, "fromBlock": criteria.get("fromBlock", "latest"), "toBlock": "latest"})  # validate
        return self._new_filter({"kind": "logs", "criteria": criteria,
                                 "next": self._header(criteria.get("fromBlock", "latest")).block_number
                                 if criteria.get("fromBlock") not in (None, "latest") else
                                 self.chain.head.block_number + 1})

    def rpc_eth_newBlockFilter(self, params):
        return self._new_filter({"kind": "blocks", "next": self.chain.head.block_number + 1})

    def rpc_eth_newPendingTransactionFilter(self, params):
        return self._new_filter({"kind": "pending", "seen": set()})

    def rpc_eth_getFilterChanges(self, params):
        with self._filter_lock:
            flt = self._filters.get(_filter_id(params))
            if flt is None:
                raise RpcError(INVALID_PARAMS, "filter not found")
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
            return self._logs({**flt["criteria"], "fromBlock": qty(start), "toBlock": qty(head)})

    def rpc_eth_getFilterLogs(self, params):
        flt = self._filters.get(_filter_id(params))
        if flt is None or flt["kind"] != "logs":
            raise RpcError(INVALID_PARAMS, "filter not found")
        return self._logs(flt["criteria"])

    def rpc_eth_uninstallFilter(self, params):
        with self._filter_lock:
            return self._filters.pop(_filter_id(params), None) is not None

    # --- dev -----------------------------------------------------------------------------
    def rpc_evm_mine(self, params):
        self.node.mine()
        return "0x0"

    # --- og_* ----------------------------------------------------------------------------------
    def rpc_og_addModel(self, params):
        model = parse_data(_param(params, 0, "model"), "model")
        try:
            return self.chain.models.add(model).cid
        except ModelStoreError as exc:
            raise RpcError(INVALID_PARAMS, str(exc)) from exc

    def rpc_og_enableZkml(self, params):
        cid = _param(params, 0, "cid")
        if not isinstance(cid, str) or cid not in self.chain.models:
            raise RpcError(INVALID_PARAMS, "unknown model CID: add the model first (og_addModel)")
        try:
            with self.node.lock:
                info = self.chain.enable_zkml(cid)
        except (ZkmlUnsupported, OgevmError) as exc:
            raise RpcError(INVALID_PARAMS, f"model cannot be enabled for ZKML: {exc}") from exc
        return {"cid": cid, "vkHash": data(info.vk_hash), "logrows": info.logrows, "srs": info.srs}

    def rpc_og_listModels(self, params):
        return [{
            "cid": info.cid, "size": info.size, "gasPerSample": info.gas_per_sample, "batchable": info.batchable,
            "inputs": [{"name": s.name, "type": s.type, "shape": [d if isinstance(d, int) else None for d in s.shape]}
                       for s in info.inputs],
            "outputs": [{"name": s.name, "type": s.type} for s in info.outputs],
        } for info in self.chain.models.values()]

    def rpc_og_getTransactionStatus(self, params):
        status = self.node.status(parse_hash(_param(params, 0, "hash")))
        if status is None:
            raise RpcError(INVALID_PARAMS, "unknown transaction: this node never accepted it")
        return status

    def rpc_og_getInferenceRecords(self, params):
        tx_hash = parse_hash(_param(params, 0, "hash"))
        try:
            number, _ = self.chain.chain.get_canonical_transaction_index(tx_hash)
        except TransactionNotFound:
            entry = self.node.pipeline.pool.get(tx_hash)
            records = list(entry.records.values()) if entry is not None else []
        else:
            header = self.chain.chain.get_canonical_block_header_by_number(number)
            records = [r for r in self.node.storage.bundle(header) if r.request_id.tx_hash == tx_hash]
        return [record_json(r) for r in records]

    def rpc_og_pipeStats(self, params):
        pool = self.node.pipeline.pool
        states: dict[str, int] = {}
        for entry in pool.entries():
            states[entry.state.value] = states.get(entry.state.value, 0) + 1
        return {"pool": states, "pooled": len(pool), "blocksBuilt": self.node.blocks_built,
                "inFlightRequests": len(self.node.pipeline._in_flight),
                "teeEnclave": {"address": data(self.node.identities[0].enclave), "simulated": True},
                "inferenceNodes": [{"node": data(i.node), "teeEnclave": data(i.enclave)} for i in self.node.identities]}

    # --- helpers ----------------------------------------------------------------------------------
    def _header(self, tag: Any) -> BlockHeaderAPI:
        head = self.chain.head
        if tag in ("latest", "pending", "safe", "finalized"):
            return head
        if tag == "earliest":
            return self.chain.chain.get_canonical_block_header_by_number(0)
        if isinstance(tag, dict) and "blockHash" in tag:
            try:
                return self.chain.chain.get_block_header_by_hash(parse_hash(tag["blockHash"], "blockHash"))
            except HeaderNotFound as exc:
                raise RpcError(INVALID_PARAMS, "unknown block") from exc
        number = parse_qty(tag, "block")
        if number > head.block_number:
            raise RpcError(INVALID_PARAMS, f"block {number} is beyond the head {head.block_number}")
        return self.chain.chain.get_canonical_block_header_by_number(number)

    def _state(self, tag: Any):
        return self.chain.chain.get_vm(self._header(tag)).state

    def _pending_nonce(self, address: bytes, nonce: int) -> int:
        queued = {e.nonce for e in self.node.pipeline.pool.entries() if e.sender == address}
        while nonce in queued:
            nonce += 1
        return nonce

    def _next_base_fee(self) -> int:
        return self.chain.base_vm_class.create_header_from_parent(self.chain.head).base_fee_per_gas

    def _execute(self, call: Any, tag: Any, gas: int | None = None):
        if not isinstance(call, dict):
            raise RpcError(INVALID_PARAMS, "transaction must be an object")
        sender = parse_address(call["from"], "from") if call.get("from") else self.chain.accounts[0].address
        to = parse_address(call["to"], "to") if call.get("to") else None
        payload = _payload(call)
        value = parse_qty(call.get("value", "0x0"), "value")
        if gas is None:
            gas = parse_qty(call["gas"], "gas") - _intrinsic_gas(call) if call.get("gas") else CALL_GAS
        header = self._header(tag)
        state = self.chain.chain.get_vm(self.chain.base_vm_class.create_header_from_parent(header)).state
        return execute_call(state, to, payload, sender, value, max(gas, 0))

    def _succeeds(self, call: dict, tag: Any, gas: int) -> bool:
        return not self._execute(call, tag, gas - _intrinsic_gas(call)).is_error

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

    def _logs(self, criteria: Any) -> list[dict]:
        if not isinstance(criteria, dict):
            raise RpcError(INVALID_PARAMS, "filter must be an object")
        if criteria.get("blockHash"):
            header = self._header({"blockHash": criteria["blockHash"]})
            numbers = range(header.block_number, header.block_number + 1)
        else:
            start = self._header(criteria.get("fromBlock", "latest")).block_number
            stop = self._header(criteria.get("toBlock", "latest")).block_number
            numbers = range(start, stop + 1)
        addresses = criteria.get("address")
        if isinstance(addresses, str):
            addresses = [addresses]
        if addresses is not None and not isinstance(addresses, list):
            raise RpcError(INVALID_PARAMS, "address must be an address or a list of addresses")
        wanted = {parse_address(a) for a in addresses} if addresses else None
        topics = criteria.get("topics") or []
        if not isinstance(topics, list):
            raise RpcError(INVALID_PARAMS, "topics must be a list")
        topics = [_topic_set(t) for t in topics]
        found = []
        for number in numbers:
            block = self.chain.chain.get_canonical_block_by_number(number)
            receipts = block.get_receipts(self.chain.chain.chaindb)
            log_index = 0
            for tx_index, receipt in enumerate(receipts):
                for log in receipt.logs:
                    if _matches(log, wanted, topics):
                        found.append(_log_json(log, block, tx_index, log_index))
                    log_index += 1
        return found


def _topic_set(entry: Any) -> set[int] | None:
    if entry is None:
        return None
    entries = entry if isinstance(entry, list) else [entry]
    return {int.from_bytes(parse_hash(t, "topic"), "big") for t in entries}


def _matches(log, wanted: set[bytes] | None, topics: list) -> bool:
    if wanted is not None and log.address not in wanted:
        return False
    if len(topics) > len(log.topics):
        return False
    return all(allowed is None or topic in allowed for allowed, topic in zip(topics, log.topics))


def _payload(call: dict) -> bytes:
    return parse_data(call.get("data") or call.get("input") or "0x", "data")


def _intrinsic_gas(call: dict) -> int:
    payload = _payload(call)
    zeros = payload.count(0)
    gas = 21_000 + 4 * zeros + 16 * (len(payload) - zeros)
    if not call.get("to"):
        gas += 32_000 + 2 * ((len(payload) + 31) // 32)
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
