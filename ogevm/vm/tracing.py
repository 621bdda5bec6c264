"""Traces of executed messages: the call tree (what geth's ``callTracer`` shows) and each call
of the inference (``0x…F4``) and preprocessing (``0x…F6``) precompiles.

py-evm has no tracer hooks, and a call tree needs few: every computation keeps its child
computations in execution order, precompile calls included. Two facts are lost on the way:
which opcode made a child (CALL, STATICCALL, DELEGATECALL...) and which request id an
inference call was given. :func:`tracing_state` derives a state class whose computation and
transaction context note both; only traces use it, so the chain's own VM is untouched. The
trace is read from the finished computation (:func:`call_frame`, :func:`inference_calls`).

:func:`replay_transaction` re-executes a mined transaction on its parent's state, after the
block's pre-processing and the transactions before it, with the block's committed inference
results (REPLAY): no model runs, and nothing is persisted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Sequence, Type

from eth import exceptions as evm
from eth.abc import BlockHeaderAPI, ChainAPI, ComputationAPI, SignedTransactionAPI
from eth.vm.base import VM
from eth.vm.chain_context import ChainContext

from ogevm.abi.codec import decode_output, decode_revert_reason, decode_run_model_inference
from ogevm.abi.llm import (
    RUN_LLM_CHAT_SELECTOR,
    RUN_LLM_COMPLETION_SELECTOR,
    LLMChatRequest,
    LLMChatResponse,
    LLMCompletionRequest,
    decode_chat_response,
    decode_completion_response,
)
from ogevm.abi.types import ModelInferenceRequest, ModelOutput, Number
from ogevm.constants import INFERENCE_PRECOMPILE_ADDRESS, PREPROCESSING_PRECOMPILE_ADDRESS
from ogevm.errors import InferenceError
from ogevm.precompile.inference import InferenceReverted
from ogevm.precompile.llm import LLM_DECODERS
from ogevm.precompile.modes import Catalogue, ReplayProvider
from ogevm.precompile.preprocessing import FUNCTIONS_BY_SELECTOR, decode_arrays
from ogevm.records import InferenceResult, RequestId

#: The call opcodes, by byte, as geth names the frames they open.
CALL_OPCODES = {0xF0: "CREATE", 0xF1: "CALL", 0xF2: "CALLCODE", 0xF4: "DELEGATECALL", 0xF5: "CREATE2",
                0xFA: "STATICCALL"}
#: geth's error strings for py-evm's errors (``core/vm/errors.go``); others show their own text.
ERROR_TEXT = {
    evm.Revert: "execution reverted", InferenceReverted: "execution reverted", evm.OutOfGas: "out of gas",
    evm.InsufficientStack: "stack underflow", evm.FullStack: "stack limit reached 1024",
    evm.InvalidJumpDestination: "invalid jump destination", evm.WriteProtection: "write protection",
    evm.StackDepthLimit: "max call depth exceeded", evm.OutOfBoundsRead: "return data out of bounds",
    evm.ContractCreationCollision: "contract address collision",
    evm.InsufficientFunds: "insufficient balance for transfer",
    evm.ReservedBytesInCode: "invalid code: must not begin with 0xef",
}


def tracing_state(state_class, logger: StructLogger | None = None):
    """A subclass of ``state_class`` (an inference fork's state) whose computations note, on
    each child, the opcode that made it (``trace_opcode``) and, on each inference call, the
    request id it was given (``trace_request_id``) and, on each child, how many logs its
    caller had emitted before it (``trace_logs_before``); with ``logger``, every opcode step
    goes to it as well."""
    base_computation = state_class.computation_class
    base_context = state_class.transaction_context_class

    class TracingContext(base_context):
        last_inference_id: RequestId | None = None

        def next_inference_id(self) -> RequestId:
            self.last_inference_id = super().next_inference_id()
            return self.last_inference_id

    def noting_request_id(precompile):
        def run(computation: ComputationAPI) -> ComputationAPI:
            context = computation.transaction_context
            context.last_inference_id = None
            try:
                return precompile(computation)
            finally:
                computation.trace_request_id = context.last_inference_id

        return run

    precompiles = base_computation.get_precompiles()

    class TracingComputation(base_computation):
        _precompiles = {**precompiles,
                        INFERENCE_PRECOMPILE_ADDRESS: noting_request_id(precompiles[INFERENCE_PRECOMPILE_ADDRESS])}
        if logger is not None:
            opcodes = {byte: logger.wrap(function) for byte, function in base_computation.opcodes.items()}

        def apply_child_computation(self, child_msg):
            opcode = self.code._raw_code_bytes[self.code.program_counter - 1]
            logs_before = len(self._log_entries)
            child = super().apply_child_computation(child_msg)
            child.trace_opcode, child.trace_logs_before = opcode, logs_before
            return child

    return state_class.configure(computation_class=TracingComputation, transaction_context_class=TracingContext)


def tracing_vm(vm_class: Type[VM], logger: StructLogger | None = None) -> Type[VM]:
    """``vm_class`` with the state of :func:`tracing_state`."""
    return vm_class.configure(_state_class=tracing_state(vm_class._state_class, logger))


def replay_transaction(chain: ChainAPI, vm_class: Type[VM], header: BlockHeaderAPI,
                       transactions: Sequence[SignedTransactionAPI], catalogue: Catalogue,
                       results: Mapping[RequestId, InferenceResult],
                       logger: StructLogger | None = None) -> ComputationAPI:
    """The computation of the last of ``transactions``, re-executed in the block of ``header``
    (a block of ``chain``) on its parent's state after the block's pre-processing and the
    transactions before it, with :func:`tracing_vm` of ``vm_class`` (an inference fork)
    answering inference from ``results`` (the block's bundle) for the models of
    ``catalogue``; ``logger`` logs the last transaction's steps. The state is thrown away
    after; py-evm's errors propagate."""
    parent = chain.get_block_header_by_hash(header.parent_hash)
    traced = tracing_vm(vm_class.with_provider(ReplayProvider(catalogue, results)), logger)
    vm = traced(header=header.copy(state_root=parent.state_root, gas_used=0), chaindb=chain.chaindb,
                chain_context=ChainContext(chain.chain_id), consensus_context=chain.consensus_context)
    *before, last = transactions
    if logger is not None:
        logger.active = False
    vm.block_preprocessing(vm.get_block())
    for tx in before:
        vm.state.apply_transaction(tx)
        vm.state.lock_changes()
    if logger is not None:
        logger.active = True
    return vm.state.apply_transaction(last)


# --- the call tree -------------------------------------------------------------------------------
@dataclass(frozen=True)
class FrameLog:
    """A log a frame emitted itself; ``position`` counts the frame's calls made before it."""

    address: bytes
    topics: tuple[int, ...]
    data: bytes
    position: int


@dataclass(frozen=True)
class CallFrame:
    """One message, as geth's ``callTracer`` shows it. ``value`` is None for STATICCALL;
    ``to`` is None for a creation that failed; ``output`` is empty after an error other
    than a revert."""

    type: str
    sender: bytes
    to: bytes | None
    value: int | None
    gas: int
    gas_used: int
    input: bytes
    output: bytes
    error: str | None
    revert_reason: str | None
    calls: tuple["CallFrame", ...] = ()
    logs: tuple[FrameLog, ...] = ()


def call_frame(computation: ComputationAPI, gas: int | None = None, gas_used: int | None = None,
               depth: int | None = None, caller: bytes | None = None, logs: bool = False,
               undone: bool = False) -> CallFrame:
    """The frame of ``computation`` and of its children down to ``depth`` levels (None: all).
    ``gas`` and ``gas_used`` replace the message's own (a transaction's top frame shows its
    gas limit and the gas its receipt charges). ``caller`` is the account whose code made the
    call (for a DELEGATECALL, not the sender it passes on); the message's sender by default.
    ``logs``: keep each frame's own logs (geth's ``withLog``), except in a frame that failed or
    whose caller's effects were ``undone`` (their logs never happened)."""
    msg = computation.msg
    kind = CALL_OPCODES.get(getattr(computation, "trace_opcode", None), "CREATE" if msg.is_create else "CALL")
    error = error_text(computation)
    reverted = error == ERROR_TEXT[evm.Revert]
    output = bytes(computation.output) if error is None or reverted else b""
    children = computation.children if depth is None or depth > 0 else ()
    undone = undone or error is not None
    return CallFrame(
        type=kind, sender=msg.sender if caller is None else caller,
        to=_callee(msg, error),
        value=None if kind == "STATICCALL" else msg.value,
        gas=msg.gas if gas is None else gas,
        gas_used=computation.get_gas_used() if gas_used is None else gas_used,
        input=bytes(msg.code if msg.is_create else msg.data), output=output, error=error,
        revert_reason=decode_revert_reason(output) if reverted else None,
        calls=tuple(call_frame(child, depth=None if depth is None else depth - 1, caller=msg.storage_address,
                               logs=logs, undone=undone) for child in children),
        logs=_frame_logs(computation) if logs and not undone else (),
    )


def _frame_logs(computation: ComputationAPI) -> tuple[FrameLog, ...]:
    marks = [getattr(child, "trace_logs_before", 0) for child in computation.children]
    return tuple(FrameLog(address, tuple(topics), bytes(data), sum(1 for mark in marks if mark <= index))
                 for index, (_, address, topics, data) in enumerate(computation._log_entries))


def _callee(msg, error: str | None) -> bytes | None:
    """geth's ``to``: the code called (not the storage it runs on, for DELEGATECALL and
    CALLCODE), the address created, or None for a creation that failed."""
    if msg.is_create:
        return None if error is not None else msg.storage_address
    return msg.code_address


def error_text(computation: ComputationAPI) -> str | None:
    """geth's text for the error ``computation`` ended with, or None if it succeeded."""
    return _error_text(computation.error) if computation.is_error else None


def _error_text(error: Exception) -> str:
    for kind in type(error).__mro__:
        if kind in ERROR_TEXT:
            return ERROR_TEXT[kind]
    if isinstance(error, evm.InvalidInstruction):
        return f"invalid opcode: {error}"
    return str(error) or type(error).__name__


def revert_reason(computation: ComputationAPI) -> str:
    """Why a failed ``computation`` failed: its ``Error(string)`` or ``Panic`` reason, else
    geth's error text (``execution reverted`` for a revert without a reason)."""
    return decode_revert_reason(computation.output) or error_text(computation)


# --- inference calls -------------------------------------------------------------------------------
LLM_FUNCTIONS = {RUN_LLM_COMPLETION_SELECTOR: "runLLMCompletion", RUN_LLM_CHAT_SELECTOR: "runLLMChat"}

@dataclass(frozen=True)
class InferenceCall:
    """One call of the inference or preprocessing precompile.

    For ``0x…F4``: ``request_id`` (None if the call failed before it got one), ``request``
    (None if its calldata decodes as none of the functions) and ``output`` (a
    ``ModelOutput``); an LLM call also has ``function`` (``runLLMCompletion`` or ``runLLMChat``)
    and its reply as ``output`` (the answer, or the ``LLMChatResponse``). For ``0x…F6``: ``function`` (its name), ``arrays`` (its ``Number[]``
    arguments) and ``output`` (a tuple of Numbers). ``error`` is the revert reason or
    geth's error text; ``gas_used`` the gas the call charged.
    """

    precompile: bytes
    depth: int
    caller: bytes
    gas_used: int
    error: str | None
    input: bytes
    output: ModelOutput | tuple[Number, ...] | str | LLMChatResponse | None = None
    request_id: RequestId | None = None
    request: ModelInferenceRequest | LLMCompletionRequest | LLMChatRequest | None = None
    function: str | None = None
    arrays: tuple[tuple[Number, ...], ...] | None = None


def inference_calls(computation: ComputationAPI) -> list[InferenceCall]:
    """Every call of ``0x…F4`` and ``0x…F6`` under ``computation``, in execution order."""
    return [_inference_call(c, caller) for c, caller in _preorder(computation, computation.msg.sender)
            if c.msg.code_address in (INFERENCE_PRECOMPILE_ADDRESS, PREPROCESSING_PRECOMPILE_ADDRESS)]


def _preorder(computation: ComputationAPI, caller: bytes) -> Iterator[tuple[ComputationAPI, bytes]]:
    """Each computation with the account whose code called it, in the order they started."""
    yield computation, caller
    for child in computation.children:
        yield from _preorder(child, computation.msg.storage_address)


def _inference_call(computation: ComputationAPI, caller: bytes) -> InferenceCall:
    msg = computation.msg
    data, output = bytes(msg.data), bytes(computation.output)
    error = revert_reason(computation) if computation.is_error else None
    common = dict(precompile=msg.code_address, depth=msg.depth, caller=caller,
                  gas_used=computation.get_gas_used(), error=error, input=data)
    if msg.code_address == INFERENCE_PRECOMPILE_ADDRESS:
        request_id = getattr(computation, "trace_request_id", None)
        decode_llm_call = LLM_DECODERS.get(data[:4])
        if decode_llm_call is not None:
            return _llm_call(common, request_id, decode_llm_call, data, output, error)
        try:
            request = decode_run_model_inference(data)
        except InferenceError:  # another function or bad calldata: shown raw
            return InferenceCall(**common, request_id=getattr(computation, "trace_request_id", None))
        return InferenceCall(**common, output=None if error else decode_output(output),
                             request_id=getattr(computation, "trace_request_id", None), request=request)
    function = FUNCTIONS_BY_SELECTOR.get(data[:4])
    arrays = None
    if function is not None:
        try:
            arrays = tuple(tuple(Number(v, d) for v, d in array) for array in decode_arrays(data[4:], function.arrays))
        except ValueError:
            pass
    return InferenceCall(**common, function=function.name if function else None, arrays=arrays,
                         output=_preprocessing_output(output, function.returns_array) if error is None else None)


def _llm_call(common: dict, request_id, decode_llm_call, data: bytes, output: bytes, error) -> InferenceCall:
    """An LLM call: its request, and its reply (the answer, or the chat response) if it succeeded."""
    try:
        request = decode_llm_call(data)
    except InferenceError:
        return InferenceCall(**common, request_id=request_id)
    function = LLM_FUNCTIONS[data[:4]]
    reply = None
    if error is None:
        reply = decode_completion_response(output) if function == "runLLMCompletion" else decode_chat_response(output)
    return InferenceCall(**common, request_id=request_id, request=request, function=function, output=reply)


def _preprocessing_output(output: bytes, array: bool) -> tuple[Number, ...]:
    """The Numbers of ``abi.encode(Number)`` or, if ``array``, ``abi.encode(Number[])``
    (an offset and a length, then the Numbers' words)."""
    words = [int.from_bytes(output[i:i + 32], "big", signed=True) for i in range(0, len(output), 32)]
    pairs = words[2:] if array else words
    return tuple(Number(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2))


# --- opcode steps -----------------------------------------------------------------------------------
#: The most steps a struct log keeps (a smaller ``limit`` wins): a step with its stack is
#: about 1 kB of JSON, so an answer stays near 20 MB at most.
MAX_STRUCT_LOGS = 20_000
_CALLS_FORWARDING_GAS = {0xF1, 0xF2, 0xF4, 0xFA}


@dataclass
class StructLog:
    """One opcode step as geth's struct logger shows it: ``gas`` before the step, ``depth``
    from 1, ``stack`` bottom first, ``storage`` (on SLOAD and SSTORE steps) the slots of the
    running contract seen so far, ``error`` if the step failed (not for REVERT). ``gas_cost``
    is set once the step has run."""

    pc: int
    op: str
    gas: int
    depth: int
    stack: tuple[int, ...] | None
    memory: bytes | None
    storage: dict[int, int] | None
    gas_cost: int = 0
    error: str | None = None


class StructLogger:
    """Keeps a :class:`StructLog` of each opcode run while ``active``, at most ``limit``
    (then it stops, as geth's ``limit`` does). ``stack``, ``memory`` and ``storage`` say what
    each step keeps (geth's ``disableStack``, ``enableMemory``, ``disableStorage``).

    ``gas_cost`` is geth's: for CALL, CALLCODE, DELEGATECALL and STATICCALL it includes the
    gas handed to the callee; for CREATE and CREATE2 it does not."""

    def __init__(self, limit: int = MAX_STRUCT_LOGS, stack: bool = True, memory: bool = False,
                 storage: bool = True) -> None:
        self.limit = min(limit, MAX_STRUCT_LOGS)
        self.stack, self.memory, self.storage = stack, memory, storage
        self.active = True
        self.logs: list[StructLog] = []
        self._seen: dict[bytes, dict[int, int]] = {}

    def wrap(self, opcode: Callable) -> Callable:
        """``opcode`` (a py-evm opcode function) logging each run."""
        name = getattr(opcode, "mnemonic", None) or opcode.__wrapped__.mnemonic

        def run(computation: ComputationAPI):
            if not self.active or len(self.logs) >= self.limit:
                return opcode(computation=computation)
            step = self._step(computation, name)
            self.logs.append(step)
            children = len(computation.children)
            try:
                return opcode(computation=computation)
            except evm.VMError as exc:
                if not isinstance(exc, (evm.Revert, InferenceReverted)):
                    step.error = _error_text(exc)
                raise
            finally:
                step.gas_cost = step.gas - computation.get_gas_remaining()
                if len(computation.children) > children:  # its callee's unused gas came back
                    child = computation.children[-1]
                    step.gas_cost += child.get_gas_remaining()
                    if computation.code._raw_code_bytes[step.pc] not in _CALLS_FORWARDING_GAS:
                        step.gas_cost -= child.msg.gas

        return run

    def _step(self, computation: ComputationAPI, name: str) -> StructLog:
        values = [v if isinstance(v, int) else int.from_bytes(v, "big") for v in computation._stack.values]
        storage = None
        if self.storage and (name == "SLOAD" and values or name == "SSTORE" and len(values) >= 2):
            address = computation.msg.storage_address
            slot = values[-1]
            value = computation.state.get_storage(address, slot) if name == "SLOAD" else values[-2]
            seen = self._seen.setdefault(address, {})
            seen[slot] = value
            storage = dict(seen)
        return StructLog(pc=computation.code.program_counter - 1, op=name, gas=computation.get_gas_remaining(),
                         depth=computation.msg.depth + 1, stack=tuple(values) if self.stack else None,
                         memory=bytes(computation._memory._bytes) if self.memory else None, storage=storage)
