"""The Python examples run as a user runs them: the pytest plugin's example suite in its own
pytest process (the plugin loaded through its entry point), and the web3.py script against a
real `ogevm node`. (The Hardhat example: ``test_hardhat_example.py``.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import running_node

ROOT = Path(__file__).parents[1]


def _solc_or_skip() -> None:
    from ogevm.compile import find_solc
    from ogevm.errors import OgevmError

    try:
        find_solc(ROOT)
    except OgevmError as exc:
        if os.environ.get("OGEVM_REQUIRE_SOLC"):
            raise
        pytest.skip(f"ogevm compile needs solc-js: {exc}")


def test_the_pytest_plugin_example_suite_passes():
    _solc_or_skip()
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "examples/pytest"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "7 passed" in run.stdout, run.stdout


def test_the_web3_example_script_passes_against_the_node(tmp_path):
    pytest.importorskip("web3", reason="web3.py is not installed")
    with running_node([sys.executable, "-m", "ogevm.cli"], tmp_path, dict(os.environ)) as port:
        run = subprocess.run([sys.executable, str(ROOT / "examples" / "web3_example.py"), f"http://127.0.0.1:{port}"],
                             capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("ok  ") == 7 and "FAILED" not in run.stdout, run.stdout
