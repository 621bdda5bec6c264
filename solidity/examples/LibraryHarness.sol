// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {TensorLib, ModelInput, ModelOutput} from "../OGInference.sol";
import {SolidML} from "../SolidML.sol";

/// @title LibraryHarness
/// @notice Exposes every TensorLib and SolidML helper as an external
///         function, so the helpers are compiled and can be tested one by one.
contract LibraryHarness {
    // ---------------------------------------------------------------- TensorLib builders

    function number(int128 value, int128 decimals) external pure returns (TensorLib.Number memory) {
        return TensorLib.number(value, decimals);
    }

    function numberTensor1D(string memory name, TensorLib.Number[] memory values)
        external
        pure
        returns (TensorLib.MultiDimensionalNumberTensor memory)
    {
        return TensorLib.numberTensor1D(name, values);
    }

    function numberTensor2D(string memory name, TensorLib.Number[][] memory values)
        external
        pure
        returns (TensorLib.MultiDimensionalNumberTensor memory)
    {
        return TensorLib.numberTensor2D(name, values);
    }

    function numberTensorND(string memory name, TensorLib.Number[] memory values, uint32[] memory shape)
        external
        pure
        returns (TensorLib.MultiDimensionalNumberTensor memory)
    {
        return TensorLib.numberTensorND(name, values, shape);
    }

    function stringTensor(string memory name, string[] memory values)
        external
        pure
        returns (TensorLib.StringTensor memory)
    {
        return TensorLib.stringTensor(name, values);
    }

    // ---------------------------------------------------------------- TensorLib readers

    function hasNumberTensor(ModelOutput memory output, string memory name) external pure returns (bool) {
        return TensorLib.hasNumberTensor(output, name);
    }

    function numberTensorByName(ModelOutput memory output, string memory name)
        external
        pure
        returns (TensorLib.MultiDimensionalNumberTensor memory)
    {
        return TensorLib.numberTensorByName(output, name);
    }

    function stringTensorByName(ModelOutput memory output, string memory name)
        external
        pure
        returns (TensorLib.StringTensor memory)
    {
        return TensorLib.stringTensorByName(output, name);
    }

    function jsonByName(ModelOutput memory output, string memory name) external pure returns (string memory) {
        return TensorLib.jsonByName(output, name);
    }

    function numberAt(TensorLib.MultiDimensionalNumberTensor memory tensor, uint256 index)
        external
        pure
        returns (TensorLib.Number memory)
    {
        return TensorLib.numberAt(tensor, index);
    }

    function firstValue(TensorLib.MultiDimensionalNumberTensor memory tensor)
        external
        pure
        returns (TensorLib.Number memory)
    {
        return TensorLib.firstValue(tensor);
    }

    function firstValueByName(ModelOutput memory output, string memory name)
        external
        pure
        returns (TensorLib.Number memory)
    {
        return TensorLib.firstValueByName(output, name);
    }

    function toScaled(TensorLib.Number memory n, uint8 targetDecimals) external pure returns (int256) {
        return TensorLib.toScaled(n, targetDecimals);
    }

    // ---------------------------------------------------------------- SolidML

    function encodeInput(ModelInput memory input) external pure returns (bytes memory) {
        return SolidML.encodeInput(input);
    }

    function decodeOutput(bytes memory data) external pure returns (ModelOutput memory) {
        return SolidML.decodeOutput(data);
    }

    function isSimulation(ModelOutput memory output) external pure returns (bool) {
        return SolidML.isSimulation(output);
    }

    function vectorInput(string memory name, TensorLib.Number[] memory features)
        external
        pure
        returns (ModelInput memory)
    {
        return SolidML.vectorInput(name, features);
    }

    /// @notice `SolidML.infer`: input is `abi.encode(ModelInput)`, the result
    ///         is `abi.encode(ModelOutput)`.
    function infer(string memory modelCID, bytes memory input, SolidML.VerificationMethod method)
        external
        returns (bytes memory)
    {
        return SolidML.infer(SolidML.InferenceRequest(modelCID, input, method));
    }

    function inferTyped(string memory modelCID, ModelInput memory input, SolidML.VerificationMethod method)
        external
        returns (ModelOutput memory)
    {
        return SolidML.inferTyped(modelCID, input, method);
    }

    function inferVector(
        string memory modelCID,
        string memory inputName,
        TensorLib.Number[] memory features,
        SolidML.VerificationMethod method
    ) external returns (ModelOutput memory) {
        return SolidML.inferVector(modelCID, inputName, features, method);
    }
}
