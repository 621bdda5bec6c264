"""7. Verification: what each mode costs per inference on small_mlp, as ratios to VANILLA.

On a dev chain whose registry knows the inference node (genesis), a SIMULATED enclave
(registered with ``Pipeline.register_nodes``) and, when ezkl is installed, the model's
ZKML circuit (``DevChain.enable_zkml``: ``CircuitStore.prepare`` + ``registerCircuit``):

* VANILLA: sign with ``ResultSigner.sign``; verify with ``verify_record`` (which runs
  ``recover_signer`` and the registry check) against a ``RegistryView`` of the chain, as a
  validator does (one view for many records, as for a block); ``recover_signer`` alone too;
* TEE (simulated enclave): ``SimulatedEnclave.sign`` and the attestation document the
  record carries; verify with ``verify_record`` (vendor signature, measurement,
  attestation age, enclave key, result signature, registry);
* ZKML: ``CircuitStore.prove`` (witness, proof, and the prover's own check of it) and the
  node's signature; verify with ``verify_record`` and ``verify_proof`` through a
  ``CircuitProofChecker`` (``CircuitStore.verify``). "not available" without ezkl.

The inference itself (``ModelRuntime.run``) is timed on the same requests: a mode's cost
per inference is inference (or proof) + signature + verification.
"""

from __future__ import annotations

import importlib.util
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    NODE_KEY,
    inference_requests,
    interleaved_medians,
    profile_call,
    ratio,
    row,
    target,
)
from ogevm.abi.types import InferenceMode
from ogevm.fixtures import fixture_model
from ogevm.pipe.executor import local_executor
from ogevm.pipe.pipeline import Pipeline
from ogevm.records import InferenceRecord, InferenceResult
from ogevm.verify.records import verify_proof, verify_record
from ogevm.verify.registry import RegistryView
from ogevm.verify.tee import SimulatedEnclave
from ogevm.verify.vanilla import ResultSigner, recover_signer
from ogevm.vm.chain import DevChain

TITLE = "Verification cost per inference: VANILLA, TEE (simulated), ZKML"
SIZES = {
    "smoke": {"model": "small_mlp", "n": 20, "repeats": 1, "zkml_proofs": 1},
    "quick": {"model": "small_mlp", "n": 300, "repeats": 3, "zkml_proofs": 2},
    "full": {"model": "small_mlp", "n": 2000, "repeats": 5, "zkml_proofs": 5},
}
#: Public claims: a TEE adds a negligible cost; ZKML costs 1000-10000x plain inference.
TEE_VS_VANILLA_MAX = 1.1
ZKML_VS_VANILLA_RANGE = (1_000.0, 10_000.0)


def zkml_available() -> str | None:
    """None if ZKML can be measured, else why not."""
    if importlib.util.find_spec("ogevm.verify.zkml") is None:
        return "ogevm.verify.zkml does not exist"
    if importlib.util.find_spec("ezkl") is None:
        return "ezkl is not installed (pip install 'ogevm[zkml]')"
    return None


def measure(model: str, n: int, repeats: int, zkml_proofs: int, on_run=lambda name: None,
            profile: bool = False) -> dict[str, Any]:
    unavailable = zkml_available() if zkml_proofs else "no proofs asked for at this size"
    directory = None
    if unavailable is None:
        from ogevm.verify.zkml import CircuitStore

        directory = tempfile.mkdtemp(prefix="ogevm-bench-circuits-")
        chain = DevChain(circuits=CircuitStore(directory))
    else:
        chain = DevChain()
    try:
        info = chain.add_model(fixture_model(model))
        enclave = SimulatedEnclave()
        executor = local_executor(chain.runtime, NODE_KEY, enclave=enclave)
        try:
            Pipeline(chain, NODE_KEY, executor=executor).register_nodes()
        finally:
            executor.close()
        zkml_setup_s = None
        if unavailable is None:
            start = time.perf_counter()
            chain.enable_zkml(info.cid)
            zkml_setup_s = time.perf_counter() - start
        registry = RegistryView(chain.state())
        timestamp = max(int(time.time()), chain.head.timestamp + 1)
        signer = ResultSigner(NODE_KEY)

        # Inputs within [-1, 1), the range the ZKML circuit is calibrated on; same values per mode.
        requests = {mode: inference_requests(info, n, mode=mode, low=-100, high=100)
                    for mode in (InferenceMode.VANILLA, InferenceMode.TEE)}
        results = {mode: [InferenceResult(r.id, r.digest, output=chain.runtime.run(info, r.feeds)) for r in reqs]
                   for mode, reqs in requests.items()}
        vanilla_results, tee_results = results[InferenceMode.VANILLA], results[InferenceMode.TEE]

        def vanilla_sign():
            return [InferenceRecord(r, InferenceMode.VANILLA, info.cid, signer.address, signer.sign(r))
                    for r in vanilla_results]

        document = enclave.attestation.encode()  # once per enclave, as the worker does

        def tee_sign():
            return [InferenceRecord(r, InferenceMode.TEE, info.cid, enclave.address, enclave.sign(r),
                                    attestation=document) for r in tee_results]

        vanilla_records, tee_records = vanilla_sign(), tee_sign()
        for record in (*vanilla_records[:3], *tee_records[:3]):
            verify_record(record, registry, timestamp)  # valid, and the registry view is warm

        def inference():
            return [chain.runtime.run(info, r.feeds) for r in requests[InferenceMode.VANILLA]]

        measurements = {
            "inference": inference,
            "vanilla_sign": vanilla_sign,
            "vanilla_verify": lambda: [verify_record(r, registry, timestamp) for r in vanilla_records],
            "vanilla_recover_signer": lambda: [recover_signer(r.result, r.signature) for r in vanilla_records],
            "tee_sign": tee_sign,
            "tee_verify": lambda: [verify_record(r, registry, timestamp) for r in tee_records],
        }
        if profile:
            _, tee_profile = profile_call(measurements["tee_verify"], f"verify_record of {n} TEE records",
                                          cpu_clock=True)
            _, vanilla_profile = profile_call(measurements["vanilla_verify"], f"verify_record of {n} VANILLA records",
                                              cpu_clock=True)
            return {"tee_verify": tee_profile, "vanilla_verify": vanilla_profile}
        stats, _ = interleaved_medians(measurements, repeats, on_run)
        us = {name: s["seconds"] / n * 1e6 for name, s in stats.items()}

        zkml: dict[str, Any] = {"available": unavailable is None, "reason": unavailable}
        if unavailable is None:
            zkml.update(_zkml(chain, info, registry, timestamp, signer, zkml_proofs, on_run))
            zkml["setup_s"] = zkml_setup_s
    finally:
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

    out: dict[str, Any] = {"model": model, "n": n, "repeats": repeats, "us_per_inference": us,
                           "simulated_enclave": True, "zkml": zkml}
    vanilla = us["vanilla_sign"] + us["vanilla_verify"]
    tee = us["tee_sign"] + us["tee_verify"]
    out["modes"] = {
        "VANILLA": {"produce_us": us["inference"] + us["vanilla_sign"], "verify_us": us["vanilla_verify"],
                    "verification_us": vanilla, "total_us": us["inference"] + vanilla},
        "TEE": {"produce_us": us["inference"] + us["tee_sign"], "verify_us": us["tee_verify"],
                "verification_us": tee, "total_us": us["inference"] + tee},
    }
    if zkml.get("available"):
        out["modes"]["ZKML"] = {"produce_us": zkml["prove_us"] + zkml["sign_us"], "verify_us": zkml["verify_us"],
                                "verification_us": zkml["prove_us"] + zkml["sign_us"] + zkml["verify_us"],
                                "total_us": zkml["prove_us"] + zkml["sign_us"] + zkml["verify_us"]}
    base = out["modes"]["VANILLA"]
    for mode in out["modes"].values():
        mode["total_vs_vanilla"] = ratio(mode["total_us"], base["total_us"])
        mode["verification_vs_vanilla"] = ratio(mode["verification_us"], base["verification_us"])
        mode["total_vs_inference"] = ratio(mode["total_us"], us["inference"])
    return out


def _zkml(chain, info, registry, timestamp, signer, proofs: int, on_run) -> dict[str, Any]:
    """Prove, sign and verify ``proofs`` ZKML requests one by one; medians per request."""
    from ogevm.verify.zkml import CircuitProofChecker, zk_output

    checker = CircuitProofChecker(chain.circuits)
    requests = inference_requests(info, proofs, mode=InferenceMode.ZKML, low=-100, high=100, seed=5)
    prove, sign, verify = [], [], []
    for request in requests:
        start = time.perf_counter()
        proof, outputs = chain.circuits.prove(info.cid, request.feeds)
        result = InferenceResult(request.id, request.digest, output=zk_output(info, outputs))
        middle = time.perf_counter()
        record = InferenceRecord(result, InferenceMode.ZKML, info.cid, signer.address, signer.sign(result, proof),
                                 proof=proof)
        signed = time.perf_counter()
        verify_record(record, registry, timestamp)
        verify_proof(record, request.feeds, registry, checker)
        done = time.perf_counter()
        prove.append(middle - start)
        sign.append(signed - middle)
        verify.append(done - signed)
        on_run("zkml proof")
    return {"proofs": proofs, "prove_us": statistics.median(prove) * 1e6, "sign_us": statistics.median(sign) * 1e6,
            "verify_us": statistics.median(verify) * 1e6, "prove_runs_s": prove, "verify_runs_s": verify,
            "proof_bytes": len(proof)}


def run(config: dict[str, Any], reporter) -> dict[str, Any]:
    repeats = config["repeats"]
    reporter.total(6 * repeats + config["zkml_proofs"] + 1)
    m = measure(config["model"], config["n"], repeats, config["zkml_proofs"], on_run=lambda name: reporter.step(name))
    modes, us = m["modes"], m["us_per_inference"]
    tee, vanilla = modes["TEE"], modes["VANILLA"]
    targets = [target(
        "tee_vs_vanilla", f"TEE (simulated) / VANILLA per inference <= {TEE_VS_VANILLA_MAX:g}x (claim: negligible)",
        "<=", TEE_VS_VANILLA_MAX, tee["total_vs_vanilla"],
        f"+{tee['total_us'] - vanilla['total_us']:.0f} us per inference (verification alone "
        f"{tee['verification_vs_vanilla']:.2f}x); no enclave hardware: only the attestation checks are measured")]
    zkml = modes.get("ZKML")
    low, high = ZKML_VS_VANILLA_RANGE
    targets.append(target(
        "zkml_vs_vanilla", f"ZKML / VANILLA per inference within {low:,.0f}-{high:,.0f}x (public claim)", "between",
        ZKML_VS_VANILLA_RANGE, zkml["total_vs_vanilla"] if zkml else None,
        (f"prove {m['zkml']['prove_us'] / 1e3:,.0f} ms, verify {m['zkml']['verify_us'] / 1e3:,.1f} ms; "
         f"{zkml['total_vs_inference']:,.0f}x the inference alone; circuit setup {m['zkml']['setup_s']:.1f} s")
        if zkml else f"not available: {m['zkml']['reason']}"))
    table = [row("VANILLA: sign + verify per inference", vanilla["verification_us"], "us",
                 f"sign {us['vanilla_sign']:.0f} + verify {us['vanilla_verify']:.0f} us (recover_signer alone "
                 f"{us['vanilla_recover_signer']:.0f} us); inference {us['inference']:.0f} us"),
             row("TEE / VANILLA, sign + verify only", tee["verification_vs_vanilla"], "x",
                 f"sign {us['tee_sign']:.0f} + verify {us['tee_verify']:.0f} us")]
    if zkml:
        table.append(row("ZKML / VANILLA, sign + verify only", zkml["verification_vs_vanilla"], "x",
                         f"verifying a proof alone: {m['zkml']['verify_us'] / 1e3:,.1f} ms = "
                         f"{m['zkml']['verify_us'] / vanilla['verify_us']:,.0f}x a VANILLA verification"))
    result: dict[str, Any] = {"results": m, "targets": targets, "table": table}
    if any(t["met"] is False for t in targets):
        reporter.note("profiling TEE and VANILLA verification")
        result["profile"] = measure(config["model"], config["n"], 1, 0, profile=True)
    reporter.step("done", max(0.0, reporter.steps - reporter.done))
    return result


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    r = result["results"]
    modes = r["modes"]
    names = list(modes)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    x = np.arange(len(names))
    produce = [modes[m]["produce_us"] for m in names]
    verify = [modes[m]["verify_us"] for m in names]
    ax.bar(x - 0.2, produce, 0.4, label="produce: inference (ZKML: proof) + signature", color="tab:blue")
    ax.bar(x + 0.2, verify, 0.4, label="verify (validator)", color="tab:green")
    for i, m in enumerate(names):
        ax.text(i, max(produce[i], verify[i]) * 1.15, f"{modes[m]['total_vs_vanilla']:,.1f}x VANILLA",
                ha="center", fontsize=9)
    ax.axhline(r["us_per_inference"]["inference"], color="gray", linestyle=":", label="inference alone")
    ax.set_yscale("log")
    ax.set_xticks(x, [("TEE (simulated)" if m == "TEE" else m) for m in names])
    ax.set_ylabel("microseconds per inference (log)")
    title = f"{r['model']}: cost per inference by mode"
    if not r["zkml"]["available"]:
        title += " (ZKML not available)"
    ax.set_title(title)
    ax.set_ylim(top=max(max(produce), max(verify)) * 6)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
