// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {TensorLib, ModelInferenceMode, ModelOutput} from "../OGInference.sol";
import {SolidML} from "../SolidML.sol";

/// @title MixedModes
/// @notice Makes two independent inference calls with different
///         verification modes in a single transaction.
/// @dev While the transaction is simulated both calls return empty outputs
///      flagged `is_simulation_result`; nothing is stored then. Both requests
///      are independent, so they are discovered in the same simulation.
contract MixedModes {
    /// @notice Emitted when both real results are stored.
    event Compared(int128 aValue, int128 aDecimals, int128 bValue, int128 bDecimals);

    /// @notice First value of the output of model A from the last real run.
    TensorLib.Number public lastA;
    /// @notice First value of the output of model B from the last real run.
    TensorLib.Number public lastB;
    /// @notice How many real comparisons were stored.
    uint256 public comparisonCount;

    /// @notice Runs `modelA` in VANILLA mode and `modelB` in ZK mode on the
    ///         same `[1, n]` input and stores both first values of `outputName`.
    function compare(
        string calldata modelA,
        string calldata modelB,
        string calldata inputName,
        string calldata outputName,
        TensorLib.Number[] calldata features
    ) external {
        _compare(modelA, modelB, inputName, outputName, features, ModelInferenceMode.VANILLA, ModelInferenceMode.ZK);
    }

    /// @notice Like `compare` with the mode of each call chosen by the caller.
    /// @dev Modes are encoded as uint8 (0 VANILLA, 1 ZK, 2 TEE); any other
    ///      value makes the call revert during ABI decoding.
    function compareWithModes(
        string calldata modelA,
        string calldata modelB,
        string calldata inputName,
        string calldata outputName,
        TensorLib.Number[] calldata features,
        ModelInferenceMode modeA,
        ModelInferenceMode modeB
    ) external {
        _compare(modelA, modelB, inputName, outputName, features, modeA, modeB);
    }

    function _compare(
        string calldata modelA,
        string calldata modelB,
        string calldata inputName,
        string calldata outputName,
        TensorLib.Number[] calldata features,
        ModelInferenceMode modeA,
        ModelInferenceMode modeB
    ) private {
        ModelOutput memory a = SolidML.inferVector(modelA, inputName, features, _method(modeA));
        ModelOutput memory b = SolidML.inferVector(modelB, inputName, features, _method(modeB));
        if (a.is_simulation_result || b.is_simulation_result) {
            return;
        }
        TensorLib.Number memory va = TensorLib.firstValueByName(a, outputName);
        TensorLib.Number memory vb = TensorLib.firstValueByName(b, outputName);
        lastA = va;
        lastB = vb;
        comparisonCount++;
        emit Compared(va.value, va.decimals, vb.value, vb.decimals);
    }

    function _method(ModelInferenceMode mode) private pure returns (SolidML.VerificationMethod) {
        return SolidML.VerificationMethod(uint8(mode));
    }
}
