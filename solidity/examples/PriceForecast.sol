// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {TensorLib, ModelOutput} from "../OGInference.sol";
import {SolidML} from "../SolidML.sol";

/// @title PriceForecast
/// @notice Feeds a feature vector to a model and keeps its latest prediction.
/// @dev A transaction calling `forecast` runs twice. It is first simulated:
///      every inference then returns an empty output with
///      `is_simulation_result == true`, which only serves to discover the
///      requests. The transaction is then executed again with the real model
///      results. In the simulated run this contract returns a zero Number and
///      stores nothing.
contract PriceForecast {
    /// @notice Emitted for each stored prediction; `id` counts from 0.
    event Forecast(uint256 indexed id, int128 value, int128 decimals);

    string public modelCID;
    string public inputName;
    string public outputName;

    /// @notice The last real prediction (`value * 10^-decimals`).
    TensorLib.Number public latestPrediction;

    /// @notice How many real predictions were stored.
    uint256 public predictionCount;

    constructor(string memory modelCID_, string memory inputName_, string memory outputName_) {
        modelCID = modelCID_;
        inputName = inputName_;
        outputName = outputName_;
    }

    /// @notice Runs the model on `features` (as a `[1, n]` tensor), stores and
    ///         returns the first value of the output tensor `outputName`.
    /// @return prediction The prediction, or zero while simulating.
    function forecast(TensorLib.Number[] calldata features) external returns (TensorLib.Number memory prediction) {
        ModelOutput memory output = _run(features);
        if (output.is_simulation_result) {
            return prediction;
        }
        prediction = TensorLib.firstValueByName(output, outputName);
        latestPrediction = prediction;
        uint256 id = predictionCount++;
        emit Forecast(id, prediction.value, prediction.decimals);
    }

    /// @notice Like `forecast` but stores nothing; handy with `eth_call`.
    function forecastView(TensorLib.Number[] calldata features)
        external
        returns (TensorLib.Number memory prediction)
    {
        ModelOutput memory output = _run(features);
        if (output.is_simulation_result) {
            return prediction;
        }
        return TensorLib.firstValueByName(output, outputName);
    }

    function _run(TensorLib.Number[] calldata features) private returns (ModelOutput memory) {
        return SolidML.inferVector(modelCID, inputName, features, SolidML.VerificationMethod.VANILLA);
    }
}
