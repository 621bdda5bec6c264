"""Fixtures of the node tests (helpers live in ``node_helpers``): real node subprocesses."""

from __future__ import annotations

import pytest

from node_helpers import NodeProcess, fund, web3_for


@pytest.fixture(scope="session")
def shared_node(tmp_path_factory) -> NodeProcess:
    """One in-memory automine node shared by the tests that only need a working chain.

    Each test that sends transactions uses its own accounts (:func:`funded_key`), so the
    tests do not depend on each other's nonces.
    """
    process = NodeProcess(tmp_path_factory.mktemp("node") / "node.log").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def node(request, tmp_path_factory) -> NodeProcess:
    """The shared node; a node of its own for a module that sets ``OWN_NODE = True`` (its
    state changes, time travel or snapshots, would leak into other modules)."""
    if not getattr(request.module, "OWN_NODE", False):
        yield request.getfixturevalue("shared_node")
        return
    process = NodeProcess(tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]) / "node.log").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def w3(node):
    """A web3.py client of :func:`node` over HTTP."""
    return web3_for(node)


@pytest.fixture
def funded_key(node) -> str:
    """A fresh funded account on the node."""
    return fund(node)
