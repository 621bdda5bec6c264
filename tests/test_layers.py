"""The package's layers: a module imports only from its own layer or the ones below.

records/abi/models -> precompile -> vm -> verify -> pipe -> node -> the entry points. Read
from the source with ``ast``: imports under ``if TYPE_CHECKING:`` are annotations only and
do not count; imports inside functions do (they run).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import ogevm

PACKAGE = Path(ogevm.__file__).parent

#: Rank of each top-level module or subpackage of ``ogevm``, lowest first.
LAYERS = {
    **dict.fromkeys(("", "constants", "errors", "resources", "abi", "tensors", "records", "fixtures",
                     "abc", "models", "llm", "compile"), 0),
    "precompile": 1,
    "vm": 2,
    "verify": 3,
    "pipe": 4,
    **dict.fromkeys(("node", "explorer"), 5),
    **dict.fromkeys(("client", "demo", "bench", "cli", "pytest_plugin", "testing"), 6),
}

#: Upward imports not removed yet: the attestation precompile decodes TEE documents with
#: ``verify.tee``, and INLINE ZKML proves with ``verify.zkml``. The list may only shrink.
KNOWN_CROSSINGS = {
    ("ogevm.precompile.attestation", "ogevm.verify.tee"),
    ("ogevm.precompile.modes", "ogevm.verify.zkml"),
}


def module_name(path: Path) -> str:
    parts = ("ogevm", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path) for path in PACKAGE.rglob("*.py")}


def runtime_imports(source: str, in_functions: bool = True) -> set[str]:
    """The ``ogevm`` modules a source imports when it runs as a module (not under
    ``TYPE_CHECKING`` nor ``__name__ == "__main__"``); those imported inside functions only if
    ``in_functions``."""
    tree = ast.parse(source)
    skipped = {id(node) for block in ast.walk(tree)
               if (isinstance(block, ast.If) and any(word in ast.unparse(block.test)
                                                     for word in ("TYPE_CHECKING", "__main__")))
               or (not in_functions and isinstance(block, (ast.FunctionDef, ast.AsyncFunctionDef)))
               for node in ast.walk(block)}
    imported = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # ``from package import module`` imports the module
            imported.update(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in MODULES
                            else node.module for alias in node.names)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    return {name for name in imported if name == "ogevm" or name.startswith("ogevm.")}


def rank(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    if top not in LAYERS:
        raise AssertionError(f"{module} is in no layer: add ogevm.{top} to LAYERS in {Path(__file__).name}")
    return LAYERS[top]


def upward_imports(module: str, source: str) -> set[tuple[str, str]]:
    return {(module, target) for target in runtime_imports(source) if rank(target) > rank(module)}


def all_imports(in_functions: bool = True) -> dict[str, set[str]]:
    return {module_name(path): runtime_imports(path.read_text(), in_functions)
            for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_imports_only_its_layer_or_below():
    upward = set()
    for module, targets in all_imports().items():
        upward |= {(module, target) for target in targets if rank(target) > rank(module)}
    assert upward - KNOWN_CROSSINGS == set()
    assert KNOWN_CROSSINGS - upward == set(), "a known crossing is gone: remove it from KNOWN_CROSSINGS"


def test_an_upward_import_is_reported_and_a_typing_one_is_not():
    source = ("from typing import TYPE_CHECKING\nfrom ogevm.records import RequestId\n"
              "if TYPE_CHECKING:\n    from ogevm.pipe.worker import Job\n"
              "def f():\n    from ogevm.verify.registry import RegistryView\n")
    assert upward_imports("ogevm.vm.example", source) == {("ogevm.vm.example", "ogevm.verify.registry")}
    with pytest.raises(AssertionError, match="add ogevm.nowhere to LAYERS"):
        upward_imports("ogevm.nowhere", source)


def entered(importer: str, target: str) -> list[str]:
    """The modules that importing ``target`` from ``importer`` runs: ``target`` and each of
    its packages that ``importer`` is not already inside (their ``__init__`` runs first)."""
    parts = target.split(".")
    packages = [".".join(parts[:i]) for i in range(2, len(parts))]
    return [p for p in packages if importer != p and not importer.startswith(p + ".")] + [target]


def test_no_import_cycle_between_modules():
    """At import time: imports inside functions run later, once their modules are loaded."""
    graph = {module: {package for target in targets for package in entered(module, target)}
             for module, targets in all_imports(in_functions=False).items()}
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if target not in graph:
                continue  # a name imported from a package, not a module
            if state.get(target) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(target):] + [target]))
            if target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


@pytest.mark.parametrize("first, second", [("ogevm.verify.registry", "ogevm.vm.chain"),
                                           ("ogevm.vm.chain", "ogevm.verify.registry")])
def test_chain_and_registry_import_in_either_order(first, second):
    code = f"import {first}, {second}"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
