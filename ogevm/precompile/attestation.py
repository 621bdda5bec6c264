"""The attestation precompile at ``0x…F5``: ``verifyAttestation(bytes document)``.

Returns ``(address vendor, address enclaveKey, bytes32 measurement, uint64 timestamp)``
where ``vendor`` is the key that signed the document; policy (which vendor, which
measurements, how old) is the caller's, e.g. the inference-node registry. A malformed
document or signature reverts with ``Error(string)``.
"""

from __future__ import annotations

from eth.abc import ComputationAPI
from eth_abi import decode, encode
from eth_abi.exceptions import DecodingError
from eth_utils import keccak

from ogevm.abi.codec import encode_revert_reason
from ogevm.constants import GAS_ATTESTATION, GAS_INFERENCE_PER_WORD
from ogevm.precompile.inference import InferenceReverted
from ogevm.verify.tee import Attestation, InvalidAttestation

VERIFY_ATTESTATION_SELECTOR = keccak(text="verifyAttestation(bytes)")[:4]


def attestation_precompile(computation: ComputationAPI) -> ComputationAPI:
    """Check a vendor-signed attestation document (see the module docstring)."""
    data = computation.msg.data_as_bytes
    computation.consume_gas(GAS_ATTESTATION + GAS_INFERENCE_PER_WORD * ((len(data) + 31) // 32),
                            reason="attestation")
    try:
        if data[:4] != VERIFY_ATTESTATION_SELECTOR:
            raise InvalidAttestation(f"unknown function selector 0x{data[:4].hex()}")
        try:
            (document,) = decode(["bytes"], data[4:])
        except (DecodingError, OverflowError, ValueError) as exc:
            raise InvalidAttestation("malformed verifyAttestation calldata") from exc
        attestation = Attestation.decode(document)
        vendor = attestation.vendor()
    except InvalidAttestation as exc:
        computation.output = encode_revert_reason(str(exc))
        raise InferenceReverted(str(exc)) from exc
    except Exception as exc:  # a bug must not crash block building or import
        computation.output = encode_revert_reason(f"internal error: {type(exc).__name__}")
        raise InferenceReverted("internal error") from exc
    computation.output = encode(
        ["address", "address", "bytes32", "uint64"],
        [vendor, attestation.enclave_key, attestation.measurement, attestation.timestamp],
    )
    return computation
