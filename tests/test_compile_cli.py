"""``ogevm compile``: a user project importing ``@ogevm/...`` compiles to Hardhat artifacts that
deploy and call the precompile; every bad input is a readable error with exit status 1."""

from __future__ import annotations

import json
import os
import shutil
from decimal import Decimal
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import ogevm.compile
from ogevm.abi.contract import ContractInterface
from ogevm.cli import main
from ogevm.compile import find_solc, pinned_solc_version
from ogevm.errors import OgevmError
from ogevm.fixtures import fixture_model
from ogevm.resources import SOLIDITY, data_root
from ogevm.vm.chain import DevChain

HEADER = "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.20;\n"
PREDICTOR = HEADER + """
import {TensorLib, ModelOutput} from "@ogevm/OGInference.sol";
import {SolidML} from "@ogevm/SolidML.sol";
import {INPUT, OUTPUT} from "./Names.sol";

contract Predictor {
    function predict(string calldata cid, TensorLib.Number[] calldata features)
        external
        returns (TensorLib.Number memory)
    {
        ModelOutput memory out = SolidML.inferVector(cid, INPUT, features, SolidML.VerificationMethod.VANILLA);
        return TensorLib.firstValueByName(out, OUTPUT);
    }
}
"""
NAMES = HEADER + 'string constant INPUT = "x";\nstring constant OUTPUT = "y";\n'
FEATURES = [(15, 1), (-2, 0), (325, 2), (1, 0)]  # 1.5, -2, 3.25, 1


def solc_available() -> None:
    """Skip (or fail where solc-js is required) without Node.js and the checkout's solc-js."""
    if shutil.which("node") is None or not (data_root() / SOLIDITY / "node_modules" / "solc").is_dir():
        if os.environ.get("OGEVM_REQUIRE_SOLC"):
            pytest.fail("solc-js is required here: run `npm ci` in solidity/")
        pytest.skip("Node.js or solidity/node_modules missing (run `npm ci` in solidity/)")


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """An empty project folder, made the current directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "contracts").mkdir()
    return tmp_path


@pytest.mark.solc
def test_user_contract_compiles_deploys_and_runs_the_model(project, capsys):
    solc_available()
    (project / "contracts" / "Predictor.sol").write_text(PREDICTOR)
    (project / "contracts" / "Names.sol").write_text(NAMES)

    assert main(["compile", "contracts/Predictor.sol", "--out", "build"]) == 0

    path = project / "build" / "contracts" / "Predictor.sol" / "Predictor.json"
    assert f"wrote {Path('build/contracts/Predictor.sol/Predictor.json')}" in capsys.readouterr().out
    artifact = json.loads(path.read_text())
    assert list(artifact) == ["_format", "contractName", "sourceName", "abi", "bytecode", "deployedBytecode",
                              "linkReferences", "deployedLinkReferences"]
    assert (artifact["_format"], artifact["contractName"], artifact["sourceName"]) == \
        ("hh-sol-artifact-1", "Predictor", "contracts/Predictor.sol")
    # the shipped interface comes out under its import path, as Hardhat does for packages
    assert (project / "build" / "@ogevm" / "OGInference.sol" / "OGInference.json").is_file()

    chain = DevChain()
    model = fixture_model("linear_regression")
    cid = chain.add_model(model).cid
    predictor = chain.deploy(ContractInterface.from_artifact(path))
    (value, decimals), = predictor.call("predict", cid, FEATURES)

    x = np.array([[float(Decimal(v).scaleb(-d)) for v, d in FEATURES]], dtype=np.float32)
    expected = ort.InferenceSession(str(model)).run(None, {"x": x})[0][0, 0]
    assert np.float32(Decimal(value).scaleb(-decimals)) == expected


@pytest.mark.solc
def test_a_compile_error_is_solcs_message_and_writes_nothing(project, capsys):
    solc_available()
    (project / "contracts" / "Bad.sol").write_text(HEADER + "contract Bad { function f() external { uint8 x = -1; } }\n")
    assert main(["compile", "contracts/Bad.sol"]) == 1
    err = capsys.readouterr().err
    assert "TypeError" in err and "contracts/Bad.sol:3:" in err
    assert not (project / "artifacts").exists()


@pytest.mark.solc
def test_an_import_that_does_not_exist_names_where_it_looked(project, capsys):
    solc_available()
    (project / "contracts" / "Lost.sol").write_text(HEADER + 'import "@ogevm/Missing.sol";\ncontract Lost {}\n')
    assert main(["compile", "contracts/Lost.sol"]) == 1
    err = capsys.readouterr().err
    assert '"@ogevm/Missing.sol"' in err and "file not found" in err


def test_missing_outside_and_undecodable_files_are_refused_before_compiling(project, tmp_path_factory, capsys):
    outside = tmp_path_factory.mktemp("elsewhere") / "Other.sol"
    outside.write_text(HEADER + "contract Other {}\n")
    (project / "contracts" / "Latin1.sol").write_bytes(b"// caf\xe9\n")
    for argv, message in ((["nope.sol"], "nope.sol: no such file"),
                          (["contracts"], "contracts is not a file"),
                          ([str(outside)], "is outside"),
                          (["contracts/Latin1.sol"], "is not UTF-8 text")):
        assert main(["compile", *argv]) == 1
        assert message in capsys.readouterr().err


def test_without_nodejs_the_error_says_how_to_install_it(project, monkeypatch, capsys):
    (project / "contracts" / "Empty.sol").write_text(HEADER + "contract Empty {}\n")
    monkeypatch.setenv("PATH", str(project))  # no node here
    assert main(["compile", "contracts/Empty.sol"]) == 1
    err = capsys.readouterr().err
    assert "Node.js not found" in err and "https://nodejs.org" in err


def test_solc_of_another_version_is_passed_over_and_named(project, monkeypatch):
    stray = project / "node_modules" / "solc"
    stray.mkdir(parents=True)
    (stray / "package.json").write_text(json.dumps({"name": "solc", "version": "0.8.19"}))
    pinned = project / "sub" / "node_modules" / "solc"
    pinned.mkdir(parents=True)
    (pinned / "package.json").write_text(json.dumps({"name": "solc", "version": pinned_solc_version()}))
    assert find_solc(project / "sub") == pinned  # the nearest node_modules first

    monkeypatch.setattr(ogevm.compile, "data_root", lambda: project / "installed")  # no checkout to fall back on
    with pytest.raises(OgevmError, match=rf"solc-js {pinned_solc_version()} not found \(found only 0\.8\.19 in "
                                         rf".*\): run `npm install --save-dev solc@{pinned_solc_version()}`"):
        find_solc(project)
