"""11. eth_sendRawTransaction under a burst: what a client waits for while the node works.

A dev node in process (in memory, automine, its default simulation workers and executor)
serves JSON-RPC over HTTP on loopback. A client process (``python -c``, so that its own
work never competes with the node for the GIL) sends N signed inference transactions from
several threads at once, each thread its own sender, one ``eth_sendRawTransaction`` after
the other as fast as the node answers, timing every call. Meanwhile the node simulates,
infers and builds blocks. Reported: the send latency (p50, p99, max), how long until every
transaction is included, transactions per block and EVM passes per included transaction.

The workload is ``PriceForecast.forecast`` on ``small_mlp``: a small model, so
the node's own EVM work (simulation, replay) is what the sends compete with.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import MODELS, ThreadProfiles, forecast_chain, forecast_transactions, percentile, row, target
from ogevm.fixtures import fixture_model
from ogevm.node.node import DevNode, NodeConfig
from ogevm.node.rpc import RpcMethods
from ogevm.node.server import ThreadedServer

TITLE = "eth_sendRawTransaction latency during a burst (JSON-RPC over HTTP)"
SIZES = {
    "smoke": {"n": 12, "clients": 2},
    "quick": {"n": 200, "clients": 4},
    "full": {"n": 200, "clients": 8},
}
SEND_P99_MAX_MS = 20.0
TIMEOUT_SECONDS = 600.0

#: The client: sends each thread's raw transactions in order, prints every call's seconds.
_CLIENT = """
import json, sys, threading, time, urllib.request
url, batches = sys.argv[1], json.loads(sys.stdin.read())
times, errors, start = [], [], threading.Barrier(len(batches))
def send(raws):
    start.wait()
    for raw in raws:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": [raw]}).encode()
        request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        t = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as answer:
            reply = json.loads(answer.read())
        times.append(time.perf_counter() - t)
        if "error" in reply:
            errors.append(reply["error"]["message"])
threads = [threading.Thread(target=send, args=(raws,)) for raws in batches]
for thread in threads: thread.start()
for thread in threads: thread.join()
print(json.dumps({"times": times, "errors": errors}))
"""


def measure(n: int, clients: int, profile: bool = False) -> dict[str, Any]:
    model = MODELS["small_mlp"]
    node = DevNode(NodeConfig())
    profiles = ThreadProfiles() if profile else None
    methods = RpcMethods(node)
    if profiles is not None:
        methods.call = profiles.wrap(methods.call)
    try:
        chain = node.chain
        with node.lock:
            info = chain.add_model(fixture_model(model.fixture))
            _, forecast = forecast_chain(chain.models, info, chain.accounts, chain=chain)
            forecast.call("forecastView", [(k, 2) for k in range(model.width)])
            txs = forecast_transactions(chain, forecast, model, n, clients)
        first_block = chain.head.block_number + 1
        batches: list[list[str]] = [[] for _ in range(clients)]
        senders = sorted({tx.sender for tx in txs})
        for tx in txs:
            batches[senders.index(tx.sender)].append("0x" + tx.encode().hex())
        node.start()
        served = ThreadedServer(methods)
        try:
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", _CLIENT, served.url], input=json.dumps(batches),
                                  capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=True)
            sent = json.loads(done.stdout)
            if sent["errors"]:
                raise RuntimeError(f"{len(sent['errors'])} sends refused: {sent['errors'][0]}")
            while time.perf_counter() - start < TIMEOUT_SECONDS:
                states = [node.status(tx.hash)["state"] for tx in txs]
                if all(state in ("included", "rejected") for state in states):
                    break
                time.sleep(0.05)
            settled = time.perf_counter() - start
        finally:
            served.stop()
        if states.count("included") != n:
            raise RuntimeError(f"{n - states.count('included')} of {n} txs not included")
        blocks = [b for b in node.block_log if b.number >= first_block]
        passes = node.pipeline.passes_per_included_tx()
    finally:
        node.stop()
    times_ms = [t * 1e3 for t in sent["times"]]
    out = {"n": n, "clients": clients, "send_p50_ms": percentile(times_ms, 50),
           "send_p99_ms": percentile(times_ms, 99), "send_max_ms": max(times_ms), "send_times_ms": times_ms,
           "settled_s": settled, "blocks": len(blocks), "txs_per_block": n / len(blocks) if blocks else None,
           "evm_passes_per_tx": passes}
    if profiles is not None:
        out["profile"] = profiles.summary(f"the node's RPC threads during a burst of {n}")
    return out


def run(config: dict[str, Any], reporter) -> dict[str, Any]:
    reporter.total(2)
    r = measure(config["n"], config["clients"])
    reporter.step("burst")
    targets = [target("send_p99", f"eth_sendRawTransaction p99 <= {SEND_P99_MAX_MS:g} ms during a burst of "
                                  f"{r['n']} ({r['clients']} clients)", "<=", SEND_P99_MAX_MS, r["send_p99_ms"],
                      f"p50 {r['send_p50_ms']:.1f} ms, max {r['send_max_ms']:.1f} ms", unit="ms")]
    table = [row("all included after", r["settled_s"], "s", f"{r['blocks']} blocks"),
             row("txs per block", r["txs_per_block"], ""),
             row("EVM passes per included tx", r["evm_passes_per_tx"], "")]
    result: dict[str, Any] = {"results": r, "targets": targets, "table": table}
    if any(t["met"] is False for t in targets):
        reporter.note("profiling the RPC threads")
        result["profile"] = measure(config["n"], config["clients"], profile=True)["profile"]
    reporter.step("done", max(0.0, reporter.steps - reporter.done))
    return result


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    r = result["results"]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.hist(r["send_times_ms"], bins=np.geomspace(max(0.1, min(r["send_times_ms"])), max(r["send_times_ms"]), 40),
            color="tab:blue")
    ax.set_xscale("log")
    ax.axvline(SEND_P99_MAX_MS, color="tab:red", linestyle="--", label=f"target p99 {SEND_P99_MAX_MS:g} ms")
    ax.axvline(r["send_p99_ms"], color="black", label=f"p99 {r['send_p99_ms']:.1f} ms")
    ax.set_xlabel("eth_sendRawTransaction latency, ms")
    ax.set_ylabel("calls")
    ax.set_title(f"a burst of {r['n']} forecast txs from {r['clients']} clients")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
