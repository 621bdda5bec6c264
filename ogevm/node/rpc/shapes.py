"""The JSON shapes of the dev node's answers: blocks, transactions, receipts, logs (as geth and
anvil give them) and inference records; and the log matching rule of filters."""

from __future__ import annotations

import rlp
from eth._utils.address import generate_contract_address
from eth.abc import BlockAPI, ReceiptAPI, SignedTransactionAPI
from eth.constants import CREATE_CONTRACT_ADDRESS

from ogevm.node.impersonation import sender_of
from ogevm.node.params import LogFilter
from ogevm.node.rpc.base import data, qty
from ogevm.records import InferenceRecord


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


def log_matches(log, criteria: LogFilter) -> bool:
    """Whether ``log`` passes the address and topic rules of ``criteria`` (not its blocks)."""
    if criteria.addresses is not None and log.address not in criteria.addresses:
        return False
    if len(criteria.topics) > len(log.topics):
        return False
    return all(allowed is None or topic in allowed for allowed, topic in zip(criteria.topics, log.topics))


def log_json(log, block: BlockAPI, tx_index: int, log_index: int) -> dict:
    return {
        "address": data(log.address), "topics": [data(t.to_bytes(32, "big")) for t in log.topics],
        "data": data(log.data), "blockNumber": qty(block.number), "blockHash": data(block.hash),
        "transactionHash": data(block.transactions[tx_index].hash), "transactionIndex": qty(tx_index),
        "logIndex": qty(log_index), "removed": False,
    }


def receipt_json(block: BlockAPI, index: int, receipts: tuple[ReceiptAPI, ...], log_offset: int) -> dict:
    tx = block.transactions[index]
    receipt = receipts[index]
    previous = receipts[index - 1].gas_used if index else 0
    sender = sender_of(tx)
    contract = None
    if tx.to == CREATE_CONTRACT_ADDRESS and receipt.state_root == b"\x01":
        contract = data(generate_contract_address(sender, tx.nonce))
    base_fee = block.header.base_fee_per_gas
    return {
        "transactionHash": data(tx.hash), "transactionIndex": qty(index), "blockHash": data(block.hash),
        "blockNumber": qty(block.number), "from": data(sender),
        "to": None if tx.to == CREATE_CONTRACT_ADDRESS else data(tx.to),
        "cumulativeGasUsed": qty(receipt.gas_used), "gasUsed": qty(receipt.gas_used - previous),
        "effectiveGasPrice": qty(min(tx.max_fee_per_gas, base_fee + tx.max_priority_fee_per_gas)),
        "contractAddress": contract,
        "logs": [log_json(log, block, index, log_offset + i) for i, log in enumerate(receipt.logs)],
        "logsBloom": data(receipt.bloom.to_bytes(256, "big")),
        "status": qty(1 if receipt.state_root == b"\x01" else 0), "type": qty(getattr(tx, "type_id", 0) or 0),
    }


def tx_json(tx: SignedTransactionAPI, block: BlockAPI | None, index: int | None) -> dict:
    type_id = getattr(tx, "type_id", None) or 0
    result = {
        "hash": data(tx.hash), "nonce": qty(tx.nonce), "from": data(sender_of(tx)),
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


def block_json(block: BlockAPI, full: bool) -> dict:
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
        "transactions": [tx_json(tx, block, i) if full else data(tx.hash) for i, tx in enumerate(block.transactions)],
    }
    if hasattr(header, "requests_hash"):
        result["requestsHash"] = data(header.requests_hash)
    return result
