"""The public API is ``ogevm.__all__``: every name resolves, to the object its defining module
holds, and ``import ogevm`` alone stays cheap (no numpy, onnxruntime or py-evm)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import ogevm

HEAVY_MODULES = ("numpy", "onnxruntime", "onnx", "eth", "ogevm.client", "ogevm.vm")


def run_python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout


@pytest.mark.parametrize("name", sorted(ogevm.__all__))
def test_every_public_name_imports(name):
    value = getattr(ogevm, name)
    module = ogevm._MODULE_OF.get(name)
    if module is not None:  # the same object the defining module holds, not a copy
        assert value is getattr(sys.modules[module], name)


def test_from_import_star_gives_every_public_name():
    namespace: dict = {}
    exec("from ogevm import *", namespace)
    assert set(ogevm.__all__) <= set(namespace)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'InlinProvider'"):
        ogevm.InlinProvider  # noqa: B018


def test_the_client_result_and_the_provider_result_are_distinct_names():
    from ogevm.client import CallResult, InferenceResult as former_name
    from ogevm.records import InferenceResult

    assert ogevm.CallResult is CallResult is former_name
    assert ogevm.InferenceResult is InferenceResult is not CallResult


def test_import_ogevm_loads_no_heavy_dependency():
    loaded = run_python(
        "import sys, ogevm; "
        f"print(' '.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))").split()
    assert loaded == []


def test_the_docstring_names_every_public_name():
    """The module docstring is the list of what is public: keep it in step with ``__all__``."""
    missing = [name for name in ogevm.__all__ if name != "__version__" and name not in ogevm.__doc__]
    assert missing == []
