"""``ogevm node --executor ray``: a real node process whose inference runs on Ray actors."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort
import pytest

from ogevm import Client

from node_helpers import FIXTURES, REPO, NodeProcess, fund

pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.slow]
MODEL = FIXTURES / "models" / "linear_regression.onnx"


def test_a_node_on_ray_workers_commits_results_signed_by_its_registered_actors(tmp_path):
    node = NodeProcess(tmp_path / "node.log", extra=("--executor", "ray", "--workers", "2")).start(timeout=180)
    try:
        client = Client(node.url, fund(node))
        cid = client.add_model(MODEL)
        inputs = [np.array([[1.0, 2, 3, i]], np.float32) for i in range(2)]
        results = [client.infer(cid, mode, {"x": x}) for x, mode in zip(inputs, ("VANILLA", "TEE"))]
        session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
        for x, result in zip(inputs, results):
            assert result.as_dtype("y", np.float32).tobytes() == session.run(None, {"x": x})[0].tobytes()
        stats = node.rpc("og_pipeStats")
        workers = stats["inferenceNodes"]
        assert len(workers) == 2 and len({w["node"] for w in workers}) == 2
        vanilla, tee = (r.records[0] for r in results)
        assert vanilla["node"].lower() in {w["node"].lower() for w in workers}
        assert tee["node"].lower() in {w["teeEnclave"].lower() for w in workers}
        log = node.log()
        assert "Inference workers: 2 Ray actors (auto)" in log and "SIMULATED" in log
    finally:
        node.stop()
    assert node.proc.returncode == 0, node.log()


def test_a_ray_address_where_nothing_answers_is_a_clear_error(tmp_path):
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "ogevm.cli", "node", "--in-memory", "--executor", "ray",
                           "--ray-address", "127.0.0.1:1"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "no Ray cluster answers at '127.0.0.1:1'" in done.stderr
    assert time.monotonic() - start < 60
