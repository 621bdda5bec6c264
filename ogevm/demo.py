"""``ogevm demo``: a burst of SolidML inference transactions through PIPE on a dev node.

Starts a node in-process (in memory), adds the fixture models, deploys the example
contracts, sends a burst of transactions to the node's PIPE pool, waits for them with a
progress bar while the node simulates, runs inferences in parallel and replays ready
transactions into blocks, then has a second node with no models validate every block.
"""

from __future__ import annotations

import asyncio
import time

from eth.db.atomic import AtomicDB
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ogevm.abi.llm import LLMChatRequest, LLMInferenceMode, encode_llm_chat
from ogevm.abi.types import InferenceMode, ModelInferenceRequest, ModelInput, Number, NumberTensor
from ogevm.constants import INFERENCE_PRECOMPILE_ADDRESS
from ogevm.fixtures import fixture_contract, fixture_model
from ogevm.llm import DEFAULT_MODEL
from ogevm.llm.types import ChatMessage, ToolDefinition
from ogevm.node.node import DevNode, NodeConfig
from ogevm.node.rpc import RpcMethods
from ogevm.node.run import serve
from ogevm.node.server import RpcServer
from ogevm.pipe.validator import BlockValidator
from ogevm.precompile.modes import ReplayProvider
from ogevm.tensors import number_to_decimal
from ogevm.vm.chain import DeployedContract, chain_class
from ogevm.vm.genesis import genesis_params, genesis_state
from ogevm.vm.scheduler import TASK_SCHEDULER_ADDRESS, TaskStatus, scheduler_interface

FOUR = [(15, 1), (-2, 0), (325, 2), (1, 0)]  # 1.5, -2, 3.25, 1
#: A chat with the fixture language model that must answer with a call of its one tool.
WEATHER_CHAT = LLMChatRequest(
    LLMInferenceMode.TEE, DEFAULT_MODEL, (ChatMessage("user", "What is the weather in Paris?"),),
    (ToolDefinition("Get the weather of a city", "get_weather",
                    '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}'),),
    "required", 100, (), 0)
_TASK_FIELDS = ("target", "owner", "endTime", "frequency", "nextRun", "runs", "lastRunBlock", "lastStatus", "active",
                "lastReason")


def run_demo(console: Console | None = None, burst: int = 12, timeout: float = 300.0,
             serve_port: int | None = None) -> dict:
    """Run the demo and print what happened; return per-tx rows, per-block stats, validation.

    With ``serve_port`` the node then stays up on that port (JSON-RPC, WebSocket and the
    explorer page) until interrupted, for a look at what the burst did."""
    console = console or Console()
    node = DevNode(NodeConfig()).start()
    try:
        outcome = _run(node, console, burst, timeout)
        if serve_port is not None:
            server = RpcServer(RpcMethods(node), "127.0.0.1", serve_port)
            console.print(f"The demo's node stays up: open http://127.0.0.1:{serve_port}/ for the explorer "
                          "(Ctrl-C stops it)", highlight=False)
            asyncio.run(serve(server, console))
        return outcome
    finally:
        node.stop()


def _run(node: DevNode, console: Console, burst: int, timeout: float) -> dict:
    chain = node.chain
    console.print(f"[bold]ogevm demo[/bold]: dev node in process (chain {chain.chain.chain_id}, "
                  f"{chain.base_vm_class.fork}, automine), inference precompile at 0x…f4")
    console.print(f"TEE enclave 0x{node.identities[0].enclave.hex()} registered on chain: [yellow]SIMULATED[/yellow] "
                  "(no enclave hardware here; attested by the development vendor root)")
    with node.lock:  # deploy directly, between two rounds of the node's producer
        models = {name: chain.add_model(fixture_model(name)) for name in ("linear_regression", "heavy", "log_model")}
        contracts = {
            "heavy": chain.deploy(fixture_contract("PriceForecast"), models["heavy"].cid, "x", "y"),
            "linear": chain.deploy(fixture_contract("PriceForecast"), models["linear_regression"].cid, "x", "y"),
            "mixed": chain.deploy(fixture_contract("MixedModes")),
            "dependent": chain.deploy(fixture_contract("DependentInference")),
            "caller": chain.deploy(fixture_contract("InferenceCaller")),
            "forecaster": chain.deploy(fixture_contract("VolatilityForecaster"), TASK_SCHEDULER_ADDRESS,
                                       models["linear_regression"].cid, "x", "y", FOUR),
        }
        zkml = chain.circuits is not None
        if zkml:
            circuit = chain.enable_zkml(models["linear_regression"].cid)
        # last (the blocks mined here keep no bundle): a scheduled task, the forecaster run at
        # the top of every block for the next hour, its inference through PIPE
        scheduler = DeployedContract(chain, scheduler_interface(), TASK_SCHEDULER_ADDRESS)
        chain.send(0, TASK_SCHEDULER_ADDRESS, scheduler.interface.function("registerTask").encode(
            contracts["forecaster"].address, chain.head.timestamp + 3600, 1))
        (task_id,) = scheduler.call("taskCount")
    if zkml:
        console.print(f"linear_regression enabled for ZKML: ezkl circuit, logrows {circuit.logrows}, verifying key "
                      f"0x{circuit.vk_hash.hex()[:16]}… registered on chain ([yellow]{circuit.srs}[/yellow])")
    else:
        console.print("ZKML skipped: ezkl is not installed (pip install 'ogevm[zkml]')")
    first_block = chain.head.block_number + 1
    plan = _burst(burst, contracts, models, zkml)
    submitted, nonces = [], {}
    start = time.perf_counter()
    with node.lock:  # the whole burst reaches the pool before the producer looks at it
        for label, mode, sender, to, data in plan:
            account = chain.accounts[sender]
            nonce = nonces.setdefault(sender, chain.nonce(account.address))
            nonces[sender] += 1
            tx = chain.sign(sender, to, data, nonce=nonce, max_priority_fee_per_gas=10**9)
            submitted.append((label, mode, node.send_raw_transaction(tx.encode())))
    console.print(f"sent {len(submitted)} transactions to the node's PIPE pool")
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("simulate -> infer in parallel -> replay into blocks", total=len(submitted))
        while time.perf_counter() - start < timeout:
            done = sum(node.status(h)["state"] in ("included", "rejected") for _, _, h in submitted)
            progress.update(task, completed=done)
            if done == len(submitted):
                break
            time.sleep(0.05)
    elapsed = time.perf_counter() - start

    rows = _tx_rows(node, submitted)
    blocks = [b for b in node.block_log if b.number >= first_block]
    _print_tables(console, rows, blocks)
    task_runs = _print_task(console, node, scheduler, task_id, contracts["forecaster"])
    valid, head_matches = _validate_on_model_free_node(node)
    console.print(f"{len(submitted)} transactions settled {elapsed:.2f} s after the first was sent. A second node with no models "
                  f"validated all {valid} blocks (signatures, attestations, ZKML proofs, bundle roots, replay): "
                  f"same state root: {head_matches}")
    console.print("Next: `ogevm node` serves this over JSON-RPC for web3.py/ethers.js (docs/RPC.md); "
                  "docs/SPEC.md has the rules; solidity/ the SolidML sources; benchmarks/ what PIPE buys.")
    return {"rows": rows, "blocks": blocks, "elapsed_s": elapsed, "validated_blocks": valid,
            "same_state_root": head_matches, "task_runs": task_runs}


def _print_task(console: Console, node: DevNode, scheduler: DeployedContract, task_id: int,
                forecaster: DeployedContract) -> int:
    """Print what the scheduled task did; return how many predictions it stored."""
    with node.lock:
        task = dict(zip(_TASK_FIELDS, scheduler.call("getTask", task_id)[0]))
        (value, decimals), (runs,) = forecaster.call("latestPrediction"), forecaster.call("runs")
    status = TaskStatus(task["lastStatus"])
    if status is TaskStatus.DEFERRED:  # its result was not in yet: the block went on without it
        last = "last call deferred to the next block (its inference result was not in yet; no block waits for one)"
    else:
        last = f"last {status.name.lower()}{': ' + task['lastReason'] if task['lastReason'] else ''}"
    console.print(f"Scheduled task {task_id} (VolatilityForecaster.run, a system call at the top of each block, its "
                  f"inference through PIPE): ran in {task['runs']} blocks, {runs} predictions stored, {last}, "
                  f"latest prediction {number_to_decimal(Number(value, decimals))}", highlight=False)
    return runs


def _burst(burst: int, contracts: dict, models: dict, zkml: bool) -> list[tuple]:
    heavy, linear, mixed = contracts["heavy"], contracts["linear"], contracts["mixed"]
    plan = [(f"PriceForecast(heavy).forecast #{i}", "VANILLA", i % 6, heavy.address,
             heavy.interface.function("forecast").encode([((i * 7 + k) % 19 - 9, 1) for k in range(64)]))
            for i in range(burst)]
    plan.append(("PriceForecast(linear).forecast", "VANILLA", 6, linear.address,
                 linear.interface.function("forecast").encode(FOUR)))
    first_mode = InferenceMode.ZKML if zkml else InferenceMode.VANILLA
    plan.append(("MixedModes.compareWithModes", f"{first_mode.name} + TEE(sim)", 7, mixed.address,
                 mixed.interface.function("compareWithModes").encode(
                     models["linear_regression"].cid, models["linear_regression"].cid, "x", "y", FOUR,
                     first_mode, InferenceMode.TEE)))
    dependent = contracts["dependent"]
    plan.append(("DependentInference.chain", "VANILLA, 2 rounds", 8, dependent.address,
                 dependent.interface.function("chain").encode(
                     models["linear_regression"].cid, models["log_model"].cid, "x", "y", FOUR)))
    plan.append(("runLLMChat(tiny_chat, tool call forced)", "TEE(sim)", 9, INFERENCE_PRECOMPILE_ADDRESS,
                 encode_llm_chat(WEATHER_CHAT)))
    bad = ModelInferenceRequest(InferenceMode.VANILLA, models["log_model"].cid,
                                ModelInput((NumberTensor("x", (Number(-1, 0),), (1, 1)),), ()))
    caller = contracts["caller"]
    plan.append(("InferenceCaller.infer(log(-1))", "VANILLA", 9, caller.address,
                 caller.interface.function("infer").encode(bad)))
    return plan


def _tx_rows(node: DevNode, submitted: list) -> list[dict]:
    chain = node.chain.chain
    rows = []
    for label, mode, tx_hash in submitted:
        status = node.status(tx_hash)
        output = status["reason"] or ""
        if status["state"] == "included":
            header = chain.get_canonical_block_header_by_number(status["block"])
            records = [r for r in node.storage.bundle(header) if r.request_id.tx_hash == tx_hash]
            receipt = chain.get_transaction_receipt(tx_hash)
            if receipt.state_root != b"\x01":
                errors = [r.result.error for r in records if r.result.error]
                output = f"reverted: {errors[0] if errors else 'see receipt'}"
            else:
                output = ", ".join(_first_value(r) for r in records) or "ok"
        rows.append({"tx": label, "mode": mode, "status": status["state"], "block": status["block"],
                     "output": output})
    return rows


def _first_value(record) -> str:
    if record.result.error:
        return f"error: {record.result.error}"
    if not record.result.output.numbers:  # the demo's only such output: an LLM reply
        return _reply(record.result.output)
    tensor = record.result.output.numbers[0]
    proven = " (proven)" if record.proof else ""
    return f"{tensor.name}={number_to_decimal(tensor.values[0])}{proven}"


def _reply(output) -> str:
    """An LLM reply as its record carries it (:mod:`ogevm.precompile.llm`): the tool calls it
    asks for, else its text."""
    strings = {tensor.name: tensor.values for tensor in output.strings}
    if "answer" in strings:
        return repr(strings["answer"][0])
    calls = strings["tool_calls"]
    if calls:
        return ", ".join(f"{name}({arguments})" for name, arguments in zip(calls[1::3], calls[2::3]))
    return repr(strings["message"][1])


def _print_tables(console: Console, rows: list[dict], blocks: list) -> None:
    table = Table(title="Transactions")
    for column in ("tx", "mode", "status", "block", "output"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[c]) for c in ("tx", "mode", "status", "block", "output")))
    console.print(table)
    stats = Table(title="Blocks built by replay (no model ran while building)")
    for column in ("block", "txs", "inference records", "build time", "model time kept off the block path"):
        stats.add_column(column)
    for block in blocks:
        stats.add_row(str(block.number), str(block.transactions), str(block.records),
                      f"{block.build_seconds * 1000:.0f} ms", f"{block.inference_seconds_saved * 1000:.1f} ms")
    console.print(stats)


def _validate_on_model_free_node(node: DevNode) -> tuple[int, bool]:
    """Import every block of ``node`` on a fresh chain that has the catalogue and the
    verifying keys, but no models."""
    chain = node.chain
    vm_class = chain.base_vm_class.with_provider(ReplayProvider(dict(chain.models), {}))
    replica = chain_class(vm_class).from_genesis(AtomicDB(), genesis_params(), genesis_state())
    proofs = None
    if chain.circuits is not None:
        from ogevm.verify.zkml import CircuitProofChecker

        proofs = CircuitProofChecker(chain.circuits)
    validator = BlockValidator(replica, chain.base_vm_class, dict(chain.models), proofs)
    head = chain.head.block_number
    for number in range(1, head + 1):
        block = chain.chain.get_canonical_block_by_number(number)
        validator.import_block(block, node.storage.bundle(block.header))
    return head, replica.get_canonical_head().state_root == chain.head.state_root


__all__ = ["run_demo"]
