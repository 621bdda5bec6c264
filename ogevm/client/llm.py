"""LLM calls from the client: ``runLLMCompletion`` and ``runLLMChat`` on the precompile, by
transaction (through the node's PIPE pool) or by ``eth_call`` (INLINE)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ogevm.abi.llm import (
    LLMChatRequest,
    LLMCompletionRequest,
    LLMInferenceMode,
    decode_chat_response,
    decode_completion_response,
    encode_llm_chat,
    encode_llm_completion,
)
from ogevm.client.rpc import EXECUTION_REVERTED, RpcCallError, revert_error
from ogevm.client.transactions import TransactionSender
from ogevm.constants import INFERENCE_PRECOMPILE_ADDRESS
from ogevm.errors import OgevmError, TransactionFailed
from ogevm.llm.types import ChatMessage, ToolCall, ToolDefinition
from ogevm.precompile.llm import response_data
from ogevm.precompile.mocks import parse_output

PRECOMPILE = "0x" + bytes(INFERENCE_PRECOMPILE_ADDRESS).hex()


@dataclass(frozen=True)
class LLMReply:
    """What an LLM call answered: ``text`` (the completion, or the chat message's content),
    ``finish_reason`` and ``tool_calls`` (chat only: None and () for a completion), and the
    transaction that made it with its records (None and [] for an ``eth_call``)."""

    text: str
    finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tx_hash: str | None = None
    records: tuple = ()


class LLMCalls(TransactionSender):
    """The LLM half of :class:`~ogevm.client.Client`.

    ``mode`` is ``"VANILLA"`` or ``"TEE"`` (or the enum); ``temperature`` is in hundredths
    (0 = greedy, deterministic; above, sampled with a seed the chain derives from the call).
    With ``call=True`` the request runs as an ``eth_call``: nothing is sent or paid.
    Raises TransactionFailed with the revert reason (an unknown model, ``max_tokens`` 0...).
    """

    def complete(self, model: str, prompt: str, *, max_tokens: int = 64, stop: Sequence[str] = (),
                 temperature: int = 0, mode: LLMInferenceMode | str = "VANILLA", call: bool = False,
                 gas: int | None = None) -> LLMReply:
        """``runLLMCompletion``: the continuation of ``prompt``."""
        request = LLMCompletionRequest(_mode(mode), model, prompt, max_tokens, tuple(stop), temperature)
        return self._llm(request, encode_llm_completion(request), call, gas)

    def chat(self, model: str, messages: Sequence[ChatMessage | Mapping[str, Any]], *,
             tools: Sequence[ToolDefinition | Mapping[str, Any]] = (), tool_choice: str = "",
             max_tokens: int = 128, stop: Sequence[str] = (), temperature: int = 0,
             mode: LLMInferenceMode | str = "VANILLA", call: bool = False, gas: int | None = None) -> LLMReply:
        """``runLLMChat``: the assistant's next message. ``messages`` and ``tools`` may be dicts
        in the OpenAI shape (``{"role", "content"}``; ``{"name", "description", "parameters"}``
        with ``parameters`` a dict or JSON text)."""
        request = LLMChatRequest(_mode(mode), model, tuple(map(_message, messages)), tuple(map(_tool, tools)),
                                 tool_choice, max_tokens, tuple(stop), temperature)
        return self._llm(request, encode_llm_chat(request), call, gas)

    def _llm(self, request, calldata: bytes, call: bool, gas: int | None) -> LLMReply:
        if call:
            try:
                returned = self.rpc("eth_call", {"from": self.address, "to": PRECOMPILE,
                                                 "data": "0x" + calldata.hex()}, "latest")
            except RpcCallError as exc:
                if exc.code != EXECUTION_REVERTED:
                    raise
                raise revert_error(exc) from exc
            return _reply(request, bytes.fromhex(returned[2:]), None, ())
        tx_hash = self.send_transaction(PRECOMPILE, calldata, gas=gas)
        receipt = self.wait_for_receipt(tx_hash)
        records = tuple(self.rpc("og_getInferenceRecords", tx_hash))
        failed = next((r["error"] for r in records if r.get("error")), None)
        if int(receipt["status"], 16) != 1 or failed is not None:
            status = self.rpc("og_getTransactionStatus", tx_hash)
            raise TransactionFailed(failed or status.get("reason") or "the LLM call reverted", b"")
        output = next((r["output"] for r in records if r.get("output") is not None), None)
        if output is None:
            raise OgevmError(f"transaction {tx_hash} succeeded but the node has no LLM reply for it")
        return _reply(request, response_data(request, parse_output(_tensors(output))), tx_hash, records)


def _reply(request, data: bytes, tx_hash: str | None, records: tuple) -> LLMReply:
    if isinstance(request, LLMCompletionRequest):
        return LLMReply(decode_completion_response(data), tx_hash=tx_hash, records=records)
    response = decode_chat_response(data)
    return LLMReply(response.message.content, response.finish_reason, response.message.tool_calls, tx_hash, records)


def _tensors(output: Mapping[str, Any]) -> dict:
    """A record's output JSON with only what :func:`parse_output` reads."""
    return {key: output[key] for key in ("numbers", "strings", "jsons") if key in output}


def _mode(mode: LLMInferenceMode | str | int) -> LLMInferenceMode:
    try:
        return LLMInferenceMode[mode.upper()] if isinstance(mode, str) else LLMInferenceMode(mode)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"unknown LLM inference mode {mode!r}: VANILLA or TEE") from exc


def _message(message: ChatMessage | Mapping[str, Any]) -> ChatMessage:
    if isinstance(message, ChatMessage):
        return message
    calls = tuple(ToolCall(c.get("id", ""), c["name"], _json(c.get("arguments", "{}")))
                  for c in message.get("tool_calls", ()))
    return ChatMessage(message["role"], message.get("content") or "", message.get("name", ""),
                       message.get("tool_call_id", ""), calls)


def _tool(tool: ToolDefinition | Mapping[str, Any]) -> ToolDefinition:
    if isinstance(tool, ToolDefinition):
        return tool
    return ToolDefinition(tool.get("description", ""), tool["name"], _json(tool.get("parameters", "")))


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
