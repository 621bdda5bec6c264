"""The client: models on the node, the harness contract, and inference by transaction or
by ``eth_call``."""

from __future__ import annotations

import threading
from os import PathLike
from pathlib import Path
from typing import Any, Mapping

from ogevm.abi.codec import decode_output, encode_revert_reason, encode_run_model_inference
from ogevm.abi.contract import ContractInterface
from ogevm.abi.types import InferenceMode, ModelInferenceRequest, ModelInput
from ogevm.client.inputs import inference_mode, model_input
from ogevm.client.results import CallResult, call_result, tensors_from_output, tensors_from_record
from ogevm.client.rpc import EXECUTION_REVERTED, RpcCallError, revert_error
from ogevm.client.llm import LLMCalls
from ogevm.constants import INFERENCE_PRECOMPILE_ADDRESS
from ogevm.errors import OgevmError, TransactionFailed

PRECOMPILE = "0x" + bytes(INFERENCE_PRECOMPILE_ADDRESS).hex()


class Client(LLMCalls):
    """Inference against an ogevm node at ``rpc_url``, paid by ``private_key``; LLM calls
    with :meth:`complete` and :meth:`chat` (:class:`~ogevm.client.llm.LLMCalls`).

    ``timeout`` bounds the wait for a receipt (seconds); ``harness_address`` reuses an
    ``InferenceCaller`` already deployed instead of deploying one; ``harness_artifact``
    is the compiled artifact to deploy (default: ``fixtures/contracts/InferenceCaller.json``
    of this checkout).

    Safe to share between threads, but :meth:`infer` keeps one transaction in flight per
    client (send, then wait for its receipt): the node's pool can currently reject a
    sender's transaction that becomes ready before the previous one of the same sender.
    For parallel inference use one client (one key) per thread.
    """

    def __init__(self, rpc_url: str, private_key: str | bytes, *, timeout: float = 120.0,
                 poll_interval: float = 0.02, harness_address: str | None = None,
                 harness_artifact: str | PathLike | None = None) -> None:
        super().__init__(rpc_url, private_key, timeout=timeout, poll_interval=poll_interval)
        self._harness_address = harness_address
        self._harness_artifact = harness_artifact
        self._harness: ContractInterface | None = None
        self._tx_lock = threading.Lock()
        self._harness_lock = threading.Lock()
        self._output_types: dict[str, dict[str, str]] = {}

    # --- models and status --------------------------------------------------------------------
    def add_model(self, model: bytes | bytearray | memoryview | str | PathLike) -> str:
        """Upload an ONNX model (``og_addModel``); returns its CID (idempotent).

        Raises RpcCallError (code -32602 with the reason) when the node refuses the bytes.
        The node's request body limit (8 MiB of JSON) caps uploads at about 4 MiB of model;
        larger models go in with ``ogevm models add`` or ``ogevm node --models DIR``.
        """
        data = bytes(model) if isinstance(model, (bytes, bytearray, memoryview)) else Path(model).read_bytes()
        return self.rpc("og_addModel", "0x" + data.hex())

    def list_models(self) -> list[dict]:
        """``og_listModels``: the catalogue of the node."""
        return self.rpc("og_listModels")

    def status(self, tx_hash: str) -> dict:
        """``og_getTransactionStatus``: ``{state, reason, requests, block}``."""
        return self.rpc("og_getTransactionStatus", tx_hash)

    # --- the harness -------------------------------------------------------------------------
    def harness_address(self) -> str:
        """The ``InferenceCaller`` this client sends through (deployed on first use)."""
        with self._harness_lock:
            if self._harness_address is None:
                harness = self._harness_interface()
                tx_hash = self.send_transaction(None, harness.bytecode)
                receipt = self.wait_for_receipt(tx_hash)
                if int(receipt["status"], 16) != 1:
                    raise TransactionFailed("deploying the InferenceCaller harness failed", b"")
                self._harness_address = receipt["contractAddress"]
            return self._harness_address

    # --- inference ----------------------------------------------------------------------------
    def infer(self, model_cid: str, mode: InferenceMode | int | str, inputs: Mapping[str, Any] | ModelInput, *,
              gas: int | None = None, timeout: float | None = None) -> CallResult:
        """Run ``model_cid`` on ``inputs`` in a transaction and return its exact outputs.

        ``mode``: ``InferenceMode``, its value, or its name (``"VANILLA"``, ``"TEE"``, ...).
        Raises TransactionFailed with the revert reason (a failing request reverts at gas
        estimation, before anything is sent, unless ``gas`` is given; then the mined
        receipt has status 0 and the reason is read back), TransactionRejected,
        ReceiptTimeout or RpcCallError.
        """
        request = ModelInferenceRequest(inference_mode(mode), model_cid, model_input(inputs))
        calldata = self._harness_interface().function("infer").encode(request)
        to = self.harness_address()
        with self._tx_lock:  # one transaction in flight per client: see the class docstring
            tx_hash = self.send_transaction(to, calldata, gas=gas)
            receipt = self.wait_for_receipt(tx_hash, timeout)
        records = self.rpc("og_getInferenceRecords", tx_hash)
        if int(receipt["status"], 16) != 1:
            reason, revert_data = self._revert_of(receipt, records, to, calldata)
            error = TransactionFailed(reason, revert_data)
            error.tx_hash, error.receipt = tx_hash, receipt
            raise error
        record = next((r for r in records if r.get("output") is not None), None)
        if record is None:
            raise OgevmError(f"transaction {tx_hash} succeeded but the node has no inference output for it")
        numbers, strings, jsons = tensors_from_record(record["output"])
        return self._result(model_cid, tx_hash, numbers, strings, jsons, records, receipt)

    def call_infer(self, model_cid: str, mode: InferenceMode | int | str, inputs: Mapping[str, Any] | ModelInput,
                   *, block: str = "latest") -> CallResult:
        """Run the inference with ``eth_call`` on the precompile (INLINE): no transaction,
        no gas paid, nothing recorded. ``tx_hash`` is None and ``records`` is empty.
        Raises TransactionFailed with the revert reason."""
        request = ModelInferenceRequest(inference_mode(mode), model_cid, model_input(inputs))
        call = {"from": self.address, "to": PRECOMPILE, "data": "0x" + encode_run_model_inference(request).hex()}
        try:
            returned = self.rpc("eth_call", call, block)
        except RpcCallError as exc:
            if exc.code != EXECUTION_REVERTED:
                raise
            raise revert_error(exc) from exc
        numbers, strings, jsons = tensors_from_output(decode_output(bytes.fromhex(returned[2:])))
        return self._result(model_cid, None, numbers, strings, jsons, [], None)

    # --- helpers ---------------------------------------------------------------------------------
    def _harness_interface(self) -> ContractInterface:
        if self._harness is None:
            if self._harness_artifact is not None:
                self._harness = ContractInterface.from_artifact(self._harness_artifact)
            else:
                from ogevm.fixtures import fixture_contract

                self._harness = fixture_contract("InferenceCaller")
        return self._harness

    def _types(self, model_cid: str) -> dict[str, str]:
        if model_cid not in self._output_types:
            for model in self.list_models():
                self._output_types[model["cid"]] = {o["name"]: o["type"] for o in model["outputs"]}
        return self._output_types.get(model_cid, {})

    def _result(self, model_cid: str, tx_hash: str | None, numbers: list, strings: list, jsons: list,
                records: list, receipt: dict | None) -> CallResult:
        types = self._types(model_cid) if numbers else {}
        return call_result(types, tx_hash, numbers, strings, jsons, records, receipt)

    def _revert_of(self, receipt: dict, records: list, to: str, calldata: bytes) -> tuple[str | None, bytes]:
        """Why a mined transaction reverted: the failed inference record's reason, else an
        ``eth_call`` replay on the parent block's state, else og_getTransactionStatus."""
        for record in records:
            if record.get("error"):
                return record["error"], encode_revert_reason(record["error"])
        block = int(receipt["blockNumber"], 16)
        call = {"from": self.address, "to": to, "data": "0x" + calldata.hex()}
        try:
            self.rpc("eth_call", call, hex(max(block - 1, 0)))
        except RpcCallError as exc:
            if exc.code == EXECUTION_REVERTED:
                failure = revert_error(exc)
                return failure.reason, failure.data
        status = self.rpc("og_getTransactionStatus", receipt["transactionHash"])
        return status.get("reason"), b""
