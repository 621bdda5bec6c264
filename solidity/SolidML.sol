// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {
    TensorLib,
    ModelInferenceMode,
    ModelInput,
    ModelInferenceRequest,
    ModelOutput,
    OGInference,
    OG_INFERENCE_ADDRESS
} from "./OGInference.sol";

/// @title SolidML
/// @notice A thin, ergonomic layer over the inference precompile.
/// @dev `infer` takes and returns ABI-encoded bytes (`abi.encode(ModelInput)`
///      in, `abi.encode(ModelOutput)` out); the typed helpers skip the
///      encoding round trip. Every function is internal, so the library is
///      inlined into the calling contract and never deployed on its own.
library SolidML {
    /// @notice How the result is verified. Same order as `ModelInferenceMode`.
    enum VerificationMethod {
        VANILLA,
        ZKML,
        TEE
    }

    /// @notice A model call with its input as `abi.encode(ModelInput)`.
    struct InferenceRequest {
        string modelCID;
        bytes input;
        VerificationMethod verificationMethod;
    }

    /// @notice Runs `request` and returns `abi.encode(ModelOutput)`.
    function infer(InferenceRequest memory request) internal returns (bytes memory) {
        ModelInput memory input = abi.decode(request.input, (ModelInput));
        ModelOutput memory output = inferTyped(request.modelCID, input, request.verificationMethod);
        return abi.encode(output);
    }

    /// @notice Runs `modelCID` on `input` and returns the decoded output.
    /// @dev Equivalent to `OG_INFERENCE.runModelInference(...)`: a revert of
    ///      the precompile is passed on unchanged. The call is made at low
    ///      level with the output decoded afterwards because the high-level
    ///      form runs into "stack too deep" in some calling contracts.
    function inferTyped(string memory modelCID, ModelInput memory input, VerificationMethod method)
        internal
        returns (ModelOutput memory)
    {
        bytes memory data = abi.encodeCall(
            OGInference.runModelInference, (ModelInferenceRequest(toMode(method), modelCID, input))
        );
        (bool ok, bytes memory ret) = OG_INFERENCE_ADDRESS.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
        return abi.decode(ret, (ModelOutput));
    }

    /// @notice Runs `modelCID` on a single `[1, n]` tensor called `inputName`
    ///         holding `features`.
    function inferVector(
        string memory modelCID,
        string memory inputName,
        TensorLib.Number[] memory features,
        VerificationMethod method
    ) internal returns (ModelOutput memory) {
        return inferTyped(modelCID, vectorInput(inputName, features), method);
    }

    /// @notice A `ModelInput` holding one `[1, n]` tensor called `name`.
    function vectorInput(string memory name, TensorLib.Number[] memory features)
        internal
        pure
        returns (ModelInput memory input)
    {
        uint32[] memory shape = new uint32[](2);
        shape[0] = 1;
        shape[1] = uint32(features.length);
        require(shape[1] == features.length, "SolidML: too many features");
        return singleTensorInput(TensorLib.MultiDimensionalNumberTensor(name, features, shape));
    }

    /// @notice A `ModelInput` holding just `tensor`.
    function singleTensorInput(TensorLib.MultiDimensionalNumberTensor memory tensor)
        internal
        pure
        returns (ModelInput memory input)
    {
        input.numbers = new TensorLib.MultiDimensionalNumberTensor[](1);
        input.numbers[0] = tensor;
        input.strings = new TensorLib.StringTensor[](0);
    }

    /// @notice `abi.encode(input)`, the form `InferenceRequest.input` expects.
    function encodeInput(ModelInput memory input) internal pure returns (bytes memory) {
        return abi.encode(input);
    }

    /// @notice Decodes the bytes returned by `infer`.
    function decodeOutput(bytes memory data) internal pure returns (ModelOutput memory) {
        return abi.decode(data, (ModelOutput));
    }

    /// @notice Whether `output` is the empty placeholder returned while the
    ///         transaction is being simulated.
    function isSimulation(ModelOutput memory output) internal pure returns (bool) {
        return output.is_simulation_result;
    }

    /// @notice The precompile's mode for a verification method.
    function toMode(VerificationMethod method) internal pure returns (ModelInferenceMode) {
        return ModelInferenceMode(uint8(method));
    }
}
