"""The committed contract artifacts are exactly what the pinned solc-js makes of the sources."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SOLIDITY = Path(__file__).resolve().parent.parent / "solidity"


@pytest.mark.solc
def test_artifacts_match_a_fresh_compilation():
    if shutil.which("node") is None or not (SOLIDITY / "node_modules" / "solc").is_dir():
        if os.environ.get("OGEVM_REQUIRE_SOLC"):
            pytest.fail("solc-js is required here: run `npm ci` in solidity/")
        pytest.skip("Node.js or solidity/node_modules missing (run `npm ci` in solidity/)")
    result = subprocess.run(["node", "compile.js", "--check"], cwd=SOLIDITY, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
