// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {ModelInferenceRequest, ModelOutput, OG_INFERENCE, OG_INFERENCE_ADDRESS} from "../OGInference.sol";

/// @title InferenceCaller
/// @notice Low-level harness to exercise the inference precompile from a
///         contract: raw calls, revert reasons and decoded outputs.
contract InferenceCaller {
    /// @notice Success flag of the last `callRaw`.
    bool public lastOk;
    /// @notice Return (or revert) data of the last `callRaw`.
    bytes public lastReturn;
    /// @notice Revert reason caught by the last failing `tryInfer`
    ///         (empty if the revert data was not `Error(string)`).
    string public lastReason;
    /// @notice Raw revert data caught by the last failing `tryInfer`.
    bytes public lastRevertData;

    /// @notice Calls the precompile with `data` as-is and stores the result.
    function callRaw(bytes calldata data) external returns (bool ok, bytes memory ret) {
        (ok, ret) = OG_INFERENCE_ADDRESS.call(data);
        lastOk = ok;
        lastReturn = ret;
    }

    /// @notice Calls the precompile and catches its revert.
    /// @return ok Whether the call succeeded.
    /// @return reason The `Error(string)` reason if it reverted with one.
    /// @return numberTensors How many number tensors the output has.
    function tryInfer(ModelInferenceRequest calldata req)
        external
        returns (bool ok, string memory reason, uint256 numberTensors)
    {
        try OG_INFERENCE.runModelInference(req) returns (ModelOutput memory out) {
            ok = true;
            numberTensors = out.numbers.length;
            lastReason = "";
            delete lastRevertData;
        } catch Error(string memory why) {
            reason = why;
            lastReason = why;
            lastRevertData = abi.encodeWithSignature("Error(string)", why);
        } catch (bytes memory data) {
            lastReason = "";
            lastRevertData = data;
        }
    }

    /// @notice Calls the precompile and returns its output; stores nothing.
    /// @dev A revert of the precompile bubbles up unchanged.
    function infer(ModelInferenceRequest calldata req) external returns (ModelOutput memory out) {
        return OG_INFERENCE.runModelInference(req);
    }
}
