"""LLM point: a burst of LLM transactions through a DevNode (PIPE) vs INLINE one by one.

The transactions go straight to ``0x…F4``: completions (``max_tokens`` 128, sampled at
temperature 70, so their length varies with the seed each transaction hash gives) and,
one in four, a chat offering two tools with ``tool_choice = "required"`` (a forced tool
call, ``max_tokens`` 96). Senders are round-robin over the ten development accounts; every
transaction's gas limit is its call's gas plus intrinsic gas and a little headroom.

Two language models, the same burst on each:

* ``tiny_chat``, the fixture model: about 0.15 ms per token, far cheaper than any real
  LLM, so the EVM dominates;
* ``tiny_chat_slow``, built here from the fixture's bytes (:func:`slow_variant`): the same
  logits, bit for bit, plus a chain of ``SLOW_ROUNDS`` matrix-vector products of width
  ``SLOW_WIDTH`` fed by the context and scaled by 0 before it is added to the logits,
  about 2.5 ms per token on this machine (a decoding step of a small real LLM is a chain of
  matrix-vector products too). Its gas per token is the model store's static cost.
  The node's store learns it with ``ModelStore.add_llm``; the simulation workers learn it
  from the store.

For each model: ``M``, the raw model time per call (``LLMRuntime.run_*`` on the very
request each transaction makes, same seed, run just before INLINE mines it, so both see
the same load) and its tokens per second; INLINE one by one (each transaction mined alone
on a twin node's chain, the model running inside block building); PIPE (a real
``DevNode``, automine, ``workers`` inference threads: the whole burst sent, then polled
until every transaction is included). Every transaction must succeed in both modes, with
the same hashes.

The bound of PIPE / INLINE one by one is the number of inference threads that run at once,
``min(workers, cores)`` (2 here), reached only when the model time dwarfs the EVM's and
the process has the cores to itself. On a shared machine it may not: each mode reports the
cores this process actually ran on (its CPU time over the wall time) and its CPU time per
transaction; before each PIPE run, :func:`available_cores` measures how many cores
``workers`` threads of GIL-free work get; ``cpu_ceiling`` is what PIPE's CPU per transaction allows
over INLINE's with ``bound`` cores to itself (the simulation worker process not counted).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import pstats
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from benchmarks.common import (
    SENDERS,
    ObservedNode,
    percentile,
    ratio,
    row,
    summarize_profile,
    target,
    wait_settled,
)
from ogevm.abi.llm import (
    LLMChatRequest,
    LLMCompletionRequest,
    LLMInferenceMode,
    encode_llm_chat,
    encode_llm_completion,
)
from ogevm.constants import (
    GAS_INFERENCE_BASE,
    GAS_INFERENCE_PER_WORD,
    INFERENCE_PRECOMPILE_ADDRESS,
)
from ogevm.llm import DEFAULT_MODEL
from ogevm.llm.constants import GAS_LLM_PER_WORD
from ogevm.llm.types import ChatMessage, ToolDefinition
from ogevm.node.node import DevNode, NodeConfig
from ogevm.precompile.llm import prepare
from ogevm.records import RequestId
from ogevm.resources import MODELS, resource
from ogevm.vm.chain import DevChain

TITLE = "LLM point: LLM transactions through a DevNode (PIPE) vs INLINE one by one"
SLOW_MODEL = "tiny_chat_slow"
SIZES = {
    "smoke": {"models": [DEFAULT_MODEL, SLOW_MODEL], "n": 4, "repeats": 1, "profile_n": 2},
    "quick": {"models": [DEFAULT_MODEL, SLOW_MODEL], "n": 32, "repeats": 1, "profile_n": 16},
    "full": {"models": [DEFAULT_MODEL, SLOW_MODEL], "n": 128, "repeats": 3, "profile_n": 32},
}
#: The burn chain of :func:`slow_variant`: a 512 x 512 float32 weight (1 MB, one core's L2)
#: applied 64 times per token.
SLOW_WIDTH = 512
SLOW_ROUNDS = 64
#: PIPE / INLINE one by one the point must reach, per model: on the slow model, three
#: quarters of the two inference threads' 2x; on the fixture model only "keeps up".
VS_INLINE_MIN = {DEFAULT_MODEL: 1.0, SLOW_MODEL: 1.5}

COMPLETION_TOKENS = 128
CHAT_TOKENS = 96
TEMPERATURE = 70
CHAT_EVERY = 4
PROMPTS = ("The price of ", "A smart contract ", "The weather in ", "Gas is ", "The quick brown fox ",
           "Validators ")
QUESTIONS = ("What is the weather in Paris?", "How much is ETH worth?", "Is it raining in Tokyo?")
TOOLS = (
    ToolDefinition("Get the current weather of a city", "get_weather",
                   '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}'),
    ToolDefinition("Get the latest price of an asset", "get_price",
                   '{"type": "object", "properties": {"symbol": {"type": "string"}}, "required": ["symbol"]}'),
)
#: How long :func:`available_cores` probes before each PIPE run.
PROBE_SECONDS = 0.3
#: Gas above a transaction's computed cost (intrinsic gas counted at 16 per calldata byte).
GAS_HEADROOM = 20_000
INTRINSIC_GAS = 21_000


# --- the models ---------------------------------------------------------------------------------
def fixture_bytes() -> bytes:
    """The fixture language model's file."""
    return resource(MODELS, f"llm/{DEFAULT_MODEL}.onnx").read_bytes()


def slow_variant(data: bytes) -> bytes:
    """A language model file with the logits of ``data`` and about 2.5 ms more work per token.

    The context (cast to float) feeds ``h = tanh(h @ W)`` ``SLOW_ROUNDS`` times; the sum of
    ``h`` times 0 is added to the logits. ``tanh`` keeps ``h`` finite, so the addend is a
    zero and the logits keep every bit; onnxruntime cannot fold the chain away, as it
    depends on the input. The weights come from a fixed seed: the same bytes every time.
    """
    model = onnx.load_model_from_string(data)
    graph = model.graph
    for node in graph.node:
        node.output[:] = ["lm_logits" if name == "logits" else name for name in node.output]
    window = graph.input[0].type.tensor_type.shape.dim[1].dim_value
    rng = np.random.default_rng(4004)
    graph.initializer.extend([
        numpy_helper.from_array(rng.normal(0.0, 1 / 16, (window, SLOW_WIDTH)).astype(np.float32), "burn_in"),
        numpy_helper.from_array((rng.normal(0.0, 1.0, (SLOW_WIDTH, SLOW_WIDTH)) / np.sqrt(SLOW_WIDTH))
                                .astype(np.float32), "burn_w"),
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "burn_zero"),
    ])
    nodes = [helper.make_node("Cast", ["context"], ["burn_x"], to=TensorProto.FLOAT),
             helper.make_node("MatMul", ["burn_x", "burn_in"], ["burn_in_h"]),
             helper.make_node("Tanh", ["burn_in_h"], ["burn_h0"])]
    for k in range(SLOW_ROUNDS):
        nodes += [helper.make_node("MatMul", [f"burn_h{k}", "burn_w"], [f"burn_p{k}"]),
                  helper.make_node("Tanh", [f"burn_p{k}"], [f"burn_h{k + 1}"])]
    nodes += [helper.make_node("ReduceSum", [f"burn_h{SLOW_ROUNDS}"], ["burn_sum"], keepdims=1),
              helper.make_node("Mul", ["burn_sum", "burn_zero"], ["burn_nothing"]),
              helper.make_node("Add", ["lm_logits", "burn_nothing"], ["logits"])]
    graph.node.extend(nodes)
    for entry in model.metadata_props:
        if entry.key == "ogevm.llm.name":
            entry.value = SLOW_MODEL
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


#: The models of the point, by name: a function giving each one's file.
MODEL_FILES = {DEFAULT_MODEL: fixture_bytes, SLOW_MODEL: lambda: slow_variant(fixture_bytes())}


# --- the burst -----------------------------------------------------------------------------------
def llm_calls(model: str, n: int) -> list[LLMCompletionRequest | LLMChatRequest]:
    """``n`` LLM calls of ``model``: completions, and every ``CHAT_EVERY``-th a forced tool call."""
    calls = []
    for k in range(n):
        if k % CHAT_EVERY == CHAT_EVERY - 1:
            question = QUESTIONS[(k // CHAT_EVERY) % len(QUESTIONS)]
            calls.append(LLMChatRequest(LLMInferenceMode.VANILLA, model, (ChatMessage("user", question),), TOOLS,
                                        "required", CHAT_TOKENS, (), 0))
        else:
            calls.append(LLMCompletionRequest(LLMInferenceMode.VANILLA, model, PROMPTS[k % len(PROMPTS)],
                                              COMPLETION_TOKENS, (), TEMPERATURE))
    return calls


def calldata(call: LLMCompletionRequest | LLMChatRequest) -> bytes:
    return encode_llm_completion(call) if isinstance(call, LLMCompletionRequest) else encode_llm_chat(call)


def transaction_gas(chain: DevChain, call, data: bytes) -> int:
    """Gas limit of a transaction making ``call`` with ``data``: what the precompile charges
    (priced as it prices it, before any model runs), intrinsic gas and headroom (which
    would cover a TEE surcharge too; the burst's calls are VANILLA)."""
    llm = prepare(chain.models.llms, call, RequestId(bytes(32), 0)).gas
    precompile = GAS_INFERENCE_BASE + (GAS_INFERENCE_PER_WORD + GAS_LLM_PER_WORD) * ((len(data) + 31) // 32)
    return INTRINSIC_GAS + 16 * len(data) + precompile + llm + GAS_HEADROOM


def node_burst(node: DevNode, model_file: bytes, n: int) -> tuple[list, list]:
    """Add the model to the node's store, warm it, and sign the burst: ``(txs, calls)``."""
    chain = node.chain
    with node.lock:
        model = chain.models.add_llm(model_file)
        chain.models.llms.complete(model.name, PROMPTS[0], 1)
        calls = llm_calls(model.name, n)
        datas = [calldata(call) for call in calls]
        gases = [transaction_gas(chain, call, data) for call, data in zip(calls, datas)]
        # Full blocks raise the base fee by 12.5% each: cover every block the burst can fill.
        blocks = math.ceil(sum(gases) / chain.head.gas_limit)
        max_fee = int(chain.head.base_fee_per_gas * 1.125 ** (blocks + 4)) + 1
        nonces = [chain.nonce(chain.accounts[s].address) for s in range(SENDERS)]
        txs = []
        for k, (data, gas) in enumerate(zip(datas, gases)):
            sender = k % SENDERS
            txs.append(chain.sign(sender, INFERENCE_PRECOMPILE_ADDRESS, data, gas=gas, nonce=nonces[sender],
                                  max_fee_per_gas=max_fee))
            nonces[sender] += 1
    return txs, calls


def available_cores(threads: int, seconds: float = PROBE_SECONDS) -> float:
    """The cores this process gets right now: CPU time over wall time of ``threads`` threads
    hashing with the GIL released. A control for PIPE: on a machine shared by sessions, a
    process may get fewer cores than it has threads, whatever those threads do."""
    block = bytes(1 << 20)
    deadline = time.perf_counter() + seconds

    def hash_until_deadline() -> None:
        while time.perf_counter() < deadline:
            hashlib.sha256(block).digest()

    spinners = [threading.Thread(target=hash_until_deadline) for _ in range(threads)]
    cpu, start = time.process_time(), time.perf_counter()
    for thread in spinners:
        thread.start()
    for thread in spinners:
        thread.join()
    return (time.process_time() - cpu) / (time.perf_counter() - start)


def pipe_run(model_file: bytes, n: int, workers: int, profile: bool = False) -> dict[str, Any]:
    """The burst through a PIPE node (automine, ``workers`` inference threads), sent at once
    and polled until every transaction settles; each must be included and succeed."""
    node = ObservedNode(NodeConfig(workers=workers), profile=profile)
    try:
        txs, _ = node_burst(node, model_file, n)
        first_block = node.chain.head.block_number + 1
        raws = [tx.encode() for tx in txs]
        probe = available_cores(workers)
        node.start()
        cpu, start = time.process_time(), time.perf_counter()
        hashes = [node.send_raw_transaction(raw) for raw in raws]
        for tx_hash, status in wait_settled(node, hashes, start).items():
            if status["state"] == "rejected":
                raise RuntimeError(f"PIPE rejected 0x{tx_hash.hex()}: {status['reason']}")
        # This process's threads (inference, producer, RPC): the simulation worker is apart.
        cpu, wall = time.process_time() - cpu, time.perf_counter() - start
        latencies = [node.finished_at[h] - start for h in hashes]
        with node.lock:
            chain = node.chain.chain
            blocks = [chain.get_canonical_block_by_number(number)
                      for number in range(first_block, node.chain.head.block_number + 1)]
            failed = sum(1 for block in blocks for receipt in block.get_receipts(chain.chaindb)
                         if receipt.state_root != b"\x01")
        if failed:
            raise RuntimeError(f"PIPE: {failed} of {n} txs reverted")
    finally:
        node.stop()
    span = max(latencies)
    out = {"n": n, "seconds": span, "throughput_tx_s": n / span, "latency_p50_s": percentile(latencies, 50),
           "latency_p99_s": percentile(latencies, 99), "blocks": len(blocks), "cores_used": cpu / wall,
           "cpu_ms_per_tx": cpu / n * 1e3, "cores_available": probe,
           "evm_passes_per_tx": node.pipeline.passes_per_included_tx(),
           "simulation_seconds": node.simulation["seconds"], "hashes": [h.hex() for h in hashes]}
    if profile:
        out["profile"] = summarize_profile(pstats.Stats(node.profiler), f"DevNode producer thread, LLM N={n}")
    return out


def inline_run(model_file: bytes, n: int) -> dict[str, Any]:
    """The burst INLINE on a twin node's chain, one block per transaction (each must
    succeed), each paired with the raw model time of its call (same request, same seed)
    run just before it, so both see the same load. Only the mining counts in INLINE's span."""
    node = DevNode(NodeConfig())  # a twin of the PIPE node's setup; its producer never starts
    try:
        txs, calls = node_burst(node, model_file, n)
        chain = node.chain
        llms = chain.models.llms
        mined, cpu, raw_s, tokens = [], 0.0, [], []
        for tx, call in zip(txs, calls):
            seconds, tokens_out = raw_call(llms, tx, call)
            raw_s.append(seconds)
            tokens.append(tokens_out)
            cpu_start, start = time.process_time(), time.perf_counter()
            _, (result,) = chain.mine([tx])
            mined.append(time.perf_counter() - start)
            cpu += time.process_time() - cpu_start
            if not result.success:
                raise RuntimeError(f"INLINE: 0x{tx.hash.hex()} reverted: {result.revert_reason}")
        gas_per_token = llms.model(calls[0].model_cid).cost_per_token
    finally:
        node.stop()
    done = list(itertools.accumulate(mined))  # the whole burst arrived at once
    return {"n": n, "seconds": done[-1], "throughput_tx_s": n / done[-1], "latency_p50_s": percentile(done, 50),
            "latency_p99_s": percentile(done, 99), "cores_used": cpu / done[-1], "cpu_ms_per_tx": cpu / n * 1e3,
            "gas_limit_per_tx": statistics.mean(tx.gas for tx in txs), "hashes": [tx.hash.hex() for tx in txs],
            "raw": {"model_s_per_call": statistics.mean(raw_s), "tokens_per_call": statistics.mean(tokens),
                    "tokens_per_s": sum(tokens) / sum(raw_s), "ms_per_token": 1e3 * sum(raw_s) / sum(tokens),
                    "gas_per_token": gas_per_token}}


def raw_call(llms, tx, call) -> tuple[float, int]:
    """Seconds and generated tokens of ``LLMRuntime.run_*`` on the request ``tx`` makes."""
    prepared = prepare(llms, call, RequestId(tx.hash, 0))
    run = llms.run_completion if isinstance(call, LLMCompletionRequest) else llms.run_chat
    start = time.perf_counter()
    reply = run(prepared)
    return time.perf_counter() - start, reply.tokens_out


def point(name: str, n: int, repeats: int, workers: int, reporter) -> dict[str, Any]:
    """PIPE and INLINE one by one on ``name``, ``repeats`` rounds taking turns going first
    (the raw model time measured with each INLINE run); every run and the medians."""
    model_file = MODEL_FILES[name]()
    # PIPE needs every core and INLINE one: other processes' load weighs on PIPE more.
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    runs: dict[str, list[dict[str, Any]]] = {"pipe": [], "inline_one_by_one": []}
    for r in range(repeats):
        for mode in (("pipe", "inline_one_by_one") if r % 2 == 0 else ("inline_one_by_one", "pipe")):
            reporter.note(f"{name} N={n}: {mode.replace('_', ' ')} ({r + 1}/{repeats})")
            if mode == "pipe":
                runs[mode].append(pipe_run(model_file, n, workers))
            else:
                runs[mode].append(inline_run(model_file, n))
            reporter.step(None, n)
    if {tuple(run["hashes"]) for mode in runs.values() for run in mode} != {tuple(runs["pipe"][0]["hashes"])}:
        raise RuntimeError("PIPE and INLINE did not send the same transactions")
    keys = ("throughput_tx_s", "latency_p50_s", "latency_p99_s", "seconds", "cores_used", "cpu_ms_per_tx")
    median = {mode: {key: statistics.median(run[key] for run in mode_runs) for key in keys}
              for mode, mode_runs in runs.items()}
    for key in ("evm_passes_per_tx", "blocks", "cores_available"):
        median["pipe"][key] = statistics.median(run[key] for run in runs["pipe"])
    inlines = runs["inline_one_by_one"]
    raw = {key: statistics.median(run["raw"][key] for run in inlines) for key in inlines[0]["raw"]}
    inline_s_per_tx = median["inline_one_by_one"]["seconds"] / n
    for mode_runs in runs.values():
        for run in mode_runs:
            del run["hashes"]
    return {"n": n, "runs": runs, "median": median, "raw": raw, "load_average_1min": load,
            "gas_limit_per_tx": runs["inline_one_by_one"][0]["gas_limit_per_tx"],
            "pipe_vs_inline_one_by_one": ratio(median["pipe"]["throughput_tx_s"],
                                               median["inline_one_by_one"]["throughput_tx_s"]),
            # What INLINE one by one spends per tx beside the model: EVM, sealing, persisting.
            "inline_other_ms_per_tx": (inline_s_per_tx - raw["model_s_per_call"]) * 1e3,
            "model_share_of_inline": raw["model_s_per_call"] / inline_s_per_tx}


def run(config: dict[str, Any], reporter) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    workers = config.get("workers") or cores
    bound = min(workers, cores)
    n, repeats = config["n"], config["repeats"]
    reporter.total(len(config["models"]) * n * repeats * 2)
    points = {name: point(name, n, repeats, workers, reporter) for name in config["models"]}
    for p in points.values():
        p["vs_bound"] = ratio(p["pipe_vs_inline_one_by_one"], bound)
        # With `bound` cores to itself, PIPE's CPU per tx allows at most this much over INLINE's.
        p["cpu_ceiling"] = bound * ratio(p["median"]["inline_one_by_one"]["cpu_ms_per_tx"],
                                         p["median"]["pipe"]["cpu_ms_per_tx"])
    targets, table = [], []
    for name, p in points.items():
        m, raw = p["median"], p["raw"]
        targets.append(target(
            f"vs_inline/{name}", f"PIPE >= {VS_INLINE_MIN[name]:g}x INLINE one by one on LLM transactions "
                                 f"({name}, N={n}, {workers} inference threads; bound {bound}x)",
            ">=", VS_INLINE_MIN[name], p["pipe_vs_inline_one_by_one"],
            f"{m['pipe']['throughput_tx_s']:.2f} vs {m['inline_one_by_one']['throughput_tx_s']:.2f} tx/s, "
            f"{p['vs_bound'] * 100:.0f}% of the {bound}x bound; model {raw['model_s_per_call'] * 1e3:.0f} ms "
            f"per call, {p['model_share_of_inline'] * 100:.0f}% of INLINE's time per tx"))
        table.append(row(f"{name}: PIPE / INLINE one by one", p["pipe_vs_inline_one_by_one"], "x",
                         f"PIPE {m['pipe']['throughput_tx_s']:.2f} tx/s ({m['pipe']['blocks']:.0f} blocks, "
                         f"{m['pipe']['evm_passes_per_tx']:.2f} EVM passes per tx, p50 latency "
                         f"{m['pipe']['latency_p50_s']:.2f} s), INLINE {m['inline_one_by_one']['throughput_tx_s']:.2f} "
                         f"tx/s (p50 {m['inline_one_by_one']['latency_p50_s']:.2f} s); bound {bound}x; this "
                         f"process ran on {m['pipe']['cores_used']:.2f} cores in PIPE (a probe of {workers} "
                         f"GIL-free threads got {m['pipe']['cores_available']:.2f} just before), "
                         f"{m['inline_one_by_one']['cores_used']:.2f} in INLINE"))
        cpu_pipe, cpu_inline = m["pipe"]["cpu_ms_per_tx"], m["inline_one_by_one"]["cpu_ms_per_tx"]
        table.append(row(f"{name}: CPU per tx, PIPE / INLINE", ratio(cpu_pipe, cpu_inline), "x",
                         f"PIPE {cpu_pipe:.0f} ms, INLINE {cpu_inline:.0f} ms of this process's CPU per tx "
                         f"(the simulation worker not counted): with {bound} cores "
                         f"to itself PIPE could reach at most {p['cpu_ceiling']:.2f}x INLINE"))
        table.append(row(f"{name}: raw model time per call", raw["model_s_per_call"] * 1e3, "ms",
                         f"{raw['tokens_per_call']:.0f} tokens per call, {raw['ms_per_token']:.2f} ms per token; "
                         f"INLINE spends {p['inline_other_ms_per_tx']:.1f} ms per tx beside the model"))
        table.append(row(f"{name}: tokens per second (one thread)", raw["tokens_per_s"], "tokens/s",
                         f"{raw['gas_per_token']:,} gas per token; gas limit {p['gas_limit_per_tx']:,.0f} per tx"))
    result: dict[str, Any] = {"results": {"cores": cores, "workers": workers, "bound": bound, "senders": SENDERS,
                                          "slow_variant": {"width": SLOW_WIDTH, "rounds": SLOW_ROUNDS},
                                          "points": points},
                              "targets": targets, "table": table}
    missed = [t["key"].split("/")[1] for t in targets if t["met"] is False]
    if missed:
        reporter.note("profiling the producer thread")
        result["profile"] = {name: pipe_run(MODEL_FILES[name](), min(config["profile_n"], n), workers,
                                            profile=True)["profile"] for name in dict.fromkeys(missed)}
    reporter.step("done", max(0.0, reporter.steps - reporter.done))
    return result


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda value, _: f"{value:g}")  # 20, not 2 x 10^1, on log axes
    points = result["results"]["points"]
    names = list(points)
    x = np.arange(len(names))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for offset, mode, label, color in ((-0.2, "pipe", "PIPE dev node", "tab:green"),
                                       (0.2, "inline_one_by_one", "INLINE, one tx per block", "tab:red")):
        left.bar(x + offset, [points[n]["median"][mode]["throughput_tx_s"] for n in names], 0.4,
                 label=label, color=color)
    left.set_xticks(x, [f"{n}\nN={points[n]['n']}, {points[n]['pipe_vs_inline_one_by_one']:.2f}x" for n in names])
    left.set_yscale("log")
    left.yaxis.set_major_formatter(plain)
    left.yaxis.set_minor_formatter(plain)
    left.set_ylabel("LLM transactions per second")
    left.set_title(f"Throughput (bound PIPE/INLINE {result['results']['bound']}x)")
    left.legend(fontsize=8)
    right.bar(x, [points[n]["raw"]["tokens_per_s"] for n in names], 0.5, color="tab:blue")
    right.set_yscale("log")
    right.yaxis.set_major_formatter(plain)
    right.yaxis.set_minor_formatter(plain)
    right.set_xticks(x, [f"{n}\n{points[n]['raw']['ms_per_token']:.2f} ms/token" for n in names])
    right.set_ylabel("tokens per second (raw, one thread)")
    right.set_title("Decoding speed of each model")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
