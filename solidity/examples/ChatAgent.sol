// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {
    ChatMessage,
    LLMChatRequest,
    LLMChatResponse,
    LLMInferenceMode,
    OG_INFERENCE,
    ToolCall,
    ToolDefinition
} from "../OGInference.sol";

/// @title FlatJson
/// @notice Reads one unsigned integer field out of a small, flat, compact JSON
///         object such as `{"amount":12}` or `{"to":"0xabc","amount":5}`: the
///         form the precompile gives tool-call arguments in.
/// @dev Bounded (at most `MAX_BYTES` bytes, numbers of at most `MAX_DIGITS`
///      digits) and strict: whitespace, escapes, nested values, booleans,
///      null, signs, fractions and exponents all revert, as does a missing or
///      repeated field. Strict is the point: a contract must not act on
///      arguments it only half understood.
library FlatJson {
    uint256 internal constant MAX_BYTES = 256;
    uint256 internal constant MAX_DIGITS = 30;

    /// @notice The value of the integer field `key` of the object `json`.
    function uintField(string memory json, string memory key) internal pure returns (uint256 value) {
        bytes memory s = bytes(json);
        require(s.length <= MAX_BYTES, "FlatJson: longer than 256 bytes");
        require(s.length >= 2 && s[0] == "{", "FlatJson: not a flat JSON object");
        uint256 i = 1;
        bool found = false;
        if (s[i] != "}") {
            while (true) {
                (uint256 start, uint256 end) = _string(s, i);
                require(end + 1 < s.length && s[end + 1] == ":", "FlatJson: not a flat JSON object");
                bool wanted = _equals(s, start, end, bytes(key));
                i = end + 2;
                require(i < s.length, "FlatJson: not a flat JSON object");
                if (s[i] == '"') {
                    require(!wanted, string.concat("FlatJson: '", key, "' is not an unsigned integer"));
                    (, i) = _string(s, i);
                    i += 1;
                } else {
                    uint256 number;
                    (number, i) = _uint(s, i);
                    if (wanted) {
                        require(!found, string.concat("FlatJson: '", key, "' appears twice"));
                        found = true;
                        value = number;
                    }
                }
                require(i < s.length, "FlatJson: not a flat JSON object");
                if (s[i] != ",") break;
                i += 1;
            }
        }
        require(s[i] == "}" && i + 1 == s.length, "FlatJson: not a flat JSON object");
        require(found, string.concat("FlatJson: no field '", key, "'"));
    }

    /// @dev The string opening at `s[pos]`: its content is `s[start:end]` and
    ///      `s[end]` is the closing quote.
    function _string(bytes memory s, uint256 pos) private pure returns (uint256 start, uint256 end) {
        require(pos < s.length && s[pos] == '"', "FlatJson: not a flat JSON object");
        start = pos + 1;
        for (end = start; end < s.length; end++) {
            bytes1 c = s[end];
            if (c == '"') return (start, end);
            require(c != "\\", "FlatJson: escapes are not supported");
            require(uint8(c) >= 0x20, "FlatJson: control character in a string");
        }
        revert("FlatJson: unterminated string");
    }

    /// @dev The unsigned integer at `s[pos]` and the index just after it.
    function _uint(bytes memory s, uint256 pos) private pure returns (uint256 number, uint256 next) {
        next = pos;
        while (next < s.length && s[next] >= "0" && s[next] <= "9") {
            require(next - pos < MAX_DIGITS, "FlatJson: number longer than 30 digits");
            number = number * 10 + (uint8(s[next]) - 0x30);
            next += 1;
        }
        require(next > pos, "FlatJson: not an unsigned integer");
        require(next == pos + 1 || s[pos] != "0", "FlatJson: number with a leading zero");
    }

    function _equals(bytes memory s, uint256 start, uint256 end, bytes memory key) private pure returns (bool) {
        if (end - start != key.length) return false;
        for (uint256 k = 0; k < key.length; k++) {
            if (s[start + k] != key[k]) return false;
        }
        return true;
    }
}

/// @title ChatAgent
/// @notice A treasury run by a language model. A user asks in plain words;
///         the model may answer with a call of the one tool it is offered,
///         `transfer(amount)`, and the contract then pays `amount` from its
///         treasury to the asker. A reply without a tool call is kept as text.
/// @dev The transaction runs twice: first simulated, when the chat response is
///      empty (`finish_reason == ""`) and the contract does nothing, then with
///      the model's real reply. Tool-call arguments come as compact JSON,
///      `{"amount":5}`, read by `FlatJson`; anything else reverts, as does an
///      amount above the treasury. Temperature 0: the same request always
///      gives the same reply.
contract ChatAgent {
    string public constant SYSTEM_PROMPT = "You are the treasury agent. Pay grants with the transfer tool.";
    string public constant TOOL_NAME = "transfer";
    string public constant TOOL_DESCRIPTION = "Send tokens from the treasury to the user";
    string public constant TOOL_PARAMETERS =
        '{"type":"object","properties":{"amount":{"type":"integer","minimum":0}},"required":["amount"]}';

    /// @notice The model paid `amount` to `to`, as tool call `callId` asked.
    event Transfer(address indexed to, uint256 amount, string callId);
    /// @notice The model answered `asker` in words (`finishReason` "stop" or "length").
    event Answer(address indexed asker, string finishReason, string content);

    string public modelCID;
    LLMInferenceMode public mode;
    uint32 public maxTokens;
    /// @notice Tokens the agent may still pay out.
    uint256 public treasury;
    /// @notice Tokens paid to each account.
    mapping(address => uint256) public balanceOf;
    /// @notice The last reply that held no tool call.
    string public lastAnswer;

    constructor(string memory modelCID_, LLMInferenceMode mode_, uint32 maxTokens_, uint256 treasury_) {
        modelCID = modelCID_;
        mode = mode_;
        maxTokens = maxTokens_;
        treasury = treasury_;
    }

    /// @notice Asks the agent. With `mustAct` the model is made to call the
    ///         tool (`tool_choice` "required"); otherwise it decides ("auto").
    /// @return paid What was paid to the caller (0 for a text reply or while simulating).
    function ask(string calldata prompt, bool mustAct) external returns (uint256 paid) {
        LLMChatResponse memory reply = OG_INFERENCE.runLLMChat(_request(prompt, mustAct));
        if (bytes(reply.finish_reason).length == 0) {
            return 0;
        }
        if (keccak256(bytes(reply.finish_reason)) != keccak256("tool_calls")) {
            lastAnswer = reply.message.content;
            emit Answer(msg.sender, reply.finish_reason, reply.message.content);
            return 0;
        }
        ToolCall[] memory calls = reply.message.tool_calls;
        for (uint256 k = 0; k < calls.length; k++) {
            paid += _transfer(calls[k]);
        }
    }

    /// @notice The amount a `transfer` call's arguments ask for; reverts on anything else.
    function parseAmount(string calldata arguments) external pure returns (uint256) {
        return FlatJson.uintField(arguments, "amount");
    }

    function _transfer(ToolCall memory call) private returns (uint256 amount) {
        require(keccak256(bytes(call.name)) == keccak256(bytes(TOOL_NAME)), "ChatAgent: unknown tool");
        amount = FlatJson.uintField(call.arguments, "amount");
        require(amount <= treasury, "ChatAgent: amount above the treasury");
        treasury -= amount;
        balanceOf[msg.sender] += amount;
        emit Transfer(msg.sender, amount, call.id);
    }

    function _request(string calldata prompt, bool mustAct) private view returns (LLMChatRequest memory) {
        ChatMessage[] memory messages = new ChatMessage[](2);
        messages[0] = ChatMessage("system", SYSTEM_PROMPT, "", "", new ToolCall[](0));
        messages[1] = ChatMessage("user", prompt, "", "", new ToolCall[](0));
        ToolDefinition[] memory tools = new ToolDefinition[](1);
        tools[0] = ToolDefinition(TOOL_DESCRIPTION, TOOL_NAME, TOOL_PARAMETERS);
        return LLMChatRequest(
            mode, modelCID, messages, tools, mustAct ? "required" : "auto", maxTokens, new string[](0), 0
        );
    }
}
