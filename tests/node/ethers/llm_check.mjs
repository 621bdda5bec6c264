// ethers.js v6: LLM calls to the inference precompile of a running ogevm dev node.
//
//   node llm_check.mjs <rpc url> <prompt> <question> <tool as JSON {description, name, parameters}>
//
// Calls runLLMCompletion (prompt, 40 tokens, greedy) and runLLMChat (the question, a forced
// call of the tool) by eth_call, through a contract made from a human-readable ABI with tuple
// types, and prints what ethers decoded as JSON; exits 1 (with the error) if a call fails.

import { ethers } from "ethers";

const PRECOMPILE = "0x00000000000000000000000000000000000000F4";
const TOOL_CALL = "(string id, string name, string arguments)";
const MESSAGE = `(string role, string content, string name, string tool_call_id, ${TOOL_CALL}[] tool_calls)`;
const TOOL = "(string description, string name, string parameters)";
const ABI = [
  "function runLLMCompletion((uint8 mode, string modelCID, string prompt, uint32 max_tokens, " +
    "string[] stop_sequence, uint32 temperature) request) returns ((string answer))",
  `function runLLMChat((uint8 mode, string modelCID, ${MESSAGE}[] messages, ${TOOL}[] tools, string tool_choice, ` +
    `uint32 max_tokens, string[] stop_sequence, uint32 temperature) request) returns ((string finish_reason, ${MESSAGE} message))`,
];

async function main() {
  const [url, prompt, question, tool] = process.argv.slice(2);
  if (!url || tool === undefined) throw new Error("usage: node llm_check.mjs <rpc url> <prompt> <question> <tool json>");
  const provider = new ethers.JsonRpcProvider(url, undefined, { cacheTimeout: -1 });
  const og = new ethers.Contract(PRECOMPILE, ABI, provider);

  const completion = await og.runLLMCompletion.staticCall({
    mode: 0, modelCID: "tiny_chat", prompt, max_tokens: 40, stop_sequence: [], temperature: 0,
  });
  const user = { role: "user", content: question, name: "", tool_call_id: "", tool_calls: [] };
  const chat = await og.runLLMChat.staticCall({
    mode: 1, modelCID: "tiny_chat", messages: [user], tools: [JSON.parse(tool)], tool_choice: "required",
    max_tokens: 100, stop_sequence: [], temperature: 0,
  });
  const calls = chat.message.tool_calls.map((call) => ({ id: call.id, name: call.name, arguments: call.arguments }));
  console.log(JSON.stringify({
    ok: true, answer: completion.answer, finishReason: chat.finish_reason, role: chat.message.role, toolCalls: calls,
  }));
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    console.log(JSON.stringify({ ok: false, error: String(error?.shortMessage ?? error?.message ?? error) }));
    process.exit(1);
  },
);
