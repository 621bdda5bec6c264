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

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from os import PathLike
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from eth_utils import to_checksum_address

from ogevm.abi.codec import decode_output, decode_revert_reason, encode_revert_reason, encode_run_model_inference
from ogevm.abi.contract import ContractInterface
from ogevm.abi.types import (
    InferenceMode,
    ModelInferenceRequest,
    ModelInput,
    ModelOutput,
    Number,
    NumberTensor,
    StringTensor,
)
from ogevm.constants import INFERENCE_PRECOMPILE_ADDRESS, MAX_ABS_DECIMALS
from ogevm.errors import OgevmError, TransactionFailed, TransactionRejected
from ogevm.tensors import NUMERIC_DTYPES, number_to_decimal

__all__ = ["CallResult", "Client", "InferenceResult", "NodeUnavailable", "ReceiptTimeout", "RpcCallError", "model_input"]

INT128_MIN, INT128_MAX = -(2**127), 2**127 - 1
PRECOMPILE = "0x" + bytes(INFERENCE_PRECOMPILE_ADDRESS).hex()
#: JSON-RPC error code of a revert (as geth and anvil answer ``eth_call``).
EXECUTION_REVERTED = 3
#: JSON-RPC error code of a transaction the pool refuses.
TX_REJECTED = -32003


class RpcCallError(OgevmError):
    """The node answered a JSON-RPC call with an error object."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method, self.code, self.message, self.data = method, code, message, data


class NodeUnavailable(OgevmError, ConnectionError):
    """The node could not be reached (or answered something that is not JSON-RPC)."""


class ReceiptTimeout(OgevmError, TimeoutError):
    """A transaction was accepted but has no receipt after the timeout."""

    def __init__(self, tx_hash: str, timeout: float) -> None:
        super().__init__(f"no receipt for {tx_hash} after {timeout:g} s (see og_getTransactionStatus)")
        self.tx_hash = tx_hash


# --- inputs ------------------------------------------------------------------------------
def model_input(values: Mapping[str, Any] | ModelInput) -> ModelInput:
    """A ``ModelInput`` from ``{name: array, nested list, scalar or strings}``.

    Each tensor is flattened row-major and its shape recorded; each element becomes an
    exact :class:`~ogevm.abi.types.Number` (see the module docstring for floats). A
    tensor of strings (``str`` elements or a numpy ``U``/``S`` array) becomes a
    ``StringTensor`` (flat; the node gives it the model's shape). A ``ModelInput`` is
    returned unchanged. Raises ``ValueError`` for ragged lists, NaN, infinity, mixed
    strings and numbers, or values beyond ``int128``.
    """
    if isinstance(values, ModelInput):
        return values
    numbers, strings = [], []
    for name, value in values.items():
        shape, flat = _flatten(value)
        if flat and all(isinstance(x, (str, np.str_, bytes, np.bytes_)) for x in flat):
            strings.append(StringTensor(str(name), tuple(_text(x) for x in flat)))
        elif any(isinstance(x, (str, np.str_, bytes, np.bytes_)) for x in flat):
            raise ValueError(f"tensor {name!r} mixes strings and numbers")
        else:
            numbers.append(NumberTensor(str(name), tuple(to_number(x, str(name)) for x in flat), shape))
    return ModelInput(tuple(numbers), tuple(strings))


def to_number(x: Any, name: str = "value") -> Number:
    """The exact ``Number`` of one scalar (int, bool, float, numpy scalar, Decimal)."""
    if isinstance(x, (bool, np.bool_)):
        return Number(int(bool(x)), 0)
    if isinstance(x, (int, np.integer)):
        return _normalized(int(x), 0, name)
    if isinstance(x, np.floating):
        if not np.isfinite(x):
            raise ValueError(f"tensor {name!r}: {x} cannot be written as a Number")
        shortest = Decimal(np.format_float_scientific(x, unique=True, trim="-"))
        if abs(shortest) > Decimal(float(np.finfo(x.dtype).max)):
            # float32's largest values: the shortest form lies above the type's maximum and the
            # node refuses it as out of range; send the exact binary value instead
            exact = Fraction(float(x))
            return _normalized(exact.numerator, 0, name) if exact.denominator == 1 else to_number(exact, name)
        return _decimal_number(shortest, name)
    if isinstance(x, float):
        if x != x or x in (float("inf"), float("-inf")):
            raise ValueError(f"tensor {name!r}: {x} cannot be written as a Number")
        return _decimal_number(Decimal(repr(x)), name)
    if isinstance(x, Decimal):
        if not x.is_finite():
            raise ValueError(f"tensor {name!r}: {x} cannot be written as a Number")
        return _decimal_number(x, name)
    if isinstance(x, Fraction):
        denominator = x.denominator
        for prime in (2, 5):
            while denominator % prime == 0:
                denominator //= prime
        if denominator != 1:
            raise ValueError(f"tensor {name!r}: {x} has no finite decimal expansion")
        digits = max(_multiplicity(x.denominator, 2), _multiplicity(x.denominator, 5))
        return _normalized(int(x * 10**digits), -digits, name)
    raise ValueError(f"tensor {name!r}: cannot encode {type(x).__name__} {x!r} as a Number")


def _multiplicity(n: int, prime: int) -> int:
    count = 0
    while n % prime == 0:
        n //= prime
        count += 1
    return count


def _decimal_number(value: Decimal, name: str) -> Number:
    """``value`` as ``Number(digits, decimals)`` with integer arithmetic only."""
    sign, digits, exponent = value.as_tuple()
    return _normalized(int("".join(map(str, digits)) or "0") * (-1 if sign else 1), exponent, name)


def _normalized(coefficient: int, exponent: int, name: str) -> Number:
    """``coefficient * 10**exponent`` as the shortest ``Number`` (decimals = 0 for integers)."""
    if coefficient == 0:
        return Number(0, 0)
    while exponent < 0 and coefficient % 10 == 0:  # 1.50 -> (15, 1)
        coefficient //= 10
        exponent += 1
    if exponent > 0 and INT128_MIN <= coefficient * 10**exponent <= INT128_MAX:
        coefficient, exponent = coefficient * 10**exponent, 0  # integers keep decimals = 0
    while not INT128_MIN <= coefficient <= INT128_MAX and coefficient % 10 == 0:  # huge: negative decimals
        coefficient //= 10
        exponent += 1
    if -exponent > MAX_ABS_DECIMALS or exponent > MAX_ABS_DECIMALS:
        raise ValueError(f"tensor {name!r}: {coefficient}e{exponent} needs decimals {-exponent}, "
                         f"outside ±{MAX_ABS_DECIMALS}")
    return _checked(Number(coefficient, -exponent), name)


def _checked(number: Number, name: str) -> Number:
    if not INT128_MIN <= number.value <= INT128_MAX:
        raise ValueError(f"tensor {name!r}: {number.value} does not fit in int128")
    return number


def _text(x: Any) -> str:
    return x.decode() if isinstance(x, (bytes, np.bytes_)) else str(x)


def _flatten(value: Any) -> tuple[tuple[int, ...], list]:
    """(shape, row-major elements) of an array, a rectangular nested list, or a scalar.

    Nested lists are walked by hand rather than through ``np.asarray`` so Python ints
    beyond 2**53 mixed with floats are not promoted to float64 on the way.
    """
    if isinstance(value, np.ndarray):
        return tuple(int(d) for d in value.shape), list(value.reshape(-1))
    if isinstance(value, (list, tuple)):
        if not value:
            return (0,), []
        parts = [_flatten(item) for item in value]
        inner = parts[0][0]
        if any(shape != inner for shape, _ in parts):
            raise ValueError("ragged nested list: every row must have the same shape")
        return (len(value), *inner), [x for _, flat in parts for x in flat]
    return (), [value]


def _mode(mode: InferenceMode | int | str) -> InferenceMode:
    if isinstance(mode, str):
        try:
            return InferenceMode[mode.upper()]
        except KeyError:
            raise ValueError(f"unknown inference mode {mode!r}; use one of {[m.name for m in InferenceMode]}") from None
    return InferenceMode(int(mode))


# --- results -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CallResult:
    """What one inference returned (not :class:`ogevm.records.InferenceResult`, which is what
    a results provider answers inside the precompile).

    ``outputs``: number tensors as numpy arrays in their recorded shape (integer outputs
    in the model's dtype, float outputs as float64; see the module docstring);
    ``outputs_exact``: the same as ``decimal.Decimal`` object arrays; ``strings``: string
    tensors as flat object arrays; ``jsons``: JSON outputs (maps, sequences) parsed;
    ``records``: the node's inference records of the transaction, as
    ``og_getInferenceRecords`` returned them (empty for :meth:`Client.call_infer`).
    """

    tx_hash: str | None
    outputs: dict[str, np.ndarray]
    jsons: dict[str, Any]
    strings: dict[str, np.ndarray]
    records: list[dict] = field(default_factory=list)
    outputs_exact: dict[str, np.ndarray] = field(default_factory=dict)
    receipt: dict | None = None

    @property
    def transaction_hash(self) -> str | None:
        """The SDK's name for :attr:`tx_hash`."""
        return self.tx_hash

    @property
    def model_output(self) -> dict[str, Any]:
        """Every output by name in one dict, as the SDK returns it."""
        return {**self.outputs, **self.strings, **self.jsons}

    def as_dtype(self, name: str, dtype: Any) -> np.ndarray:
        """Output ``name`` correctly rounded from its exact decimals into ``dtype``
        (one rounding, nearest-even; float32 gives back the model's own float32 bits)."""
        exact = self.outputs_exact[name]
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            return np.array([int(x) for x in exact.reshape(-1)], dtype=dtype).reshape(exact.shape)
        from ogevm.tensors import number_tensor_to_array

        numbers = tuple(_decimal_number(x, name) for x in exact.reshape(-1))
        return number_tensor_to_array(NumberTensor(name, numbers, exact.shape), dtype)


#: The former name of :class:`CallResult`, kept for existing imports.
InferenceResult = CallResult


def _tensors_from_record(output: dict) -> tuple[list, list, list]:
    numbers = [(t["name"], tuple(t["shape"]), [Number(int(v), int(d)) for v, d in t["values"]])
               for t in output.get("numbers", [])]
    strings = [(t["name"], list(t["values"])) for t in output.get("strings", [])]
    jsons = [(j["name"], j["value"]) for j in output.get("jsons", [])]
    return numbers, strings, jsons


def _tensors_from_output(output: ModelOutput) -> tuple[list, list, list]:
    numbers = [(t.name, tuple(t.shape), list(t.values)) for t in output.numbers]
    strings = [(t.name, list(t.values)) for t in output.strings]
    jsons = [(j.name, j.value) for j in output.jsons]
    return numbers, strings, jsons


def _object_array(values: list) -> np.ndarray:
    """A flat object array of ``values`` (numpy never looks inside the elements)."""
    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return array


def _dtype_of(onnx_type: str | None) -> np.dtype:
    dtype = NUMERIC_DTYPES.get(onnx_type or "")
    if dtype is None or dtype.kind == "f":
        return np.dtype(np.float64)
    return dtype


# --- the client ------------------------------------------------------------------------------
class Client:
    """Inference against an ogevm node at ``rpc_url``, paid by ``private_key``.

    ``timeout`` bounds the wait for a receipt (seconds); ``harness_address`` reuses an
    ``InferenceCaller`` already deployed instead of deploying one; ``harness_artifact``
    is the compiled artifact to deploy (default: ``fixtures/contracts/InferenceCaller.json``
    of this checkout).

    Safe to share between threads, but :meth:`infer` keeps one transaction in flight per
    client (send, then wait for its receipt): the node's pool can currently reject a
    sender's transaction that becomes ready before the previous one of the same sender.
    For parallel inference use one client (one key) per thread.
    """

    def __init__(self, rpc_url: str, private_key: str | bytes, *, timeout: float = 120.0,
                 poll_interval: float = 0.02, harness_address: str | None = None,
                 harness_artifact: str | PathLike | None = None) -> None:
        from eth_account import Account  # signing only; imported here to keep ``import ogevm`` light

        self.rpc_url = rpc_url
        self.account = Account.from_key(private_key)
        self.address: str = self.account.address
        self.timeout = timeout
        self.poll_interval = poll_interval
        self._harness_address = harness_address
        self._harness_artifact = harness_artifact
        self._harness: ContractInterface | None = None
        self._ids = itertools.count(1)
        self._send_lock = threading.Lock()
        self._tx_lock = threading.Lock()
        self._harness_lock = threading.Lock()
        self._nonce: int | None = None
        self._chain_id: int | None = None
        self._gas_cap: int | None = None
        self._output_types: dict[str, dict[str, str]] = {}

    # --- JSON-RPC ----------------------------------------------------------------------------
    def rpc(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call; returns ``result``. Raises RpcCallError or NodeUnavailable."""
        body = json.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method,
                           "params": list(params)}).encode()
        request = urllib.request.Request(self.rpc_url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:  # e.g. 413 with a JSON-RPC error body
            raw = exc.read()
        except (urllib.error.URLError, OSError) as exc:
            raise NodeUnavailable(f"cannot reach {self.rpc_url}: {exc}") from exc
        try:
            answer = json.loads(raw)
        except ValueError as exc:
            raise NodeUnavailable(f"{self.rpc_url} did not answer JSON-RPC: {raw[:200]!r}") from exc
        if not isinstance(answer, dict):
            raise NodeUnavailable(f"{self.rpc_url} answered an unexpected {type(answer).__name__}")
        if "error" in answer:
            error = answer["error"]
            raise RpcCallError(method, error.get("code", 0), error.get("message", ""), error.get("data"))
        return answer.get("result")

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.rpc("eth_chainId"), 16)
        return self._chain_id

    # --- models and status --------------------------------------------------------------------
    def add_model(self, model: bytes | bytearray | memoryview | str | PathLike) -> str:
        """Upload an ONNX model (``og_addModel``); returns its CID (idempotent).

        Raises RpcCallError (code -32602 with the reason) when the node refuses the bytes.
        The node's request body limit (8 MiB of JSON) caps uploads at about 4 MiB of model;
        larger models go in with ``ogevm models add`` or ``ogevm node --models DIR``.
        """
        data = bytes(model) if isinstance(model, (bytes, bytearray, memoryview)) else Path(model).read_bytes()
        return self.rpc("og_addModel", "0x" + data.hex())

    def list_models(self) -> list[dict]:
        """``og_listModels``: the catalogue of the node."""
        return self.rpc("og_listModels")

    def status(self, tx_hash: str) -> dict:
        """``og_getTransactionStatus``: ``{state, reason, requests, block}``."""
        return self.rpc("og_getTransactionStatus", tx_hash)

    # --- transactions ------------------------------------------------------------------------
    def send_transaction(self, to: str | None, data: bytes = b"", value: int = 0, gas: int | None = None) -> str:
        """Sign and send an EIP-1559 transaction; returns its hash (``to=None`` deploys).

        Without ``gas`` the node estimates it (plus 10%, capped at the block gas limit);
        a revert at estimation raises TransactionFailed and nothing is sent. A refusal of
        the pool raises TransactionRejected.
        """
        call = {"from": self.address, "data": "0x" + bytes(data).hex(), "value": hex(value)}
        if to is not None:
            call["to"] = to
        if gas is None:
            try:
                estimate = int(self.rpc("eth_estimateGas", call), 16)
            except RpcCallError as exc:
                if exc.code != EXECUTION_REVERTED:
                    raise
                raise _revert_error(exc) from exc
            gas = min(estimate + estimate // 10, self._block_gas_limit())
        tip = int(self.rpc("eth_maxPriorityFeePerGas"), 16)
        max_fee = 2 * int(self.rpc("eth_gasPrice"), 16) + tip
        chain_id = self.chain_id
        with self._send_lock:
            for attempt in range(2):
                if self._nonce is None:
                    self._nonce = int(self.rpc("eth_getTransactionCount", self.address, "pending"), 16)
                tx = {"type": 2, "chainId": chain_id, "nonce": self._nonce, "value": value, "data": bytes(data),
                      "gas": gas, "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip}
                if to is not None:
                    tx["to"] = to_checksum_address(to)
                raw = self.account.sign_transaction(tx).raw_transaction
                try:
                    tx_hash = self.rpc("eth_sendRawTransaction", "0x" + bytes(raw).hex())
                except RpcCallError as exc:
                    self._nonce = None  # resynchronise from the node next time
                    if attempt == 0 and "nonce too low" in exc.message:
                        continue
                    if exc.code == TX_REJECTED:
                        raise TransactionRejected(exc.message) from exc
                    raise
                self._nonce += 1
                return tx_hash
        raise AssertionError("unreachable")

    def wait_for_receipt(self, tx_hash: str, timeout: float | None = None) -> dict:
        """Poll ``eth_getTransactionReceipt`` until the transaction is mined.

        Raises TransactionRejected if the pool drops it meanwhile, ReceiptTimeout after
        ``timeout`` seconds (default: the client's). The receipt's status is not checked.
        """
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        interval = self.poll_interval
        polls = 0
        while True:
            receipt = self.rpc("eth_getTransactionReceipt", tx_hash)
            if receipt is not None:
                return receipt
            polls += 1
            if polls % 10 == 0:  # now and then: was it rejected after acceptance?
                status = self.rpc("og_getTransactionStatus", tx_hash)
                if status["state"] == "rejected":
                    with self._send_lock:
                        self._nonce = None  # later nonces would wait behind the gap: resynchronise
                    error = TransactionRejected(status["reason"] or "rejected by the pool")
                    error.tx_hash = tx_hash
                    raise error
            if time.monotonic() > deadline:
                raise ReceiptTimeout(tx_hash, timeout)
            time.sleep(interval)
            interval = min(interval * 1.5, 0.25)

    def harness_address(self) -> str:
        """The ``InferenceCaller`` this client sends through (deployed on first use)."""
        with self._harness_lock:
            if self._harness_address is None:
                harness = self._harness_interface()
                tx_hash = self.send_transaction(None, harness.bytecode)
                receipt = self.wait_for_receipt(tx_hash)
                if int(receipt["status"], 16) != 1:
                    raise TransactionFailed("deploying the InferenceCaller harness failed", b"")
                self._harness_address = receipt["contractAddress"]
            return self._harness_address

    # --- inference ----------------------------------------------------------------------------
    def infer(self, model_cid: str, mode: InferenceMode | int | str, inputs: Mapping[str, Any] | ModelInput, *,
              gas: int | None = None, timeout: float | None = None) -> CallResult:
        """Run ``model_cid`` on ``inputs`` in a transaction and return its exact outputs.

        ``mode``: ``InferenceMode``, its value, or its name (``"VANILLA"``, ``"TEE"``, ...).
        Raises TransactionFailed with the revert reason (a failing request reverts at gas
        estimation, before anything is sent, unless ``gas`` is given; then the mined
        receipt has status 0 and the reason is read back), TransactionRejected,
        ReceiptTimeout or RpcCallError.
        """
        request = ModelInferenceRequest(_mode(mode), model_cid, model_input(inputs))
        calldata = self._harness_interface().function("infer").encode(request)
        to = self.harness_address()
        with self._tx_lock:  # one transaction in flight per client: see the class docstring
            tx_hash = self.send_transaction(to, calldata, gas=gas)
            receipt = self.wait_for_receipt(tx_hash, timeout)
        records = self.rpc("og_getInferenceRecords", tx_hash)
        if int(receipt["status"], 16) != 1:
            reason, revert_data = self._revert_of(receipt, records, to, calldata)
            error = TransactionFailed(reason, revert_data)
            error.tx_hash, error.receipt = tx_hash, receipt
            raise error
        record = next((r for r in records if r.get("output") is not None), None)
        if record is None:
            raise OgevmError(f"transaction {tx_hash} succeeded but the node has no inference output for it")
        numbers, strings, jsons = _tensors_from_record(record["output"])
        return self._result(model_cid, tx_hash, numbers, strings, jsons, records, receipt)

    def call_infer(self, model_cid: str, mode: InferenceMode | int | str, inputs: Mapping[str, Any] | ModelInput,
                   *, block: str = "latest") -> CallResult:
        """Run the inference with ``eth_call`` on the precompile (INLINE): no transaction,
        no gas paid, nothing recorded. ``tx_hash`` is None and ``records`` is empty.
        Raises TransactionFailed with the revert reason."""
        request = ModelInferenceRequest(_mode(mode), model_cid, model_input(inputs))
        call = {"from": self.address, "to": PRECOMPILE, "data": "0x" + encode_run_model_inference(request).hex()}
        try:
            returned = self.rpc("eth_call", call, block)
        except RpcCallError as exc:
            if exc.code != EXECUTION_REVERTED:
                raise
            raise _revert_error(exc) from exc
        numbers, strings, jsons = _tensors_from_output(decode_output(bytes.fromhex(returned[2:])))
        return self._result(model_cid, None, numbers, strings, jsons, [], None)

    # --- helpers ---------------------------------------------------------------------------------
    def _harness_interface(self) -> ContractInterface:
        if self._harness is None:
            if self._harness_artifact is not None:
                self._harness = ContractInterface.from_artifact(self._harness_artifact)
            else:
                from ogevm.fixtures import fixture_contract

                self._harness = fixture_contract("InferenceCaller")
        return self._harness

    def _block_gas_limit(self) -> int:
        if self._gas_cap is None:
            self._gas_cap = int(self.rpc("eth_getBlockByNumber", "latest", False)["gasLimit"], 16)
        return self._gas_cap

    def _types(self, model_cid: str) -> dict[str, str]:
        if model_cid not in self._output_types:
            for model in self.list_models():
                self._output_types[model["cid"]] = {o["name"]: o["type"] for o in model["outputs"]}
        return self._output_types.get(model_cid, {})

    def _result(self, model_cid: str, tx_hash: str | None, numbers: list, strings: list, jsons: list,
                records: list, receipt: dict | None) -> CallResult:
        types = self._types(model_cid) if numbers else {}
        outputs, exact = {}, {}
        for name, shape, values in numbers:
            decimals = _object_array([number_to_decimal(v) for v in values]).reshape(shape)
            dtype = _dtype_of(types.get(name))
            if dtype.kind == "f":
                array = np.array([float(d) for d in decimals.reshape(-1)], dtype=dtype)
            else:
                array = np.array([int(d) for d in decimals.reshape(-1)], dtype=dtype)
            outputs[name], exact[name] = array.reshape(shape), decimals
        return CallResult(
            tx_hash=tx_hash, outputs=outputs,
            jsons={name: json.loads(value) for name, value in jsons},
            strings={name: _object_array(values) for name, values in strings},
            records=records, outputs_exact=exact, receipt=receipt,
        )

    def _revert_of(self, receipt: dict, records: list, to: str, calldata: bytes) -> tuple[str | None, bytes]:
        """Why a mined transaction reverted: the failed inference record's reason, else an
        ``eth_call`` replay on the parent block's state, else og_getTransactionStatus."""
        for record in records:
            if record.get("error"):
                return record["error"], encode_revert_reason(record["error"])
        block = int(receipt["blockNumber"], 16)
        call = {"from": self.address, "to": to, "data": "0x" + calldata.hex()}
        try:
            self.rpc("eth_call", call, hex(max(block - 1, 0)))
        except RpcCallError as exc:
            if exc.code == EXECUTION_REVERTED:
                failure = _revert_error(exc)
                return failure.reason, failure.data
        status = self.rpc("og_getTransactionStatus", receipt["transactionHash"])
        return status.get("reason"), b""


def _revert_error(exc: RpcCallError) -> TransactionFailed:
    """A revert answer (code 3) as TransactionFailed with the decoded reason and the data."""
    data = bytes.fromhex(exc.data[2:]) if isinstance(exc.data, str) and exc.data.startswith("0x") else b""
    reason = decode_revert_reason(data) if data else None
    if reason is None:
        reason = exc.message.removeprefix("execution reverted").lstrip(": ") or None
    return TransactionFailed(reason, data)
