"""``debug_traceTransaction`` and ``debug_traceCall`` with geth's struct logger (no ``tracer``)
and two tracers:

* ``callTracer``: the call tree in geth's shape (``onlyTopCall`` and ``withLog`` in
  ``tracerConfig``), precompile calls included as geth shows them;
* ``ogInferenceTracer``: each call of the inference (``0x…F4``) and preprocessing
  (``0x…F6``) precompiles in execution order, decoded, with the signing node of each
  mined result.

A mined transaction is re-executed on its parent state with the block's committed results
(REPLAY: no model runs again); a call runs as ``eth_call`` does (models INLINE). Neither
persists anything. The struct logger keeps at most ``MAX_STRUCT_LOGS`` steps.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from eth.exceptions import TransactionNotFound

from ogevm.abi.types import ModelInput, ModelOutput, Number
from ogevm.constants import INFERENCE_PRECOMPILE_ADDRESS
from ogevm.node import params
from ogevm.node.impersonation import decode_stored
from ogevm.node.params import ParamError, Param, takes
from ogevm.node.rpc.base import BLOCK, CALL, TX_HASH, data, qty
from ogevm.node.rpc.calls import CallMethods, _gas_used, _intrinsic_gas
from ogevm.tensors import number_to_decimal
from ogevm.vm.tracing import (
    MAX_STRUCT_LOGS,
    CallFrame,
    InferenceCall,
    StructLog,
    StructLogger,
    call_frame,
    inference_calls,
    replay_transaction,
    tracing_state,
)

CALL_TRACER, INFERENCE_TRACER = "callTracer", "ogInferenceTracer"
#: Each tracer and the keys its ``tracerConfig`` may hold.
TRACERS = {CALL_TRACER: {"onlyTopCall", "withLog"}, INFERENCE_TRACER: set()}
#: The struct logger's switches (geth's names), each a boolean.
LOGGER_SWITCHES = {"disableStack", "disableStorage", "enableMemory", "enableReturnData"}
#: Keys of geth's trace config accepted and ignored: a trace here is one re-execution, bounded
#: by the block's gas (``timeout``, ``reexec``); ``disableMemory`` and ``debug`` are legacy.
IGNORED_KEYS = {"timeout", "reexec", "disableMemory", "debug"}


@dataclass(frozen=True)
class TraceOptions:
    """A parsed trace config: the tracer's name (None: the struct logger), ``onlyTopCall``
    and ``withLog``, and the struct logger's switches and ``limit`` (0: ``MAX_STRUCT_LOGS``)."""

    tracer: str | None = None
    only_top_call: bool = False
    with_log: bool = False
    stack: bool = True
    storage: bool = True
    memory: bool = False
    limit: int = 0


def trace_options(value: Any, name: str) -> TraceOptions:
    """geth's trace config object. Keys geth knows but that change nothing here are ignored,
    unknown ones refused (a typo must not silently change the trace)."""
    if not isinstance(value, dict):
        raise ParamError(name, "must be an object")
    unknown = set(value) - {"tracer", "tracerConfig", "limit"} - LOGGER_SWITCHES - IGNORED_KEYS
    if unknown:
        raise ParamError(name, f"unknown key {sorted(unknown)[0][:40]!r}")
    switches = {key: params.boolean(value[key], f"{name}.{key}") for key in LOGGER_SWITCHES if key in value}
    if switches.get("enableReturnData"):
        raise ParamError(f"{name}.enableReturnData", "the struct logger does not record return data")
    limit = params.uint64(value["limit"], f"{name}.limit") if value.get("limit") is not None else 0
    logger = TraceOptions(stack=not switches.get("disableStack", False),
                          storage=not switches.get("disableStorage", False),
                          memory=switches.get("enableMemory", False), limit=limit)
    if value.get("tracer") in (None, ""):
        if value.get("tracerConfig") is not None:
            raise ParamError(f"{name}.tracerConfig", "the struct logger takes no tracerConfig")
        return logger
    tracer = params.string(value["tracer"], f"{name}.tracer")
    if tracer not in TRACERS:
        raise ParamError(f"{name}.tracer", f"unknown tracer {tracer[:40]!r}: supported are "
                                           f"{', '.join(TRACERS)} (or none: the struct logger)")
    config = value.get("tracerConfig")
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ParamError(f"{name}.tracerConfig", "must be an object")
    for key in config:
        if key not in TRACERS[tracer]:
            raise ParamError(f"{name}.tracerConfig", f"{tracer} has no option {key[:40]!r}")
    switches = {key: params.boolean(config[key], f"{name}.tracerConfig.{key}")
                for key in ("onlyTopCall", "withLog") if config.get(key) is not None}
    return TraceOptions(tracer, switches.get("onlyTopCall", False), switches.get("withLog", False))


OPTIONS = Param("options", trace_options, TraceOptions())


class DebugMethods(CallMethods):
    @takes(TX_HASH, OPTIONS)
    def rpc_debug_traceTransaction(self, tx_hash, options):
        try:
            number, index = self.chain.chain.get_canonical_transaction_index(tx_hash)
        except TransactionNotFound as exc:
            status = self.node.status(tx_hash)
            why = "unknown transaction" if status is None else f"not in a block (PIPE state: {status['state']})"
            raise ParamError("hash", why) from exc
        chain = self.chain.chain
        header = chain.get_canonical_block_header_by_number(number)
        block = chain.get_block_by_header(header)
        builder = self.chain.vm_class.get_transaction_builder()
        transactions = [decode_stored(builder, tx.encode()) for tx in block.transactions[:index + 1]]
        records = {record.request_id: record for record in self.node.storage.bundle(header)}
        logger = _logger(options)
        computation = replay_transaction(chain, self.chain.base_vm_class, header, transactions, self.chain.models,
                                         {rid: record.result for rid, record in records.items()}, logger)
        receipts = block.get_receipts(chain.chaindb)
        gas_used = receipts[index].gas_used - (receipts[index - 1].gas_used if index else 0)
        return _trace(options, computation, transactions[-1].gas, gas_used, records, logger)

    @takes(CALL, BLOCK, OPTIONS)
    def rpc_debug_traceCall(self, call, block, options):
        logger = _logger(options)
        state = self._call_state(block, lambda state_class: tracing_state(state_class, logger))
        gas = self._gas_cap(call)
        computation = self._run(state, call, gas - _intrinsic_gas(call))
        return _trace(options, computation, gas, _gas_used(call, computation), {}, logger)


def _logger(options: TraceOptions) -> StructLogger | None:
    if options.tracer is not None:
        return None
    return StructLogger(options.limit or MAX_STRUCT_LOGS, options.stack, options.memory, options.storage)


def _trace(options: TraceOptions, computation, gas: int, gas_used: int, records: dict,
           logger: StructLogger | None) -> dict:
    if logger is not None:
        return {"gas": gas_used, "failed": computation.is_error, "returnValue": data(computation.output),
                "structLogs": [_step_json(step) for step in logger.logs]}
    if options.tracer == CALL_TRACER:
        return _frame_json(call_frame(computation, gas, gas_used, depth=0 if options.only_top_call else None,
                                      logs=options.with_log))
    top = call_frame(computation, gas, gas_used, depth=0)
    return {"calls": [_inference_json(call, records) for call in inference_calls(computation)],
            "gasUsed": qty(gas_used), "error": top.error, "revertReason": top.revert_reason}


# --- shapes ---------------------------------------------------------------------------------------
def _step_json(step: StructLog) -> dict:
    """geth's struct log entry: stack items as quantities, memory as 32-byte words and
    storage as 32-byte keys and values, in hex without ``0x`` (as geth writes them)."""
    result = {"pc": step.pc, "op": step.op, "gas": step.gas, "gasCost": step.gas_cost, "depth": step.depth}
    if step.stack is not None:
        result["stack"] = [qty(value) for value in step.stack]
    if step.memory is not None:
        result["memory"] = [step.memory[i:i + 32].hex() for i in range(0, len(step.memory), 32)]
    if step.storage is not None:
        result["storage"] = {f"{slot:064x}": f"{value:064x}" for slot, value in step.storage.items()}
    if step.error is not None:
        result["error"] = step.error
    return result


def _frame_json(frame: CallFrame) -> dict:
    """geth's callTracer frame: empty fields left out as geth leaves them."""
    result = {"type": frame.type, "from": data(frame.sender)}
    if frame.to is not None:
        result["to"] = data(frame.to)
    if frame.value is not None:
        result["value"] = qty(frame.value)
    result.update({"gas": qty(frame.gas), "gasUsed": qty(frame.gas_used), "input": data(frame.input)})
    if frame.output:
        result["output"] = data(frame.output)
    if frame.error is not None:
        result["error"] = frame.error
    if frame.revert_reason is not None:
        result["revertReason"] = frame.revert_reason
    if frame.logs:
        result["logs"] = [{"address": data(log.address), "topics": [data(t.to_bytes(32, "big")) for t in log.topics],
                           "data": data(log.data), "position": qty(log.position)} for log in frame.logs]
    if frame.calls:
        result["calls"] = [_frame_json(call) for call in frame.calls]
    return result


def _inference_json(call: InferenceCall, records: dict) -> dict:
    entry = {"address": data(call.precompile), "depth": call.depth, "from": data(call.caller),
             "gasUsed": qty(call.gas_used), "error": call.error}
    if call.precompile == INFERENCE_PRECOMPILE_ADDRESS:
        record = records.get(call.request_id)
        request = call.request
        if call.function is not None:  # an LLM call
            entry.update({
                "precompile": "inference", "function": call.function,
                "requestId": None if call.request_id is None else str(call.request_id),
                "modelCid": request.model_cid, "mode": request.mode.name, "inputs": _llm_request_json(request),
                "outputs": None if call.output is None else _llm_reply_json(call.output),
                "node": None if record is None else data(record.node),
            })
            return entry
        entry.update({
            "precompile": "inference", "requestId": None if call.request_id is None else str(call.request_id),
            "modelCid": request and request.model_cid, "mode": request and request.mode.name,
            "inputs": request and _input_json(request.input),
            "outputs": None if call.output is None else _output_json(call.output),
            "node": None if record is None else data(record.node),
        })
        if request is None:
            entry["input"] = data(call.input)
        return entry
    entry.update({"precompile": "preprocessing", "function": call.function,
                  "inputs": None if call.arrays is None else [_decimals(array) for array in call.arrays],
                  "outputs": None if call.output is None else _decimals(call.output)})
    return entry


def _llm_request_json(request) -> dict:
    """An LLM request's fields by their ABI names (``mode`` and ``modelCID`` are shown apart)."""
    fields = {name: value for name, value in request._asdict().items() if name not in ("mode", "model_cid")}
    return json.loads(json.dumps(fields, default=dataclasses.asdict))


def _llm_reply_json(reply) -> dict:
    if isinstance(reply, str):
        return {"answer": reply}
    return {"finish_reason": reply.finish_reason, "message": dataclasses.asdict(reply.message)}


def _decimals(numbers: tuple[Number, ...]) -> list[str]:
    return [str(number_to_decimal(number)) for number in numbers]


def _input_json(model_input: ModelInput) -> dict:
    return {"numbers": [{"name": t.name, "shape": list(t.shape), "values": _decimals(t.values)}
                        for t in model_input.numbers],
            "strings": [{"name": t.name, "values": list(t.values)} for t in model_input.strings]}


def _output_json(output: ModelOutput) -> dict:
    return {**_input_json(ModelInput(output.numbers, output.strings)),
            "jsons": [{"name": j.name, "value": j.value} for j in output.jsons],
            "isSimulationResult": output.is_simulation_result}
