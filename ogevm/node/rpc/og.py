"""``og_*``: models (ONNX and language models), transaction status, inference records, PIPE and
block statistics, precompiles."""

from __future__ import annotations

from eth.exceptions import TransactionNotFound

from ogevm.constants import (
    ATTESTATION_PRECOMPILE_ADDRESS,
    INFERENCE_PRECOMPILE_ADDRESS,
    PREPROCESSING_PRECOMPILE_ADDRESS,
)
from ogevm.errors import ModelStoreError, OgevmError, ZkmlUnsupported
from ogevm.models.store import ModelStore
from ogevm.node import params
from ogevm.node.params import Param, takes
from ogevm.node.rpc.base import BLOCK, INVALID_PARAMS, TX_HASH, Namespace, RpcError, data, qty
from ogevm.node.rpc.shapes import record_json

#: Names of the precompiles, as EIP-7910 (``eth_config``) gives them, and ogevm's own.
PRECOMPILE_NAMES = {
    **{(i + 1).to_bytes(20, "big"): name for i, name in enumerate((
        "ECREC", "SHA256", "RIPEMD160", "ID", "MODEXP", "BN254_ADD", "BN254_MUL", "BN254_PAIRING", "BLAKE2F",
        "KZG_POINT_EVALUATION", "BLS12_G1ADD", "BLS12_G1MSM", "BLS12_G2ADD", "BLS12_G2MSM",
        "BLS12_PAIRING_CHECK", "BLS12_MAP_FP_TO_G1", "BLS12_MAP_FP2_TO_G2"))},
    INFERENCE_PRECOMPILE_ADDRESS: "OG_INFERENCE",
    ATTESTATION_PRECOMPILE_ADDRESS: "OG_ATTESTATION",
    PREPROCESSING_PRECOMPILE_ADDRESS: "OG_PREPROCESSING",
}


class OgMethods(Namespace):
    @takes(Param("model", params.data))
    def rpc_og_addModel(self, model):
        try:
            return self.chain.models.add(model).cid
        except ModelStoreError as exc:
            raise RpcError(INVALID_PARAMS, str(exc)) from exc

    @takes(Param("model", params.data))
    def rpc_og_addLanguageModel(self, model):
        """Register a language model file (``byte-window-v1`` ONNX) for LLM calls, by CID and name."""
        try:
            return language_model_json(self.chain.models.add_llm(model))
        except ModelStoreError as exc:
            raise RpcError(INVALID_PARAMS, str(exc)) from exc

    def rpc_og_listLanguageModels(self):
        return [language_model_json(model) for model in language_models(self.chain.models)]

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
        reason = self.node.storage.revert_reason(tx_hash)
        if reason is None and status["state"] == "included":
            with self.node.lock:  # a block being built settles its txs before keeping their reasons
                reason = self.node.storage.revert_reason(tx_hash)
        return {**status, "revertReason": reason}

    @takes(BLOCK)
    def rpc_og_getBlockStats(self, block):
        """What building the block took (:class:`~ogevm.node.node.BlockStats`); null for a
        block this node process did not build (the genesis, blocks before a restart)."""
        header = self._header(block)
        stats = next((s for s in reversed(self.node.block_log) if s.number == header.block_number), None)
        if stats is None:
            return None
        return {"number": qty(stats.number), "hash": data(header.hash), "transactions": stats.transactions,
                "records": stats.records, "buildSeconds": stats.build_seconds,
                "inferenceSecondsSaved": stats.inference_seconds_saved}

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

    def rpc_og_precompiles(self):
        """``{name: address}`` of the precompiles active at the head, like EIP-7910's
        ``precompiles``; an address without a known name is named by its hex."""
        active = self.chain.vm_class._state_class.computation_class.get_precompiles()
        return {PRECOMPILE_NAMES.get(address, data(address)): data(address) for address in sorted(active)}


def language_models(store: ModelStore) -> list:
    """The language models LLM calls may name on ``store``, each once: the fixture model, then
    the added ones in the order they were added (those of its directory first)."""
    return store.llms.models()


def language_model_json(model) -> dict:
    """A language model as ``og_listLanguageModels`` lists it."""
    return {"name": model.name, "cid": model.cid, "contextLength": model.context_length,
            "maxOutputTokens": model.max_output_tokens, "costPerToken": model.cost_per_token}
