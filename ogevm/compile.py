"""``ogevm compile``: user contracts compiled by the pinned solc-js into Hardhat-style artifacts.

Source units are named by their path relative to a base folder (the current one for the
command), like Hardhat names them relative to the project root. An import of
``@ogevm/<file>`` or ``@ogevm/contracts/<file>`` reads the Solidity files ogevm ships
(``OGInference.sol``, ``SolidML.sol`` and the others of ``solidity/``); any other import is
read from the base folder, then from its ``node_modules/``. The settings are the ones of ogevm's own contracts (optimizer on, 200 runs,
``viaIR``, ``evmVersion`` cancun, no metadata hash), so the bytecode does not depend on where
the project lives.

solc-js is an npm package run by Node.js; ogevm does not ship it. It is looked up in the
``node_modules`` of the base folder and its parents (``npm install solc@<pinned>``), then in
``solidity/node_modules`` of an ogevm checkout.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ogevm.errors import OgevmError
from ogevm.resources import SOLIDITY, data_root, resource

#: Imports starting with these are read from the Solidity sources ogevm ships: the path of the
#: npm package ``@ogevm/contracts`` (so a source compiles unchanged in a Hardhat project that
#: installed it), or the short form. One project should stick to one of them.
OGEVM_IMPORT_PREFIXES = ("@ogevm/contracts/", "@ogevm/")
#: Hardhat's artifact format tag.
ARTIFACT_FORMAT = "hh-sol-artifact-1"
SETTINGS = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "viaIR": True,
    "metadata": {"bytecodeHash": "none", "appendCBOR": False},
    "outputSelection": {"*": {"*": [
        "abi", "evm.bytecode.object", "evm.bytecode.linkReferences",
        "evm.deployedBytecode.object", "evm.deployedBytecode.linkReferences",
    ]}},
}
_DRIVER = Path(__file__).resolve().parent / "solc_standard_json.js"


class CompileError(OgevmError):
    """solc rejected the sources; the message is solc's formatted diagnostics."""


@dataclass(frozen=True)
class Artifact:
    """One compiled contract, interface or library."""

    contract_name: str
    source_name: str
    abi: list
    bytecode: str
    deployed_bytecode: str
    link_references: dict
    deployed_link_references: dict

    def to_json(self) -> dict:
        """The artifact in Hardhat's ``hh-sol-artifact-1`` layout."""
        return {
            "_format": ARTIFACT_FORMAT,
            "contractName": self.contract_name,
            "sourceName": self.source_name,
            "abi": self.abi,
            "bytecode": self.bytecode,
            "deployedBytecode": self.deployed_bytecode,
            "linkReferences": self.link_references,
            "deployedLinkReferences": self.deployed_link_references,
        }


@dataclass(frozen=True)
class Compilation:
    """What a successful compilation produced: the artifacts and solc's warnings."""

    artifacts: tuple[Artifact, ...]
    warnings: tuple[str, ...]


def pinned_solc_version() -> str:
    """The solc version ogevm's contracts are built with (from ``solidity/package.json``)."""
    package = json.loads(resource(SOLIDITY, "package.json").read_text())
    return package["devDependencies"]["solc"]


def find_solc(base: Path) -> Path:
    """The folder of the pinned solc npm package.

    Raises :class:`~ogevm.errors.OgevmError` saying how to install it if no ``node_modules``
    of ``base`` or its parents (nor of an ogevm checkout) has that version.
    """
    version = pinned_solc_version()
    candidates = [folder / "node_modules" / "solc" for folder in (base, *base.parents)]
    candidates.append(data_root() / SOLIDITY / "node_modules" / "solc")
    others = []
    for candidate in candidates:
        package = candidate / "package.json"
        if not package.is_file():
            continue
        found = json.loads(package.read_text()).get("version")
        if found == version:
            return candidate
        others.append(f"{found} in {candidate}")
    elsewhere = f" (found only {'; '.join(others)})" if others else ""
    raise OgevmError(f"solc-js {version} not found{elsewhere}: run `npm install --save-dev solc@{version}` "
                     "in your project folder")


def compile_files(files: Sequence[Path], base: Path) -> Compilation:
    """Compile ``files`` (under ``base``) with the pinned solc-js.

    Raises :class:`~ogevm.errors.OgevmError` for a missing file, a file outside ``base``,
    or Node.js / solc-js not installed, and :class:`CompileError` with solc's formatted
    messages if the sources do not compile.
    """
    base = base.resolve()
    sources = {}
    for file in map(Path, files):
        content = _read_source(file)
        sources[_source_name(file, base)] = {"content": content}
    if not sources:
        raise OgevmError("no source files given")
    node = shutil.which("node")
    if node is None:
        raise OgevmError("Node.js not found (solc-js runs on it): install Node.js from "
                         f"https://nodejs.org, then run `npm install --save-dev solc@{pinned_solc_version()}`")
    solc = find_solc(base)
    shipped = str(resource(SOLIDITY))
    roots = [*([prefix, shipped] for prefix in OGEVM_IMPORT_PREFIXES), ["", str(base)], ["", str(base / "node_modules")]]
    request = json.dumps({"language": "Solidity", "sources": sources, "settings": SETTINGS})
    result = subprocess.run([node, str(_DRIVER), str(solc), json.dumps(roots)], input=request,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise OgevmError(f"solc-js failed: {result.stderr.strip() or f'exit status {result.returncode}'}")
    try:
        output = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise OgevmError(f"solc-js printed no Standard JSON output: {result.stdout[:200]!r}") from exc
    return _compilation(output)


def write_artifacts(artifacts: Sequence[Artifact], out: Path) -> list[Path]:
    """Write each artifact to ``out/<sourceName>/<contractName>.json`` (Hardhat's layout)."""
    written = []
    for artifact in artifacts:
        path = out / artifact.source_name / f"{artifact.contract_name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(artifact.to_json(), indent=2) + "\n")
        written.append(path)
    return written


def _source_name(path: Path, base: Path) -> str:
    resolved = path.resolve()
    if not resolved.is_relative_to(base):
        raise OgevmError(f"{path} is outside {base}: compile from a folder that contains every source")
    return resolved.relative_to(base).as_posix()


def _read_source(path: Path) -> str:
    if not path.exists():
        raise OgevmError(f"{path}: no such file")
    if not path.is_file():
        raise OgevmError(f"{path} is not a file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise OgevmError(f"{path} is not UTF-8 text: {exc}") from exc


def _compilation(output: dict) -> Compilation:
    diagnostics = output.get("errors", [])
    errors = [d.get("formattedMessage") or d["message"] for d in diagnostics if d["severity"] == "error"]
    if errors:
        raise CompileError("\n".join(m.rstrip() for m in errors))
    warnings = tuple(d.get("formattedMessage") or d["message"] for d in diagnostics if d["severity"] != "error")
    artifacts = tuple(
        Artifact(name, source, contract["abi"],
                 "0x" + contract["evm"]["bytecode"]["object"],
                 "0x" + contract["evm"]["deployedBytecode"]["object"],
                 contract["evm"]["bytecode"]["linkReferences"],
                 contract["evm"]["deployedBytecode"]["linkReferences"])
        for source, contracts in sorted(output.get("contracts", {}).items())
        for name, contract in sorted(contracts.items()))
    return Compilation(artifacts, warnings)


__all__ = ["Artifact", "Compilation", "CompileError", "compile_files", "find_solc", "pinned_solc_version",
           "write_artifacts"]
