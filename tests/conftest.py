"""Shared fixtures: fixture models and contracts, and a dev chain that knows them."""

from __future__ import annotations

import pytest

from ogevm.fixtures import FIXTURES, fixture_contract
from ogevm.models.store import ModelStore
from ogevm.vm.chain import DevChain

MODEL_NAMES = sorted(p.stem for p in (FIXTURES / "models").glob("*.onnx"))


@pytest.fixture(scope="session")
def fixture_store() -> ModelStore:
    """Every fixture model, in one in-memory store."""
    store = ModelStore()
    for name in MODEL_NAMES:
        store.add_file(FIXTURES / "models" / f"{name}.onnx")
    return store


@pytest.fixture(scope="session")
def cids(fixture_store) -> dict[str, str]:
    """CID of each fixture model by file stem."""
    from ogevm.models.cid import compute_cid

    return {name: compute_cid((FIXTURES / "models" / f"{name}.onnx").read_bytes()) for name in MODEL_NAMES}


@pytest.fixture
def chain(fixture_store) -> DevChain:
    """A fresh development chain whose store holds every fixture model."""
    return DevChain(fixture_store)


@pytest.fixture
def caller(chain):
    """The InferenceCaller harness contract, deployed."""
    return chain.deploy(fixture_contract("InferenceCaller"))


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray cluster shared by the session's Ray tests (Ray backends join it as it is)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()
