"""A small Python client for an ogevm node: one call per inference, exact outputs.

It mirrors the ergonomics of the public OpenGradient SDK (``infer(model_cid, mode,
model_input)`` returning named numpy arrays), but never loses precision on the way::

    from ogevm import Client

    client = Client("http://127.0.0.1:8545", "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
    cid = client.add_model("fixtures/models/linear_regression.onnx")
    result = client.infer(cid, "VANILLA", {"x": [[1.0, 2.0, 3.0, 4.0]]})
    result.outputs["y"]          # array([[7.1]])                      float64, shape (1, 1)
    result.outputs_exact["y"]    # array([[Decimal('7.1')]], dtype=object)

How a transaction runs: the client deploys the ``InferenceCaller`` harness contract once
(the address is cached per client), sends a signed EIP-1559 transaction calling its
``infer(ModelInferenceRequest)``, polls ``eth_getTransactionReceipt`` and reads the
output from ``og_getInferenceRecords``, which holds the exact ``Number`` values the node
recorded (the same values the contract saw). :meth:`Client.call_infer` runs the
precompile INLINE through ``eth_call`` instead, with no transaction and no gas paid.

Exactness, both ways:

* **Inputs** (:func:`model_input`): every float becomes the *shortest decimal that reads
  back as the same float in its own precision*, like the SDK's ``Decimal(str(x))``, but
  turned into ``Number(value, decimals)`` with integer arithmetic only (no 28-digit
  decimal context, no rounding, negative ``decimals`` for huge values that would not
  fit ``int128`` otherwise). ``np.float32`` / ``np.float16`` values use the shortest
  form in *their* precision, so a float32 array reaches a float32 model bit for bit
  (the largest float32 values, whose shortest form lies just above the type's maximum
  and would be refused by the node, are sent as their exact binary value).
  Integers and bools are exact (``decimals = 0``), ``decimal.Decimal`` values are sent
  as they are, strings make a string tensor. NaN and infinities cannot be written as a
  Number and raise ``ValueError``. One edge: a *float64* that lies exactly halfway
  between two float32 values is sent as its shortest float64 decimal, which the node
  then rounds once to float32 (correctly, from the decimal); numpy's
  ``astype(np.float32)`` would round the binary midpoint to even instead. Pass float32
  arrays to float32 models when you need numpy's bits.
* **Outputs** (:class:`CallResult`): the node encodes each float as the shortest
  decimal that round-trips in the dtype the model produced. ``outputs_exact`` holds those
  decimals as ``decimal.Decimal`` object arrays. ``outputs`` holds numpy arrays: integer
  and bool model outputs in the model's own dtype (exact, even for ``int64`` beyond
  2**53), float outputs as **float64**, each element the float64 nearest to the exact
  decimal (so ``7.1`` prints as ``7.1``, not as float32's ``7.0999999``); use
  :meth:`CallResult.as_dtype` for a correctly rounded array in another dtype (for
  example the model's float32) computed from the exact decimals, with no double rounding.
  The SDK instead converts every output to float32.

LLM calls go straight to the precompile, no harness::

    reply = client.chat("tiny_chat", [{"role": "user", "content": "What is the weather in Paris?"}],
                        tools=[{"name": "get_weather", "parameters": {"type": "object", "properties":
                                {"city": {"type": "string"}}, "required": ["city"]}}],
                        tool_choice="get_weather", max_tokens=120)
    reply.finish_reason, reply.tool_calls   # 'tool_calls', (ToolCall(id='call_0', name='get_weather', ...),)
    client.complete("tiny_chat", "The price of ", max_tokens=30, call=True).text   # eth_call, nothing sent

The harness is deployed from ``fixtures/contracts/InferenceCaller.json`` of the checkout
(pass ``harness_artifact=`` or ``harness_address=`` when running elsewhere).

Dependencies: the standard library's ``urllib`` for JSON-RPC and ``eth-account`` (already
an ogevm dependency) to sign transactions locally; no web3.py. The key never leaves
the process; the node only sees signed raw transactions.

Errors: a JSON-RPC error becomes :class:`RpcCallError` (``code``, ``message``, ``data``);
a revert (at ``eth_estimateGas`` time, in a mined transaction with ``status = 0``, or in
``call_infer``) becomes :class:`~ogevm.errors.TransactionFailed` with the revert
``reason`` and ``data`` (and ``tx_hash`` / ``receipt`` when a transaction was mined);
a transaction the pool refuses (at once or later, e.g. after a restart) becomes
:class:`~ogevm.errors.TransactionRejected`.
"""

from ogevm.client.inference import Client
from ogevm.client.inputs import model_input, to_number
from ogevm.client.llm import LLMReply
from ogevm.client.results import CallResult, InferenceResult
from ogevm.client.rpc import NodeUnavailable, RpcCallError
from ogevm.client.transactions import ReceiptTimeout

__all__ = ["CallResult", "Client", "InferenceResult", "LLMReply", "NodeUnavailable", "ReceiptTimeout", "RpcCallError", "model_input",
           "to_number"]
