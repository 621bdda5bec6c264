// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {TensorLib, ModelOutput} from "@ogevm/contracts/OGInference.sol";
import {SolidML} from "@ogevm/contracts/SolidML.sol";

/// @notice Keeps a model's latest price forecast and when it was made; a forecast older than
///         `maxAge` seconds is stale.
contract PriceOracle {
    string public modelCID;
    uint256 public immutable maxAge;
    TensorLib.Number public price;
    uint256 public updatedAt;

    constructor(string memory modelCID_, uint256 maxAge_) {
        modelCID = modelCID_;
        maxAge = maxAge_;
    }

    /// @notice Runs the model on `features` ([1, n] tensor "x"), keeps output "y". A negative
    ///         price is refused: the model is wrong, the oracle keeps its last value.
    function update(TensorLib.Number[] calldata features) external {
        ModelOutput memory output =
            SolidML.inferVector(modelCID, "x", features, SolidML.VerificationMethod.VANILLA);
        if (output.is_simulation_result) return;
        TensorLib.Number memory y = TensorLib.firstValueByName(output, "y");
        require(y.value >= 0, "negative price");
        price = y;
        updatedAt = block.timestamp;
    }

    function stale() external view returns (bool) {
        return block.timestamp > updatedAt + maxAge;
    }
}
