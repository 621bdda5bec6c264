// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Types, constants and the interface of the ML inference precompile that
// lives at address 0x00000000000000000000000000000000000000F4.
//
// The field order of every struct below is part of the ABI. Do not reorder,
// retype or insert fields: the canonical signature of `runModelInference`
// must stay
// runModelInference((uint8,string,((string,(int128,int128)[],uint32[])[],(string,string[])[])))
// and those of the LLM functions
// runLLMCompletion((uint8,string,string,uint32,string[],uint32))
// runLLMChat((uint8,string,(string,string,string,string,(string,string,string)[])[],(string,string,string)[],string,uint32,string[],uint32))

/// @notice Tensor types and helpers to build model inputs and read model outputs.
library TensorLib {
    /// @notice A fixed-point decimal: `value * 10^-decimals`.
    struct Number {
        int128 value;
        int128 decimals;
    }

    /// @notice A named N-dimensional tensor of numbers.
    /// @dev `values` holds the elements flattened in row-major order and
    ///      `shape` holds the size of each dimension.
    struct MultiDimensionalNumberTensor {
        string name;
        Number[] values;
        uint32[] shape;
    }

    /// @notice A named one-dimensional tensor of strings.
    struct StringTensor {
        string name;
        string[] values;
    }

    /// @notice A named JSON document returned by a model, kept as text.
    struct JsonScalar {
        string name;
        string value;
    }

    // ------------------------------------------------------------------
    // Builders
    // ------------------------------------------------------------------

    /// @notice Returns `value * 10^-decimals` as a Number.
    function number(int128 value, int128 decimals) internal pure returns (Number memory) {
        return Number(value, decimals);
    }

    /// @notice A 1-D tensor; its shape is `[values.length]`.
    function numberTensor1D(string memory name, Number[] memory values)
        internal
        pure
        returns (MultiDimensionalNumberTensor memory)
    {
        uint32[] memory shape = new uint32[](1);
        shape[0] = _toUint32(values.length);
        return MultiDimensionalNumberTensor(name, values, shape);
    }

    /// @notice A 2-D tensor of shape `[rows, cols]`, flattened row by row.
    /// @dev Reverts if the rows do not all have the same length.
    function numberTensor2D(string memory name, Number[][] memory values)
        internal
        pure
        returns (MultiDimensionalNumberTensor memory)
    {
        uint256 rows = values.length;
        uint256 cols = rows == 0 ? 0 : values[0].length;
        Number[] memory flat = new Number[](rows * cols);
        uint256 k = 0;
        for (uint256 i = 0; i < rows; i++) {
            Number[] memory row = values[i];
            require(row.length == cols, "TensorLib: ragged 2-D tensor");
            for (uint256 j = 0; j < cols; j++) {
                flat[k++] = row[j];
            }
        }
        uint32[] memory shape = new uint32[](2);
        shape[0] = _toUint32(rows);
        shape[1] = _toUint32(cols);
        return MultiDimensionalNumberTensor(name, flat, shape);
    }

    /// @notice A tensor of any rank from row-major `values` and `shape`.
    /// @dev Reverts if the product of `shape` differs from `values.length`.
    ///      An empty shape describes a scalar and needs exactly one value.
    function numberTensorND(string memory name, Number[] memory values, uint32[] memory shape)
        internal
        pure
        returns (MultiDimensionalNumberTensor memory)
    {
        uint256 size = 1;
        for (uint256 i = 0; i < shape.length; i++) {
            size *= shape[i];
        }
        require(size == values.length, "TensorLib: shape does not match number of values");
        return MultiDimensionalNumberTensor(name, values, shape);
    }

    /// @notice A named string tensor.
    function stringTensor(string memory name, string[] memory values)
        internal
        pure
        returns (StringTensor memory)
    {
        return StringTensor(name, values);
    }

    // ------------------------------------------------------------------
    // Readers
    // ------------------------------------------------------------------

    /// @notice Whether `output` has a number tensor called `name`.
    function hasNumberTensor(ModelOutput memory output, string memory name) internal pure returns (bool) {
        (bool found, ) = _findNumberTensor(output, name);
        return found;
    }

    /// @notice The number tensor called `name` in `output`.
    /// @dev Reverts with "TensorLib: number tensor not found: <name>" if absent.
    function numberTensorByName(ModelOutput memory output, string memory name)
        internal
        pure
        returns (MultiDimensionalNumberTensor memory)
    {
        (bool found, uint256 index) = _findNumberTensor(output, name);
        require(found, string.concat("TensorLib: number tensor not found: ", name));
        return output.numbers[index];
    }

    /// @notice The string tensor called `name` in `output`.
    /// @dev Reverts with "TensorLib: string tensor not found: <name>" if absent.
    function stringTensorByName(ModelOutput memory output, string memory name)
        internal
        pure
        returns (StringTensor memory)
    {
        for (uint256 i = 0; i < output.strings.length; i++) {
            if (_eq(output.strings[i].name, name)) {
                return output.strings[i];
            }
        }
        revert(string.concat("TensorLib: string tensor not found: ", name));
    }

    /// @notice The text of the JSON value called `name` in `output`.
    /// @dev Reverts with "TensorLib: json not found: <name>" if absent.
    function jsonByName(ModelOutput memory output, string memory name) internal pure returns (string memory) {
        for (uint256 i = 0; i < output.jsons.length; i++) {
            if (_eq(output.jsons[i].name, name)) {
                return output.jsons[i].value;
            }
        }
        revert(string.concat("TensorLib: json not found: ", name));
    }

    /// @notice The element at row-major position `index` of `tensor`.
    function numberAt(MultiDimensionalNumberTensor memory tensor, uint256 index)
        internal
        pure
        returns (Number memory)
    {
        require(index < tensor.values.length, "TensorLib: index out of range");
        return tensor.values[index];
    }

    /// @notice The first element of `tensor`; reverts if it is empty.
    function firstValue(MultiDimensionalNumberTensor memory tensor) internal pure returns (Number memory) {
        require(tensor.values.length > 0, "TensorLib: empty tensor");
        return tensor.values[0];
    }

    /// @notice The first element of the number tensor called `name` in `output`.
    function firstValueByName(ModelOutput memory output, string memory name)
        internal
        pure
        returns (Number memory)
    {
        return firstValue(numberTensorByName(output, name));
    }

    /// @notice `n` as an integer with `targetDecimals` decimals, i.e.
    ///         `n.value * 10^(targetDecimals - n.decimals)`.
    /// @dev Exact when scaling up (reverts on overflow); truncates toward zero
    ///      when scaling down. Negative `decimals` are allowed.
    function toScaled(Number memory n, uint8 targetDecimals) internal pure returns (int256) {
        if (n.value == 0) {
            return 0;
        }
        int256 shift = int256(uint256(targetDecimals)) - int256(n.decimals);
        if (shift >= 0) {
            // 10^76 is the largest power of ten that fits in int256.
            require(shift <= 76, "TensorLib: scale overflow");
            return int256(n.value) * int256(10 ** uint256(shift));
        }
        uint256 down = uint256(-shift);
        // |value| < 10^39, so any larger divisor truncates to zero.
        if (down > 76) {
            return 0;
        }
        return int256(n.value) / int256(10 ** down);
    }

    // ------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------

    function _findNumberTensor(ModelOutput memory output, string memory name)
        private
        pure
        returns (bool found, uint256 index)
    {
        for (uint256 i = 0; i < output.numbers.length; i++) {
            if (_eq(output.numbers[i].name, name)) {
                return (true, i);
            }
        }
        return (false, 0);
    }

    function _eq(string memory a, string memory b) private pure returns (bool) {
        return keccak256(bytes(a)) == keccak256(bytes(b));
    }

    function _toUint32(uint256 x) private pure returns (uint32) {
        require(x <= type(uint32).max, "TensorLib: dimension too large");
        return uint32(x);
    }
}

/// @notice How the result of an inference is verified.
enum ModelInferenceMode {
    VANILLA,
    ZK,
    TEE
}

/// @notice The inputs of a model: number tensors and string tensors.
struct ModelInput {
    TensorLib.MultiDimensionalNumberTensor[] numbers;
    TensorLib.StringTensor[] strings;
}

/// @notice One call to a model, identified by its content id.
struct ModelInferenceRequest {
    ModelInferenceMode mode;
    string modelCID;
    ModelInput input;
}

/// @notice What a model returned.
/// @dev `is_simulation_result` is true while the transaction is simulated to
///      discover its inference requests; the output is empty then. The
///      transaction is executed again later with the real results.
struct ModelOutput {
    TensorLib.MultiDimensionalNumberTensor[] numbers;
    TensorLib.StringTensor[] strings;
    TensorLib.JsonScalar[] jsons;
    bool is_simulation_result;
}

/// @notice How the result of an LLM call is verified (there is no ZK mode for LLMs).
enum LLMInferenceMode {
    VANILLA,
    TEE
}

/// @notice A tool call the model asks for; `arguments` is a JSON object, as text.
struct ToolCall {
    string id;
    string name;
    string arguments;
}

/// @notice One message of a chat. `role` is system, user, assistant or tool;
///         a tool's answer names the call it answers in `tool_call_id`.
struct ChatMessage {
    string role;
    string content;
    string name;
    string tool_call_id;
    ToolCall[] tool_calls;
}

/// @notice A tool the model may call; `parameters` is a JSON Schema object, as text.
struct ToolDefinition {
    string description;
    string name;
    string parameters;
}

/// @notice Complete `prompt` with at most `max_tokens` tokens.
/// @dev `temperature` is in hundredths (0..100); 0 decodes greedily.
struct LLMCompletionRequest {
    LLMInferenceMode mode;
    string modelCID;
    string prompt;
    uint32 max_tokens;
    string[] stop_sequence;
    uint32 temperature;
}

/// @notice The text of a completion.
struct LLMCompletionResponse {
    string answer;
}

/// @notice The next assistant message of `messages`. `tool_choice` is "" or
///         "auto" (the model decides), "none", "required" (it must call a
///         tool) or the name of the tool it must call.
struct LLMChatRequest {
    LLMInferenceMode mode;
    string modelCID;
    ChatMessage[] messages;
    ToolDefinition[] tools;
    string tool_choice;
    uint32 max_tokens;
    string[] stop_sequence;
    uint32 temperature;
}

/// @notice The assistant's message and why it ended: "stop", "length" or
///         "tool_calls" (then `message.tool_calls` holds the calls).
/// @dev LLM responses have no `is_simulation_result`: while the transaction
///      is simulated the response is empty (`finish_reason` is "").
struct LLMChatResponse {
    string finish_reason;
    ChatMessage message;
}

/// @notice Interface of the inference precompile.
/// @dev Failures revert with standard `Error(string)` data, so callers can
///      use `try ... catch Error(string memory reason)`.
interface OGInference {
    /// @notice Emitted for each inference request served.
    event ModelInferenceEvent(string inferenceID, ModelInferenceRequest request, ModelOutput response);

    /// @notice Runs `request` and returns the model output.
    function runModelInference(ModelInferenceRequest memory request) external returns (ModelOutput memory);

    /// @notice Completes a prompt with a language model. Emits no event.
    /// @dev While simulating, the answer is "".
    function runLLMCompletion(LLMCompletionRequest memory request)
        external
        returns (LLMCompletionResponse memory);

    /// @notice Gives the next message of a chat, maybe tool calls. Emits no event.
    /// @dev While simulating, `finish_reason` and the message are empty.
    function runLLMChat(LLMChatRequest memory request) external returns (LLMChatResponse memory);
}

// Address of the inference precompile.
address constant OG_INFERENCE_ADDRESS = 0x00000000000000000000000000000000000000F4;

// The inference precompile, ready to call.
OGInference constant OG_INFERENCE = OGInference(OG_INFERENCE_ADDRESS);
