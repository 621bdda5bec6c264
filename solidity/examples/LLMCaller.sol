// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {
    LLMChatRequest,
    LLMChatResponse,
    LLMCompletionRequest,
    LLMCompletionResponse,
    OG_INFERENCE
} from "../OGInference.sol";

/// @title LLMCaller
/// @notice Test harness: forwards `runLLMCompletion` / `runLLMChat` calls to
///         the precompile from a contract, keeps what came back and catches
///         revert reasons.
contract LLMCaller {
    /// @notice Answer of the last completion.
    string public lastAnswer;
    /// @notice `finish_reason`, message content and number of tool calls of the last chat.
    string public lastFinishReason;
    string public lastContent;
    uint256 public lastToolCalls;
    /// @notice Reason caught by the last `tryComplete` or `tryChat` ("" if it succeeded).
    string public lastReason;

    /// @notice Completes `request.prompt`; a revert of the precompile bubbles up.
    function complete(LLMCompletionRequest calldata request) external returns (string memory answer) {
        answer = OG_INFERENCE.runLLMCompletion(request).answer;
        lastAnswer = answer;
    }

    /// @notice Runs the chat and returns the response; a revert bubbles up.
    function chat(LLMChatRequest calldata request) external returns (LLMChatResponse memory response) {
        response = OG_INFERENCE.runLLMChat(request);
        _keep(response);
    }

    /// @notice Like `complete`, but catches an `Error(string)` revert.
    function tryComplete(LLMCompletionRequest calldata request) external returns (bool ok, string memory reason) {
        try OG_INFERENCE.runLLMCompletion(request) returns (LLMCompletionResponse memory response) {
            lastAnswer = response.answer;
            ok = true;
        } catch Error(string memory why) {
            reason = why;
        }
        lastReason = reason;
    }

    /// @notice Like `chat`, but catches an `Error(string)` revert.
    function tryChat(LLMChatRequest calldata request) external returns (bool ok, string memory reason) {
        try OG_INFERENCE.runLLMChat(request) returns (LLMChatResponse memory response) {
            _keep(response);
            ok = true;
        } catch Error(string memory why) {
            reason = why;
        }
        lastReason = reason;
    }

    function _keep(LLMChatResponse memory response) private {
        lastFinishReason = response.finish_reason;
        lastContent = response.message.content;
        lastToolCalls = response.message.tool_calls.length;
    }
}
