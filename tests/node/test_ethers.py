"""ethers.js v6 (pinned in ``tests/node/ethers/package.json``) against a real node.

Skipped when Node.js is not installed, unless ``OGEVM_REQUIRE_NODE=1`` (then it fails).
Runs ``npm ci`` first if ``node_modules`` is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import asdict

import pytest

from llm_files import WEATHER
from node_helpers import FIXTURES
from ogevm.llm import ChatMessage, default_runtime

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


def test_ethers_v6_decodes_llm_calls_with_a_human_readable_abi(node_js, node):
    prompt, question = "The price of ", "What is the weather in Paris?"
    done = subprocess.run([node_js, "llm_check.mjs", node.url, prompt, question, json.dumps(asdict(WEATHER))],
                          cwd=ETHERS_DIR, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"llm_check.mjs failed:\n{done.stdout}\n{done.stderr}"
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    runtime = default_runtime()  # what the node must have answered
    assert summary["answer"] == runtime.complete("tiny_chat", prompt, 40).text and summary["answer"]
    chat = runtime.chat("tiny_chat", [ChatMessage("user", question)], 100, [WEATHER], "required")
    assert (summary["finishReason"], summary["role"]) == ("tool_calls", "assistant")
    assert summary["toolCalls"] == [asdict(call) for call in chat.message.tool_calls] != []
