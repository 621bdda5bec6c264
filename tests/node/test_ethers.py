"""ethers.js v6 (pinned in ``tests/node/ethers/package.json``) against a real node.

Skipped when Node.js is not installed, unless ``OGEVM_REQUIRE_NODE=1`` (then it fails).
Runs ``npm ci`` first if ``node_modules`` is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from node_helpers import FIXTURES

ETHERS_DIR = FIXTURES.parent / "tests" / "node" / "ethers"


@pytest.fixture(scope="module")
def node_js() -> str:
    executable, npm = shutil.which("node"), shutil.which("npm")
    if executable is None or npm is None:
        message = "Node.js (node and npm) is not installed"
        if os.environ.get("OGEVM_REQUIRE_NODE") == "1":
            pytest.fail(f"{message}, and OGEVM_REQUIRE_NODE=1")
        pytest.skip(message)
    if not (ETHERS_DIR / "node_modules" / "ethers" / "package.json").exists():
        done = subprocess.run([npm, "ci", "--silent", "--no-audit", "--no-fund"], cwd=ETHERS_DIR,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return executable


def test_ethers_v6_deploys_transacts_and_reads_reverts(node_js, node):
    done = subprocess.run(
        [node_js, "check.mjs", node.url, str(FIXTURES / "contracts" / "PriceForecast.json"),
         str(FIXTURES / "models" / "linear_regression.onnx")],
        cwd=ETHERS_DIR, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"check.mjs failed:\n{done.stdout}\n{done.stderr}"
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    pinned = json.loads((ETHERS_DIR / "package.json").read_text())["dependencies"]["ethers"]
    assert summary["ok"] is True and summary["ethers"] == pinned and summary["chainId"] == 31337
    assert summary["event"]["value"] == "71" and summary["event"]["decimals"] == "1"
    assert summary["forecastView"] == ["1", "1"]
    assert summary["revertReason"] == "input 'x' has shape [1, 1]; the model expects ['?', 4]"
    assert summary["failedTx"]["status"] == 0
    receipt = node.rpc("eth_getTransactionReceipt", summary["forecastTx"])
    assert receipt["status"] == "0x1" and receipt["to"].lower() == summary["contract"].lower()
