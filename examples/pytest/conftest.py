"""Compile the contract under test once per session with ``ogevm compile``."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
CONTRACT = "solidity/examples/PriceForecast.sol"  # SolidML's example, relative to ROOT
MODEL = ROOT / "fixtures" / "models" / "linear_regression.onnx"


@pytest.fixture(scope="session")
def artifact(tmp_path_factory) -> Path:
    """The compiled PriceForecast (Hardhat-shaped JSON artifact)."""
    out = tmp_path_factory.mktemp("artifacts")
    ogevm = Path(sys.executable).with_name("ogevm")  # the command installed beside this Python
    subprocess.run([str(ogevm), "compile", CONTRACT, "--out", str(out)], cwd=ROOT, check=True)
    return out / CONTRACT / "PriceForecast.json"


@pytest.fixture
def model_path() -> Path:
    """linear_regression: y = 0.5 x0 - 1.25 x1 + 2 x2 + 0.75 x3 + 0.1."""
    return MODEL


@pytest.fixture
def model_cid(ogevm_add_model, model_path) -> str:
    return ogevm_add_model(model_path)


@pytest.fixture
def forecast(ogevm_deploy, artifact, model_cid):
    return ogevm_deploy(artifact, model_cid, "x", "y")
