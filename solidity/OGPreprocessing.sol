// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {TensorLib} from "./OGInference.sol";

// Interface of the preprocessing precompile that lives at address
// 0x00000000000000000000000000000000000000F6.
//
// Every function works on `TensorLib.Number[]` (ABI `(int128,int128)[]`) and
// computes exactly: each result is the exact value (a square root for
// `stdDev`, `standardize` and `correlation`) rounded once to the nearest
// multiple of 10^-18, ties to even, and returned with `decimals == 18`.
// The precompile is a pure function of its input; it runs in every pass of a
// transaction and makes no inference request.

/// @notice Statistics and feature scaling of `Number` arrays.
/// @dev Failures revert with standard `Error(string)` data, e.g. an empty
///      array, more than 4096 elements, decimals outside [-400, 400], zero
///      variance (`standardize`, `correlation`), zero range (`normalize`) or a
///      result that does not fit int128 with 18 decimals.
interface OGPreprocessing {
    /// @notice The smallest element.
    function min(TensorLib.Number[] calldata values) external pure returns (TensorLib.Number memory);

    /// @notice The largest element.
    function max(TensorLib.Number[] calldata values) external pure returns (TensorLib.Number memory);

    /// @notice The arithmetic mean.
    function mean(TensorLib.Number[] calldata values) external pure returns (TensorLib.Number memory);

    /// @notice The population standard deviation: the square root of `variance`.
    function stdDev(TensorLib.Number[] calldata values) external pure returns (TensorLib.Number memory);

    /// @notice The population variance: the mean of the squared deviations from the mean.
    function variance(TensorLib.Number[] calldata values) external pure returns (TensorLib.Number memory);

    /// @notice The middle element; for an even count, the mean of the two middle elements.
    function median(TensorLib.Number[] calldata values) external pure returns (TensorLib.Number memory);

    /// @notice `(x - mean) / stdDev` for each element (z-scores, population stdDev).
    function standardize(TensorLib.Number[] calldata values) external pure returns (TensorLib.Number[] memory);

    /// @notice `(x - min) / (max - min)` for each element: min-max scaling to [0, 1].
    function normalize(TensorLib.Number[] calldata values) external pure returns (TensorLib.Number[] memory);

    /// @notice Pearson's correlation coefficient of two arrays of the same length.
    function correlation(TensorLib.Number[] calldata x, TensorLib.Number[] calldata y)
        external
        pure
        returns (TensorLib.Number memory);
}

// Address of the preprocessing precompile.
address constant OG_PREPROCESSING_ADDRESS = 0x00000000000000000000000000000000000000f6;

// The preprocessing precompile, ready to call.
OGPreprocessing constant OG_PREPROCESSING = OGPreprocessing(OG_PREPROCESSING_ADDRESS);
