"""Addresses, gas schedule and limits of the inference precompile.

Every number a client must agree on lives here, so another implementation can be
checked against one file. ``docs/SPEC.md`` explains each of them.
"""

from eth_keys import keys
from eth_typing import Address
from eth_utils import keccak

#: The inference precompile, ABI-compatible with the public OGInference interface.
INFERENCE_PRECOMPILE_ADDRESS = Address(b"\x00" * 19 + b"\xf4")

#: Verifies a TEE attestation document (vendor signature) for contracts and the registry.
ATTESTATION_PRECOMPILE_ADDRESS = Address(b"\x00" * 19 + b"\xf5")
#: Preprocessing of ``Number[]`` (min, max, mean, ..., correlation): ``OGPreprocessing``.
PREPROCESSING_PRECOMPILE_ADDRESS = Address(b"\x00" * 19 + b"\xf6")
#: The inference-node registry system contract, deployed at genesis.
INFERENCE_REGISTRY_ADDRESS = Address(b"\x00" * 18 + b"\xf4\xf4")
#: Storage slot of the registry's ``circuitVkHash`` mapping (model CID -> verifying-key hash).
REGISTRY_CIRCUIT_SLOT = 5

# --- gas schedule -------------------------------------------------------------
#: Charged on every call before anything is decoded.
GAS_INFERENCE_BASE = 5_000
#: Charged per 32-byte word of calldata, before decoding (covers ABI decoding).
GAS_INFERENCE_PER_WORD = 12
#: Fixed part of a model's per-sample cost (session lookup, binding, encoding).
GAS_MODEL_BASE = 2_000
#: Estimated arithmetic operations of a model paid for by one unit of gas.
MODEL_OPS_PER_GAS = 1_000
#: Added per call for the verification the mode promises.
GAS_MODE_SURCHARGE = {0: 0, 1: 50_000, 2: 3_000}  # VANILLA, ZKML, TEE
#: Charged for the ``ModelInferenceEvent`` log, as LOG1 would: base + topic, and per byte.
GAS_EVENT = 750
GAS_EVENT_PER_BYTE = 8

#: The attestation precompile: two signature recoveries' worth, plus decoding.
GAS_ATTESTATION = 6_000

#: The preprocessing precompile (``OGPreprocessing``): statistics of ``Number[]``, computed
#: inline in every pass. Charged before decoding: base + per 32-byte word of calldata.
GAS_PREPROCESSING_BASE = 500
GAS_PREPROCESSING_PER_WORD = 12
#: Charged after decoding, before the arithmetic: per input element (both arrays of
#: ``correlation``), per square root taken, and per comparison of ``median``'s sort,
#: counted as n * bit_length(n - 1) for n elements.
GAS_PREPROCESSING_PER_ELEMENT = 200
GAS_PREPROCESSING_PER_SQRT = 300
GAS_PREPROCESSING_PER_COMPARISON = 4

# --- limits ---------------------------------------------------------------------
#: Largest ONNX model the store accepts, in bytes.
MAX_MODEL_BYTES = 64 * 1024 * 1024
#: Most elements in one input or output tensor.
MAX_TENSOR_ELEMENTS = 65_536
#: Most elements of any tensor a model computes in one call, bounded from the call's input
#: shapes before the model runs (64 MiB of float32).
MAX_MODEL_TENSOR_ELEMENTS = 1 << 24
#: A model run is stopped after max(MODEL_RUN_MIN_SECONDS, MODEL_RUN_BUDGET_FACTOR x the
#: time its gas pays for at MODEL_RUN_NS_PER_GAS); the run then fails with an error result.
MODEL_RUN_MIN_SECONDS = 1.0
MODEL_RUN_BUDGET_FACTOR = 100
#: Above the largest time per unit of gas measured by the gas_calibration benchmark
#: (whole calls on a shared 2-core machine: at most ~60 ns per gas).
MODEL_RUN_NS_PER_GAS = 100
#: Highest rank of a tensor.
MAX_TENSOR_RANK = 8
#: Most tensors in one request (numbers and strings together).
MAX_INPUT_TENSORS = 64
#: Largest |decimals| of an input Number, and of an output Number.
MAX_ABS_DECIMALS = 400
#: Length of a revert reason before it is cut.
MAX_REASON_CHARS = 256
#: Most elements in one ``Number[]`` argument of the preprocessing precompile.
MAX_PREPROCESSING_ELEMENTS = 4096
#: Decimals of every Number the preprocessing precompile returns.
PREPROCESSING_RESULT_DECIMALS = 18

#: Development chain settings, as anvil and the Hardhat node use them.
DEV_CHAIN_ID = 31337
DEV_BLOCK_GAS_LIMIT = 30_000_000
DEV_INITIAL_BASE_FEE = 1_000_000_000
DEV_ACCOUNT_BALANCE = 10_000 * 10**18
#: Oldest TEE attestation the dev registry accepts, in seconds.
DEV_MAX_ATTESTATION_AGE = 24 * 3600
#: Code measurement of the simulated enclave (a real TEE reports the hash of its image),
#: allow-listed by the dev registry.
SIMULATED_ENCLAVE_MEASUREMENT = keccak(b"ogevm simulated enclave, inference runtime v1")
#: The development TEE vendor root, trusted by the dev registry: derived from a public
#: label, so anyone can forge it. Dev only.
DEV_VENDOR_ROOT_KEY = keys.PrivateKey(keccak(b"ogevm development TEE vendor root (not secret)"))
