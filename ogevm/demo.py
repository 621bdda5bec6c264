"""``ogevm demo``: a burst of SolidML inference transactions through PIPE.

On an in-process chain: deploy the example contracts, submit transactions to the
pool, let PIPE simulate them, run their inferences in parallel, replay them into a
block, and have a second node with no models validate that block.
"""

from __future__ import annotations

import time

from eth.db.atomic import AtomicDB
from rich.console import Console
from rich.table import Table

from ogevm.abi.codec import decode_revert_reason
from ogevm.abi.types import InferenceMode
from ogevm.fixtures import fixture_contract, fixture_model
from ogevm.pipe.executor import InferenceExecutor
from ogevm.pipe.pipeline import Pipeline
from ogevm.pipe.validator import BlockValidator
from ogevm.precompile.modes import ReplayProvider
from ogevm.verify.tee import SimulatedEnclave
from ogevm.vm.chain import DevChain, chain_class, genesis_params, genesis_state

def run_demo(console: Console | None = None, burst: int = 12) -> dict:
    """Run the demo and print what happened; return the per-tx rows and timings."""
    console = console or Console()
    chain = DevChain()
    linear = chain.add_model(fixture_model("linear_regression"))
    heavy = chain.add_model(fixture_model("heavy"))
    log = chain.add_model(fixture_model("log_model"))
    console.print(f"[bold]ogevm demo[/bold]: in-process chain {chain.chain.chain_id} "
                  f"({chain.base_vm_class.fork}), inference precompile at 0x…f4")
    # Deploys are plain transactions: mine them directly, before replicating the chain.
    forecast_heavy = chain.deploy(fixture_contract("PriceForecast"), heavy.cid, "x", "y")
    forecast_linear = chain.deploy(fixture_contract("PriceForecast"), linear.cid, "x", "y")
    mixed = chain.deploy(fixture_contract("MixedModes"))
    dependent = chain.deploy(fixture_contract("DependentInference"))
    caller = chain.deploy(fixture_contract("InferenceCaller"))

    pipeline = Pipeline(chain, executor=InferenceExecutor(chain.runtime, enclave=SimulatedEnclave()))
    pipeline.register_enclave()
    console.print(f"registered a [yellow]SIMULATED[/yellow] TEE enclave 0x{pipeline.executor.enclave.address.hex()} "
                  "(no enclave hardware here: its attestation is signed by the development vendor root)")
    plan = _burst(chain, burst, forecast_heavy, forecast_linear, mixed, dependent, caller, linear, log)
    nonces = {}
    submitted = []
    for label, mode, sender, contract, data in plan:
        account = chain.accounts[sender]
        nonce = nonces.setdefault(sender, chain.nonce(account.address))
        nonces[sender] += 1
        tx = chain.sign(sender, contract.address, data, nonce=nonce)
        submitted.append((label, mode, pipeline.submit(tx)))
    console.print(f"submitted {len(submitted)} transactions to the PIPE pool")

    start = time.perf_counter()
    executed = pipeline.prepare()
    prepare_time = time.perf_counter() - start
    console.print(f"simulated in CAPTURE mode and ran {executed} inference requests in parallel, "
                  f"batched, signed by node 0x{pipeline.executor.node.hex()} "
                  f"({prepare_time * 1000:.0f} ms)")
    start = time.perf_counter()
    built = pipeline.build_block()
    build_time = time.perf_counter() - start
    console.print(f"built block {built.block.number} by replaying {len(built.included)} txs with "
                  f"precomputed results ({build_time * 1000:.0f} ms, no model run); "
                  f"{len(built.records)} inference records committed in extra_data")

    replica = _model_free_replica(chain)
    validator = BlockValidator(replica, chain.base_vm_class, dict(chain.models))
    for number in range(1, built.block.number):
        validator.import_block(chain.chain.get_canonical_block_by_number(number), [])
    start = time.perf_counter()
    validator.import_block(built.block, built.records)
    validate_time = time.perf_counter() - start
    same = replica.get_canonical_head().state_root == chain.head.state_root
    console.print(f"a second node with no models validated block {built.block.number}: "
                  f"signatures, bundle root, replay -> same state root: {same} "
                  f"({validate_time * 1000:.0f} ms)")

    rows = _rows(pipeline, built, submitted)
    table = Table(title=f"Block {built.block.number}: PIPE transactions")
    for column in ("tx", "mode", "status", "requests", "gas", "output / reason"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[c]) for c in ("tx", "mode", "status", "requests", "gas", "output")))
    console.print(table)
    console.print("Next: docs/SPEC.md (precompile and PIPE rules), solidity/ (SolidML), "
                  "benchmarks/ (what PIPE buys), fixtures/vectors/ (conformance vectors).")
    return {"rows": rows, "prepare_s": prepare_time, "build_s": build_time, "validate_s": validate_time,
            "same_state_root": same}


def _burst(chain, burst, forecast_heavy, forecast_linear, mixed, dependent, caller, linear, log):
    from ogevm.abi.types import ModelInferenceRequest, ModelInput, Number, NumberTensor

    features64 = lambda i: [((i * 7 + k) % 19 - 9, 1) for k in range(64)]  # noqa: E731
    four = [(15, 1), (-2, 0), (325, 2), (1, 0)]
    plan = []
    for i in range(burst):
        plan.append((f"PriceForecast(heavy).forecast #{i}", "VANILLA", i % 6,
                     forecast_heavy, forecast_heavy.interface.function("forecast").encode(features64(i))))
    plan.append(("PriceForecast(linear).forecast", "VANILLA", 6, forecast_linear,
                 forecast_linear.interface.function("forecast").encode(four)))
    plan.append(("MixedModes.compareWithModes", "VANILLA+TEE(sim)", 7, mixed,
                 mixed.interface.function("compareWithModes").encode(
                     linear.cid, linear.cid, "x", "y", four, InferenceMode.VANILLA, InferenceMode.TEE)))
    plan.append(("DependentInference.chain", "VANILLA x2", 8, dependent,
                 dependent.interface.function("chain").encode(linear.cid, log.cid, "x", "y", four)))
    bad = ModelInferenceRequest(InferenceMode.VANILLA, log.cid,
                                ModelInput((NumberTensor("x", (Number(-1, 0),), (1, 1)),), ()))
    plan.append(("InferenceCaller.infer(log(-1))", "VANILLA", 9, caller,
                 caller.interface.function("infer").encode(bad)))
    return plan


def _model_free_replica(chain: DevChain):
    """A second node: same genesis, a catalogue of model descriptions, no model bytes."""
    vm_class = chain.base_vm_class.with_provider(ReplayProvider(dict(chain.models), {}))
    return chain_class(vm_class).from_genesis(AtomicDB(), genesis_params(), genesis_state())


def _rows(pipeline, built, submitted) -> list[dict]:
    executed, previous = {}, 0
    for tx, receipt, computation in zip(built.block.transactions, built.receipts, built.computations):
        executed[tx.hash] = (receipt.gas_used - previous, computation)
        previous = receipt.gas_used
    rows = []
    for label, mode, tx_hash in submitted:
        status = pipeline.pool.status(tx_hash)
        gas, output = "-", status.reason or ""
        if tx_hash in executed:
            gas, computation = executed[tx_hash]
            if computation.is_error:
                output = f"reverted: {decode_revert_reason(computation.output)}"
            else:
                output = ", ".join(_outputs(built, tx_hash)) or "ok"
        rows.append({"tx": label, "mode": mode, "status": status.state.value,
                     "requests": len(status.requests), "gas": gas, "output": output})
    return rows


def _outputs(built, tx_hash) -> list[str]:
    from ogevm.tensors import number_to_decimal

    values = []
    for record in built.records:
        if record.request_id.tx_hash == tx_hash:
            if record.result.error:
                values.append(f"error: {record.result.error}")
            else:
                tensor = record.result.output.numbers[0]
                values.append(f"{tensor.name}={number_to_decimal(tensor.values[0])}")
    return values
