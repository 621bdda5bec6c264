// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {TensorLib, ModelOutput} from "../OGInference.sol";
import {SolidML} from "../SolidML.sol";
import {IScheduledTask} from "../TaskScheduler.sol";

/// @title VolatilityForecaster
/// @notice A scheduled task: each run feeds the last `WINDOW` values to a model
///         and appends its prediction to the window, so the forecast rolls
///         forward one step per run. Register it with the genesis
///         `TaskScheduler` (`registerTask(address(this), endTime, frequency)`).
/// @dev Only the scheduler may call `run`. In a simulation (PIPE's first pass)
///      the inference returns an empty output flagged `is_simulation_result`
///      and nothing is stored.
contract VolatilityForecaster is IScheduledTask {
    uint256 public constant WINDOW = 4;

    /// @notice Emitted for each stored prediction; `run` counts from 1.
    event Forecast(uint256 indexed run, int128 value, int128 decimals);

    address public immutable scheduler;
    string public modelCID;
    string public inputName;
    string public outputName;

    /// @dev The last WINDOW values, oldest first.
    TensorLib.Number[WINDOW] private _window;

    /// @notice The latest prediction (`value * 10^-decimals`).
    TensorLib.Number public latestPrediction;
    /// @notice How many predictions were stored.
    uint256 public runs;

    constructor(
        address scheduler_,
        string memory modelCID_,
        string memory inputName_,
        string memory outputName_,
        TensorLib.Number[WINDOW] memory initial
    ) {
        scheduler = scheduler_;
        modelCID = modelCID_;
        inputName = inputName_;
        outputName = outputName_;
        for (uint256 i = 0; i < WINDOW; i++) {
            _window[i] = initial[i];
        }
    }

    /// @notice The values the next run feeds to the model, oldest first.
    function window() external view returns (TensorLib.Number[WINDOW] memory) {
        return _window;
    }

    function run() external {
        require(msg.sender == scheduler, "VolatilityForecaster: only the scheduler runs it");
        TensorLib.Number[] memory features = new TensorLib.Number[](WINDOW);
        for (uint256 i = 0; i < WINDOW; i++) {
            features[i] = _window[i];
        }
        ModelOutput memory output =
            SolidML.inferVector(modelCID, inputName, features, SolidML.VerificationMethod.VANILLA);
        if (output.is_simulation_result) {
            return;
        }
        TensorLib.Number memory prediction = TensorLib.firstValueByName(output, outputName);
        for (uint256 i = 0; i + 1 < WINDOW; i++) {
            _window[i] = _window[i + 1];
        }
        _window[WINDOW - 1] = prediction;
        latestPrediction = prediction;
        emit Forecast(++runs, prediction.value, prediction.decimals);
    }
}
