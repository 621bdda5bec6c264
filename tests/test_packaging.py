"""The distributions: a built wheel installs and runs from any directory with its data inside,
and ``solidity/`` packs as the npm package ``@ogevm/contracts`` with the interfaces only.

The wheel is built with this environment's setuptools (``--no-build-isolation``: offline and
fast) from a copy of the checkout, installed with ``pip install --target`` into a temporary
folder, and run from another folder with that one first on ``PYTHONPATH``; the dependencies
come from this environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from cli_helpers import rpc, running_node

REPO = Path(__file__).resolve().parent.parent
SOLIDITY = REPO / "solidity"
#: What the build reads: everything else in the checkout stays out of the copy.
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "ogevm", "solidity", "fixtures")
MINIMUM_SETUPTOOLS = 77  # the build-system requirement of pyproject.toml


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    import setuptools

    if int(setuptools.__version__.split(".")[0]) < MINIMUM_SETUPTOOLS:
        pytest.fail(f"setuptools {setuptools.__version__} cannot build ogevm: pip install 'setuptools>=77' "
                    "(the dev extra has it)")
    source = tmp_path_factory.mktemp("source")
    skip = shutil.ignore_patterns("__pycache__", "node_modules", "*.egg-info", "_data", "build")
    for name in BUILD_INPUTS:
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=skip)
        else:
            shutil.copy2(origin, source / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(out)], check=True, timeout=300)
    (built,) = out.glob("ogevm-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", str(wheel), "--no-deps", "--no-index", "-q",
                    "--target", str(target)], check=True, timeout=300)
    return target


def run_installed(installed: Path, cwd: Path, *argv: str, **kwargs) -> subprocess.CompletedProcess:
    """``ogevm *argv`` from the installed copy, in ``cwd``."""
    env = {**os.environ, "PYTHONPATH": str(installed), "XDG_DATA_HOME": str(cwd / "xdg")}
    return subprocess.run([str(installed / "bin" / "ogevm"), *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, **kwargs)


def test_the_wheel_carries_sources_artifacts_models_and_the_solc_driver(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"ogevm/_data/solidity/{p.relative_to(SOLIDITY)}" for p in SOLIDITY.rglob("*.sol")
                if "node_modules" not in p.parts}
    expected |= {f"ogevm/_data/fixtures/contracts/{p.name}" for p in (REPO / "fixtures" / "contracts").glob("*.json")}
    expected |= {f"ogevm/_data/fixtures/models/{p.name}" for p in (REPO / "fixtures" / "models").glob("*.onnx")}
    expected |= {"ogevm/_data/solidity/package.json", "ogevm/solc_standard_json.js", "ogevm/py.typed"}
    assert expected <= names, sorted(expected - names)
    assert not [n for n in names if "node_modules" in n or "__pycache__" in n]
    entry_points = zipfile.ZipFile(wheel).read(f"{wheel.name.split('-py3')[0]}.dist-info/entry_points.txt").decode()
    assert "ogevm = ogevm.cli:main" in entry_points


def test_installed_package_finds_its_data_inside_itself(installed, tmp_path):
    code = ("import ogevm, ogevm.fixtures as f; "
            "print(ogevm.__file__); print(f.fixture_model('heavy')); print(f.fixture_contract('PriceForecast').name)")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(installed)},
                          capture_output=True, text=True, timeout=60, check=True)
    module, model, contract = done.stdout.split()
    assert Path(module).is_relative_to(installed) and Path(model).is_relative_to(installed / "ogevm" / "_data")
    assert contract == "PriceForecast"


@pytest.mark.slow
def test_installed_command_help_and_a_node_from_an_empty_directory(installed, tmp_path):
    helped = run_installed(installed, tmp_path, "--help")
    assert helped.returncode == 0 and "ONNX models" in helped.stdout

    env = {**os.environ, "PYTHONPATH": str(installed), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    with running_node([str(installed / "bin" / "ogevm")], tmp_path, env) as port:
        assert rpc(port, "eth_chainId") == "0x7a69"
        # the node registry is deployed at genesis from the artifact the package carries
        assert rpc(port, "eth_getCode", "0x000000000000000000000000000000000000f4f4", "latest") != "0x"


def test_installed_compile_without_solc_says_how_to_get_it(installed, tmp_path):
    (tmp_path / "A.sol").write_text("// SPDX-License-Identifier: MIT\npragma solidity ^0.8.20;\ncontract A {}\n")
    done = run_installed(installed, tmp_path, "compile", "A.sol")
    assert done.returncode == 1
    assert "solc-js 0.8.37 not found" in done.stderr and "npm install --save-dev solc@0.8.37" in done.stderr


@pytest.mark.solc
@pytest.mark.slow
def test_installed_compile_with_solc_in_the_project(installed, tmp_path):
    if not (SOLIDITY / "node_modules" / "solc").is_dir() or shutil.which("node") is None:
        if os.environ.get("OGEVM_REQUIRE_SOLC"):
            pytest.fail("solc-js is required here: run `npm ci` in solidity/")
        pytest.skip("Node.js or solidity/node_modules missing")
    (tmp_path / "node_modules").symlink_to(SOLIDITY / "node_modules")  # as `npm install solc` would leave it
    (tmp_path / "Caller.sol").write_text(
        "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.20;\n"
        'import {ModelInferenceRequest, ModelOutput, OG_INFERENCE} from "@ogevm/contracts/OGInference.sol";\n'
        "contract Caller { function run(ModelInferenceRequest calldata r) external returns (ModelOutput memory)"
        " { return OG_INFERENCE.runModelInference(r); } }\n")
    done = run_installed(installed, tmp_path, "compile", "Caller.sol")
    assert done.returncode == 0, done.stderr
    artifact = json.loads((tmp_path / "artifacts" / "Caller.sol" / "Caller.json").read_text())
    assert artifact["sourceName"] == "Caller.sol" and len(artifact["deployedBytecode"]) > 2


def test_npm_package_holds_the_interfaces_and_installs_offline(tmp_path):
    npm = shutil.which("npm")
    if npm is None:
        if os.environ.get("OGEVM_REQUIRE_SOLC"):
            pytest.fail("npm is required here")
        pytest.skip("npm missing")
    packed = subprocess.run([npm, "pack", "--pack-destination", str(tmp_path), "--json"], cwd=SOLIDITY,
                            capture_output=True, text=True, timeout=120, check=True)
    (info,) = json.loads(packed.stdout)
    assert info["name"] == "@ogevm/contracts"
    with tarfile.open(tmp_path / info["filename"]) as tar:
        members = sorted(tar.getnames())
    # the top-level sources (interfaces, library, registry): no examples, no build script
    expected = [f"package/{p.name}" for p in SOLIDITY.glob("*.sol")] + ["package/README.md", "package/package.json"]
    assert members == sorted(expected) and "package/OGInference.sol" in members

    project = tmp_path / "project"
    project.mkdir()
    (project / "package.json").write_text(json.dumps({"name": "user-project", "version": "1.0.0", "private": True}))
    subprocess.run([npm, "install", "--offline", "--no-audit", "--no-fund", str(tmp_path / info["filename"])],
                   cwd=project, capture_output=True, text=True, timeout=120, check=True)
    installed = project / "node_modules" / "@ogevm" / "contracts"
    assert (installed / "OGInference.sol").read_bytes() == (SOLIDITY / "OGInference.sol").read_bytes()
    assert "dependencies" not in json.loads((installed / "package.json").read_text())  # nothing to fetch
