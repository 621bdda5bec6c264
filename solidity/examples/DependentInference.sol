// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {TensorLib, ModelOutput} from "../OGInference.sol";
import {SolidML} from "../SolidML.sol";

/// @title DependentInference
/// @notice Chains two models: an output tensor of the first becomes the
///         input of the second.
/// @dev The second request depends on the first result, so it cannot be
///      known from a single simulation. In the first simulation the first
///      call returns a simulation placeholder and `chain` returns early;
///      once the first result is known the transaction is simulated again and
///      the second request is discovered; the final execution then has both
///      real results. Requests are thus discovered in rounds.
contract DependentInference {
    /// @notice Emitted when the real result of the second model is stored.
    event Chained(uint256 indexed id, int128 value, int128 decimals);

    /// @notice First value of the first number tensor of the second model.
    TensorLib.Number public lastResult;
    /// @notice How many real chained results were stored.
    uint256 public chainCount;

    /// @notice Runs `firstModel` on `features` (a `[1, n]` tensor called
    ///         `inputName`), then runs `secondModel` on its output tensor
    ///         `firstOutput`, renamed to `inputName` with the same values
    ///         and shape. Both calls use VANILLA mode.
    function chain(
        string calldata firstModel,
        string calldata secondModel,
        string calldata inputName,
        string calldata firstOutput,
        TensorLib.Number[] calldata features
    ) external {
        ModelOutput memory first =
            SolidML.inferVector(firstModel, inputName, features, SolidML.VerificationMethod.VANILLA);
        if (first.is_simulation_result) {
            // The second request depends on this result: stop here.
            return;
        }

        TensorLib.MultiDimensionalNumberTensor memory carried = TensorLib.numberTensorByName(first, firstOutput);
        carried.name = inputName;

        ModelOutput memory second = SolidML.inferTyped(
            secondModel, SolidML.singleTensorInput(carried), SolidML.VerificationMethod.VANILLA
        );
        if (second.is_simulation_result) {
            return;
        }
        require(second.numbers.length > 0, "DependentInference: second model returned no number tensor");

        TensorLib.Number memory result = TensorLib.firstValue(second.numbers[0]);
        lastResult = result;
        uint256 id = chainCount++;
        emit Chained(id, result.value, result.decimals);
    }
}
