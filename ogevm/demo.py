"""``ogevm demo``: SolidML contracts running ONNX models on an in-process chain."""

from __future__ import annotations

import time

from rich.console import Console
from rich.table import Table

from ogevm.abi.types import InferenceMode, Number
from ogevm.fixtures import fixture_contract, fixture_model
from ogevm.tensors import number_to_decimal
from ogevm.vm.chain import DevChain


def run_demo(console: Console | None = None) -> list[dict]:
    """Deploy the example contracts, send inference transactions, print what happened."""
    console = console or Console()
    chain = DevChain()
    linear = chain.add_model(fixture_model("linear_regression"))
    mlp = chain.add_model(fixture_model("small_mlp"))
    log = chain.add_model(fixture_model("log_model"))
    console.print(f"[bold]ogevm demo[/bold]: in-process chain (chain id {chain.chain.chain_id}, "
                  f"{chain.base_vm_class.fork}), precompile INLINE")
    forecast = chain.deploy(fixture_contract("PriceForecast"), linear.cid, "x", "y")
    mixed = chain.deploy(fixture_contract("MixedModes"))
    dependent = chain.deploy(fixture_contract("DependentInference"))
    features = [(15, 1), (-2, 0), (325, 2), (1, 0)]  # 1.5, -2, 3.25, 1
    eight = [(v, 1) for v in range(1, 9)]

    rows = []

    def record(label, result, mode, show):
        rows.append({"tx": label, "status": "ok" if result.success else f"reverted: {result.revert_reason}",
                     "mode": mode, "gas": result.gas_used, "block": result.block_number,
                     "output": show() if result.success else "-"})

    start = time.perf_counter()
    r = forecast.transact("forecast", features)
    record("PriceForecast.forecast", r, "VANILLA",
           lambda: _decimal(forecast.call("latestPrediction")))
    r = mixed.transact("compareWithModes", linear.cid, linear.cid, "x", "y", features,
                       InferenceMode.VANILLA, InferenceMode.TEE)
    record("MixedModes.compareWithModes", r, "VANILLA+TEE",
           lambda: f"{_decimal(mixed.call('lastA'))} / {_decimal(mixed.call('lastB'))}")
    r = dependent.transact("chain", linear.cid, log.cid, "x", "y", features)
    record("DependentInference.chain", r, "VANILLA x2",
           lambda: f"log(linear(x)) = {_decimal(dependent.call('lastResult'))}")
    r = forecast.transact("forecast", eight)
    record("PriceForecast.forecast (8 features)", r, "VANILLA", lambda: "")
    elapsed = time.perf_counter() - start

    table = Table(title="Inference transactions")
    for column in ("tx", "mode", "status", "gas", "block", "output"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[c]) for c in ("tx", "mode", "status", "gas", "block", "output")))
    console.print(table)
    console.print(f"Models: linear_regression {linear.cid}, small_mlp {mlp.cid}, log_model {log.cid}")
    console.print(f"{len(rows)} transactions in {elapsed * 1000:.0f} ms; the last one reverts on purpose: "
                  "the model takes 4 features, and the reason comes back to the caller.")
    return rows


def _decimal(getter_output: tuple) -> str:
    """A ``Number`` public getter returns ``(value, decimals)``."""
    return str(number_to_decimal(Number(*getter_output)))
