// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {TensorLib, ModelOutput} from "../OGInference.sol";
import {OG_PREPROCESSING} from "../OGPreprocessing.sol";
import {SolidML} from "../SolidML.sol";

/// @title StandardizedForecast
/// @notice Standardizes a feature vector with the preprocessing precompile
///         (0xF6) and feeds the z-scores to a model (0xF4).
/// @dev The standardization is plain computation: it gives the same result in
///      the simulated run and in the real one. Only the model call returns an
///      empty output while simulating; then nothing is stored.
contract StandardizedForecast {
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

    /// @notice Standardizes `features`, runs the model on them as a `[1, n]`
    ///         tensor, stores and returns the first value of `outputName`.
    /// @dev Reverts with the precompile's reason if `features` cannot be
    ///      standardized (for instance all equal: zero variance).
    /// @return prediction The prediction, or zero while simulating.
    function forecast(TensorLib.Number[] calldata features) external returns (TensorLib.Number memory prediction) {
        TensorLib.Number[] memory scaled = OG_PREPROCESSING.standardize(features);
        ModelOutput memory output =
            SolidML.inferVector(modelCID, inputName, scaled, SolidML.VerificationMethod.VANILLA);
        if (output.is_simulation_result) {
            return prediction;
        }
        prediction = TensorLib.firstValueByName(output, outputName);
        latestPrediction = prediction;
        uint256 id = predictionCount++;
        emit Forecast(id, prediction.value, prediction.decimals);
    }
}
