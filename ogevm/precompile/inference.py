"""The inference precompile at ``0x…F4``.

A ``runModelInference`` call: charge the base gas, decode, look the model up, bind the
inputs, charge the model gas (from the bound input shapes, before the model runs) and the
mode gas, ask the results provider, then encode the output, charge and emit
``ModelInferenceEvent``. The LLM functions (:mod:`ogevm.precompile.llm`) share the base gas,
the provider and the reverts; they are priced from their prompt and ``max_tokens``.
Every failure is a revert whose data is ``Error(string)`` with a readable reason and
whose gas stays charged; only py-evm's VM errors ever leave this function.
"""

from __future__ import annotations

from eth.abc import ComputationAPI
from eth.exceptions import VMError
from eth_hash.auto import keccak

from ogevm.abi.layout import encode_output_and_event
from ogevm.abi.codec import (
    MODEL_INFERENCE_EVENT_TOPIC,
    decode_run_model_inference,
    encode_revert_reason,
)
from ogevm.constants import (
    GAS_EVENT,
    GAS_EVENT_PER_BYTE,
    GAS_INFERENCE_BASE,
    GAS_INFERENCE_PER_WORD,
    GAS_MODE_SURCHARGE,
    INFERENCE_PRECOMPILE_ADDRESS,
    INFERENCE_REGISTRY_ADDRESS,
    MAX_REASON_CHARS,
    REGISTRY_CIRCUIT_SLOT,
)
from ogevm.abi.types import InferenceMode
from ogevm.errors import InferenceError
from ogevm.llm.constants import GAS_LLM_PER_WORD
from ogevm.models.binding import bind_inputs, model_gas, samples
from ogevm.precompile.llm import LLM_DECODERS, default_llms, prepare, response_data
from ogevm.records import InferenceRequest
from ogevm.tensors import check_structure


_EVENT_TOPIC = int.from_bytes(MODEL_INFERENCE_EVENT_TOPIC, "big")


class InferenceReverted(VMError):
    """The precompile reverted: gas used so far stays charged, the reason is returned."""

    burns_gas = False
    erases_return_data = False


def inference_precompile(computation: ComputationAPI) -> ComputationAPI:
    """Serve one call of the precompile (see the module docstring)."""
    data = computation.msg.data_as_bytes
    computation.consume_gas(
        GAS_INFERENCE_BASE + GAS_INFERENCE_PER_WORD * ((len(data) + 31) // 32),
        reason="inference: base",
    )
    request_id = computation.transaction_context.next_inference_id()
    provider = computation.state.inference_provider
    try:
        decode_llm_call = LLM_DECODERS.get(bytes(data[:4]))
        if decode_llm_call is None:
            output, event = _model_inference(computation, provider, request_id, data)
        else:
            computation.consume_gas(GAS_LLM_PER_WORD * ((len(data) + 31) // 32), reason="inference: LLM calldata")
            output, event = _llm_call(computation, provider, request_id, data, decode_llm_call(data)), None
    except InferenceError as exc:
        _revert(computation, exc.reason)
    except VMError:
        raise
    except Exception as exc:  # a bug must not crash block building or import
        _revert(computation, f"internal error: {type(exc).__name__}")
    computation.output = output
    if event is not None:
        computation.add_log_entry(INFERENCE_PRECOMPILE_ADDRESS, (_EVENT_TOPIC,), event)
    return computation


def _model_inference(computation: ComputationAPI, provider, request_id, data: bytes) -> tuple[bytes, bytes]:
    """``runModelInference``: its return data and the data of its ``ModelInferenceEvent``."""
    call = decode_run_model_inference(data)
    check_structure(call.input)
    info = provider.model(call.model_cid)
    if call.mode is InferenceMode.ZKML and not zkml_enabled(computation.state, call.model_cid):
        raise InferenceError(f"model {call.model_cid!r} is not enabled for ZKML (no circuit registered)")
    feeds = bind_inputs(info, call.input)
    computation.consume_gas(
        model_gas(info, feeds) + GAS_MODE_SURCHARGE[call.mode], reason="inference: model"
    )
    request = InferenceRequest(request_id, keccak(data), call, samples(info, call.input), feeds)
    result = provider.resolve(request)
    if result.error is not None:
        raise InferenceError(result.error)
    # the calldata after the selector is abi.encode(request): only the canonical layout decodes
    output, event = encode_output_and_event(str(request_id), data[4:], result.output)
    computation.consume_gas(GAS_EVENT + GAS_EVENT_PER_BYTE * len(event), reason="inference: event")
    return output, event


def _llm_call(computation: ComputationAPI, provider, request_id, data: bytes, call) -> bytes:
    """``runLLMCompletion`` / ``runLLMChat``: priced from the prepared request (prompt tokens and
    ``max_tokens``) before any model runs; no event."""
    request = InferenceRequest(request_id, keccak(data), call, 1, {})
    llms = getattr(provider, "llms", None) or default_llms()
    prepared = prepare(llms, call, request_id)
    computation.consume_gas(prepared.gas + GAS_MODE_SURCHARGE[request.mode], reason="inference: language model")
    result = provider.resolve(request)
    if result.error is not None:
        raise InferenceError(result.error)
    return response_data(call, result.output)


def zkml_enabled(state, model_cid: str) -> bool:
    """Whether the registry binds a verifying key to ``model_cid`` (``circuitVkHash[cid]``)."""
    slot = keccak(model_cid.encode() + REGISTRY_CIRCUIT_SLOT.to_bytes(32, "big"))
    return state.get_storage(INFERENCE_REGISTRY_ADDRESS, int.from_bytes(slot, "big")) != 0


def _revert(computation: ComputationAPI, reason: str) -> None:
    reason = reason[:MAX_REASON_CHARS]
    computation.output = encode_revert_reason(reason)
    raise InferenceReverted(reason)
