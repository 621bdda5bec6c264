"""6. Validator: importing a PIPE block on a model-free node vs building it.

N ``PriceForecast.forecast`` transactions go through a ``Pipeline`` (``prepare``, then
``build_block`` block by block). Each block is built ``repeats`` times (the pipeline's
``build_block`` and ``BlockBuilder.build`` on twin chains with the same ready entries)
and imported ``repeats`` times with its bundle by a ``BlockValidator`` on replicas that
have no model (only the catalogue of model descriptions): bundle root, record order,
signatures and registry, replay in REPLAY mode, same header. Build and import of a block
are measured back to back in rounds (one build and one import each, the order
alternating). The target uses the median of each round's import / build ratio (median
over blocks), which cancels the machine changing speed between rounds; the ratio of
total times is reported too.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any

from eth.db.atomic import AtomicDB

from benchmarks.common import (
    MODELS,
    NODE_KEY,
    bench_accounts,
    fixture_store,
    forecast_chain,
    forecast_transactions,
    profile_call,
    ratio,
    senders_for,
    target,
    timed,
)
from ogevm.constants import DEV_BLOCK_GAS_LIMIT
from ogevm.pipe.builder import BlockBuilder
from ogevm.pipe.executor import local_executor
from ogevm.pipe.mempool import TxState
from ogevm.pipe.pipeline import Pipeline
from ogevm.pipe.validator import BlockValidator
from ogevm.precompile.modes import ReplayProvider
from ogevm.vm.chain import chain_class
from ogevm.vm.genesis import genesis_params, genesis_state

TITLE = "Validator: import of a PIPE block vs its build"
SIZES = {
    "smoke": {"models": {"heavy": 4}, "repeats": 1},
    "quick": {"models": {"heavy": 40, "small_mlp": 40}, "repeats": 3},
    "full": {"models": {"heavy": 200, "small_mlp": 200}, "repeats": 3},
}
#: A model-free validator must keep up with the builder: both execute the block's EVM once;
#: 10% covers the measurement noise of this kind of machine.
IMPORT_VS_BUILD_MAX = 1.1


def _replica(chain):
    """A node with the same genesis and no model: it can only replay."""
    replica = chain_class(chain.base_vm_class.with_provider(ReplayProvider(chain.models, {}))).from_genesis(
        AtomicDB(), genesis_params(), genesis_state(chain.accounts))
    return replica, BlockValidator(replica, chain.base_vm_class, dict(chain.models))


def measure(model_name: str, n: int, repeats: int, workers: int, on_block=lambda share: None,
            profile: bool = False) -> dict[str, Any]:
    model = MODELS[model_name]
    senders = senders_for(n, model.forecast_gas, DEV_BLOCK_GAS_LIMIT)
    accounts = bench_accounts(senders)
    store, infos = fixture_store([model_name])
    twins = [forecast_chain(store, infos[model_name], accounts) for _ in range(repeats)]
    chain, forecast = twins[0]
    txs = forecast_transactions(chain, forecast, model, n, senders)
    forecast.call("forecastView", [(k, 2) for k in range(model.width)])
    replicas = [_replica(chain) for _ in range(repeats)]
    for replica, validator in replicas:  # the deployment block, not timed
        validator.import_block(chain.chain.get_canonical_block_by_number(1), [])
    executor = local_executor(chain.runtime, NODE_KEY, workers)
    pipeline = Pipeline(chain, NODE_KEY, executor=executor)
    builders = [BlockBuilder(c.chain, c.base_vm_class, c.models) for c, _ in twins[1:]]
    per_block = []
    try:
        for tx in txs:
            pipeline.submit(tx)
        pipeline.prepare()
        blocks_expected = max(1, -(-n * model.forecast_gas // DEV_BLOCK_GAS_LIMIT))
        while any(e.state is TxState.READY for e in pipeline.pool.entries()):
            candidates = [e for e in pipeline.pool.entries() if e.state is TxState.READY]
            timestamp = chain.head.timestamp + 1
            build_s, _, built = timed(lambda: pipeline.build_block(timestamp=timestamp))
            if built.deferred or built.invalid or not built.included:
                raise RuntimeError(f"block {built.block.number}: deferred {built.deferred}, invalid {built.invalid}")
            records = built.records
            if profile:
                _, validator = replicas[0]
                _, summary = profile_call(lambda: validator.import_block(built.block, records),
                                          f"BlockValidator.import_block, {model_name}, {len(built.block.transactions)} txs")
                return {"import_block": summary}
            measurements = {}
            for i, builder in enumerate(builders, start=1):
                measurements[f"build/{i}"] = (lambda b=builder: b.build(candidates, timestamp=timestamp).block)
            for i, (_, validator) in enumerate(replicas):
                measurements[f"import/{i}"] = (lambda v=validator: v.import_block(built.block, records))
            # Rounds: a build and an import back to back, the order alternating; the
            # pipeline's own build_block opened round 0.
            timings = {"build": [build_s], "import": []}
            for i in range(repeats):
                order = ["import"] if i == 0 else (["build", "import"] if (i + len(per_block)) % 2 else
                                                   ["import", "build"])
                for kind in order:
                    wall, _, block = timed(measurements[f"{kind}/{i}"])
                    if block.hash != built.block.hash:
                        raise RuntimeError(f"{kind}/{i}: block {built.block.number} differs from the PIPE block")
                    timings[kind].append(wall)
            build, imported = statistics.median(timings["build"]), statistics.median(timings["import"])
            per_block.append({"number": built.block.number, "txs": len(built.block.transactions),
                              "records": len(records), "build_s": build, "import_s": imported,
                              "build_runs_s": timings["build"], "import_runs_s": timings["import"],
                              "import_vs_build": ratio(imported, build),
                              "import_vs_build_paired": statistics.median(
                                  i / b for i, b in zip(timings["import"], timings["build"]))})
            on_block(1 / blocks_expected)
    finally:
        executor.close()
    for replica, _ in replicas:
        if replica.get_canonical_head().hash != chain.head.hash:
            raise RuntimeError("a validator did not reach the builder's head")
    build_total = sum(b["build_s"] for b in per_block)
    import_total = sum(b["import_s"] for b in per_block)
    return {"model": model_name, "n": n, "repeats": repeats, "blocks": len(per_block), "build_s": build_total,
            "import_s": import_total, "import_vs_build": ratio(import_total, build_total),
            "import_vs_build_median_block": statistics.median(b["import_vs_build"] for b in per_block),
            "import_vs_build_paired": statistics.median(b["import_vs_build_paired"] for b in per_block),
            "build_ms_per_tx": build_total / n * 1e3, "import_ms_per_tx": import_total / n * 1e3,
            "per_block": per_block}


def run(config: dict[str, Any], reporter) -> dict[str, Any]:
    workers = config.get("workers") or os.cpu_count() or 1
    models = {}
    reporter.total(len(config["models"]) + 1)
    for model, n in config["models"].items():
        reporter.note(f"{model} N={n}")
        models[model] = measure(model, n, config["repeats"], workers, on_block=lambda share: reporter.step(None, share))
    targets, table = [], []
    for model, m in models.items():
        targets.append(target(
            f"import_vs_build/{model}", f"validator import <= {IMPORT_VS_BUILD_MAX:g}x build ({model}, N={m['n']})",
            "<=", IMPORT_VS_BUILD_MAX, m["import_vs_build_paired"],
            f"median of back-to-back pairs; ratio of totals {m['import_vs_build']:.2f}x; "
            f"import {m['import_ms_per_tx']:.1f} ms/tx, "
            f"build {m['build_ms_per_tx']:.1f} ms/tx, {m['blocks']} blocks"))
    result: dict[str, Any] = {"results": {"models": models}, "targets": targets, "table": table}
    missed = [t["key"].split("/")[1] for t in targets if t["met"] is False]
    if missed:
        reporter.note("profiling an import")
        result["profile"] = {model: measure(model, config["models"][model], 1, workers, profile=True)
                             for model in missed}
    reporter.step("done", max(0.0, reporter.steps - reporter.done))
    return result


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    models = result["results"]["models"]
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.2), squeeze=False)
    for ax, (model, m) in zip(axes[0], models.items()):
        blocks = [b["number"] for b in m["per_block"]]
        ax.bar([b - 0.2 for b in blocks], [b["build_s"] * 1e3 for b in m["per_block"]], 0.4, label="build (PIPE)",
               color="tab:blue")
        ax.bar([b + 0.2 for b in blocks], [b["import_s"] * 1e3 for b in m["per_block"]], 0.4,
               label="import (model-free validator)", color="tab:green")
        ax.set_xticks(blocks)
        ax.set_xlabel("block number")
        ax.set_ylabel("ms per block")
        ax.set_title(f"{model}, N={m['n']}: import / build {m['import_vs_build_paired']:.2f}x "
                     f"(target <= {IMPORT_VS_BUILD_MAX:g})", fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
