"""The Hardhat example (``examples/hardhat``) runs ``npx hardhat test --network ogevm`` against a
real `ogevm node`: a model call, a mock, snapshots and time travel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import running_node

ROOT = Path(__file__).parents[1]
HARDHAT = ROOT / "examples" / "hardhat"
NODE_COMMAND = [sys.executable, "-m", "ogevm.cli"]


def _hardhat_or_skip() -> str:
    npx = shutil.which("npx")
    missing = ("Node.js (npx) is not installed" if npx is None else
               None if (HARDHAT / "node_modules" / "hardhat").is_dir() else
               "the example's packages are not installed: run `npm ci` in examples/hardhat")
    if missing is None:
        return npx
    if os.environ.get("OGEVM_REQUIRE_NODE") == "1":
        pytest.fail(missing)
    pytest.skip(missing)


def test_the_hardhat_example_passes_against_the_node(tmp_path):
    npx = _hardhat_or_skip()
    with running_node(NODE_COMMAND, tmp_path, dict(os.environ)) as port:
        run = subprocess.run([npx, "hardhat", "test", "--network", "ogevm"], cwd=HARDHAT,
                             env={**os.environ, "OGEVM_RPC_URL": f"http://127.0.0.1:{port}"},
                             capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "5 passing" in run.stdout, run.stdout

