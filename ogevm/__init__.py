"""ogevm: py-evm with native ONNX inference and PIPE, parallelized inference pre-execution.

The public API is exactly the names in ``__all__``, importable from ``ogevm`` itself; every
other module, class and function may change between releases. ``docs/EMBEDDING.md`` shows
them at work. Each name is imported on first use, so ``import ogevm`` loads neither numpy,
onnxruntime nor py-evm.

* Forks: :func:`with_inference` (any py-evm VM plus ogevm's precompiles: inference at
  ``0x…F4``, attestation at ``0x…F5``, preprocessing at ``0x…F6``), :data:`InferenceCancunVM`,
  :data:`InferencePragueVM`; the VMs' ``with_provider(provider)`` sets who answers the
  inference precompile. :func:`chain_class` wraps
  one in a py-evm chain class; :class:`RegistryConfig` is the node registry's genesis account.
* The precompiles, as py-evm precompile functions: :func:`inference_precompile`,
  :func:`attestation_precompile`, :func:`preprocessing_precompile` (``0x…F6``); the addresses
  ``INFERENCE_PRECOMPILE_ADDRESS``, ``ATTESTATION_PRECOMPILE_ADDRESS``,
  ``PREPROCESSING_PRECOMPILE_ADDRESS`` and ``INFERENCE_REGISTRY_ADDRESS``.
* Results providers: the interface :class:`ResultsProvider` and the stock providers of the
  three execution modes, :class:`InlineProvider`, :class:`CaptureProvider`,
  :class:`ReplayProvider` (and their base :class:`CatalogueProvider`).
* Models: :class:`ModelStore` (content-addressed, its catalogue of :class:`ModelInfo`),
  :class:`TensorSpec`, :class:`ModelRuntime`, :func:`compute_cid`.
* Records and their checks: :class:`RequestId`, :class:`InferenceRequest`,
  :class:`InferenceResult` (what a provider returns), :class:`InferenceRecord` (what a block
  commits to), :func:`verify_record`, :class:`InvalidRecord`, :class:`RegistryView`,
  :class:`ProofChecker` (the interface of a ZKML proof check);
  the bundle: :func:`bundle_root`, :func:`encode_bundle`, :func:`decode_bundle`,
  ``EMPTY_BUNDLE_ROOT``; ZKML: :class:`CircuitStore`, :class:`CircuitProofChecker`.
* PIPE's stages: :class:`TxPool` (with :class:`AdmissionRules`, :class:`PoolLimits`, its
  entries :class:`PoolEntry` and their :class:`TxState`), :class:`RunSimulation` (the
  interface :class:`Simulator`), :class:`InferenceExecutor` (:func:`local_executor`,
  :class:`ThreadPoolBackend`, the interface :class:`ExecutorBackend`), :class:`BlockBuilder`
  (its :class:`BuiltBlock`), :class:`BlockValidator`, and all of them wired on a
  :class:`DevChain` by :class:`Pipeline` (:class:`PipeConfig`).
* Calldata and outputs: :func:`encode_run_model_inference`, :func:`decode_output`,
  :func:`decode_revert_reason`, and the ABI types :class:`InferenceMode`, :class:`Number`,
  :class:`NumberTensor`, :class:`StringTensor`, :class:`ModelInput`,
  :class:`ModelInferenceRequest`, :class:`ModelOutput`.
* Errors: :class:`OgevmError` and the stage bases :class:`InferenceError` (a provider's
  :class:`UnknownModel` among them), :class:`ModelStoreError`, :class:`InvalidTransaction`, :class:`TransactionRejected`,
  :class:`InvalidBlock`, :class:`ExecutorUnavailable`.
* LLM calls at ``0x…F4``: :class:`LLMInferenceMode`, :class:`LLMCompletionRequest`,
  :class:`LLMChatRequest` (of :class:`ChatMessage`, :class:`ToolDefinition`; replies may hold
  :class:`ToolCall`), :class:`LLMChatResponse`, their codecs :func:`encode_llm_completion`,
  :func:`encode_llm_chat`, :func:`decode_completion_response`, :func:`decode_chat_response`;
  the runtime :class:`LLMRuntime` of :class:`LanguageModel` backends (:class:`WindowModel`).
* The JSON-RPC client: :class:`Client`, whose calls return a :class:`CallResult` (an
  :class:`LLMReply` for its ``complete`` and ``chat``).
"""

import os
from importlib import import_module
from importlib.util import find_spec

__version__ = "0.1.0"

# eth-hash chooses its keccak backend at the first hash: prefer pysha3 when it is installed
# (a dependency; about 3x faster than pycryptodome on the short inputs tries and
# transactions hash), unless the user chose one
if find_spec("sha3") is not None:
    os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")

#: Public name -> the module that defines it.
_EXPORTS = {
    "ogevm.vm.forks": ("with_inference", "InferenceCancunVM", "InferencePragueVM"),
    "ogevm.vm.chain": ("DevChain", "chain_class"),
    "ogevm.vm.genesis": ("RegistryConfig",),
    "ogevm.verify.registry": ("RegistryView",),
    "ogevm.constants": ("INFERENCE_PRECOMPILE_ADDRESS", "ATTESTATION_PRECOMPILE_ADDRESS",
                        "PREPROCESSING_PRECOMPILE_ADDRESS", "INFERENCE_REGISTRY_ADDRESS"),
    "ogevm.precompile.inference": ("inference_precompile",),
    "ogevm.precompile.attestation": ("attestation_precompile",),
    "ogevm.precompile.preprocessing": ("preprocessing_precompile",),
    "ogevm.abc": ("ResultsProvider", "ExecutorBackend", "Simulator"),
    "ogevm.precompile.modes": ("CatalogueProvider", "InlineProvider", "CaptureProvider", "ReplayProvider"),
    "ogevm.models.store": ("ModelStore", "ModelInfo", "TensorSpec"),
    "ogevm.models.runtime": ("ModelRuntime",),
    "ogevm.models.cid": ("compute_cid",),
    "ogevm.records": ("RequestId", "InferenceRequest", "InferenceResult", "InferenceRecord", "EMPTY_BUNDLE_ROOT"),
    "ogevm.pipe.bundle": ("bundle_root", "encode_bundle", "decode_bundle"),
    "ogevm.verify.records": ("verify_record", "InvalidRecord", "ProofChecker"),
    "ogevm.verify.zkml": ("CircuitStore", "CircuitProofChecker"),
    "ogevm.pipe.admission": ("AdmissionRules",),
    "ogevm.pipe.mempool": ("TxPool", "PoolEntry", "PoolLimits", "TxState"),
    "ogevm.pipe.simulation": ("RunSimulation",),
    "ogevm.pipe.executor": ("InferenceExecutor", "ThreadPoolBackend", "local_executor"),
    "ogevm.pipe.builder": ("BlockBuilder", "BuiltBlock"),
    "ogevm.pipe.validator": ("BlockValidator",),
    "ogevm.pipe.pipeline": ("Pipeline", "PipeConfig"),
    "ogevm.abi.codec": ("encode_run_model_inference", "decode_output", "decode_revert_reason"),
    "ogevm.abi.types": ("InferenceMode", "Number", "NumberTensor", "StringTensor", "ModelInput",
                        "ModelInferenceRequest", "ModelOutput"),
    "ogevm.errors": ("OgevmError", "InferenceError", "UnknownModel", "ModelStoreError", "InvalidTransaction",
                     "TransactionRejected", "InvalidBlock", "ExecutorUnavailable"),
    "ogevm.abi.llm": ("LLMInferenceMode", "LLMCompletionRequest", "LLMChatRequest", "LLMChatResponse",
                      "encode_llm_completion", "encode_llm_chat", "decode_completion_response",
                      "decode_chat_response"),
    "ogevm.llm": ("LLMRuntime", "LanguageModel", "WindowModel", "ChatMessage", "ToolCall", "ToolDefinition"),
    "ogevm.client": ("Client", "CallResult", "LLMReply"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = ["__version__", *_MODULE_OF]


def __getattr__(name: str):
    # each public name is imported on first use: ``import ogevm`` stays cheap
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'ogevm' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
