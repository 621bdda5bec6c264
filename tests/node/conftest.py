"""Fixtures of the node tests (helpers live in ``node_helpers``): real node subprocesses."""

from __future__ import annotations

import pytest

from node_helpers import NodeProcess, fund


@pytest.fixture(scope="session")
def node(tmp_path_factory) -> NodeProcess:
    """One in-memory automine node shared by the tests that only need a working chain.

    Each test that sends transactions uses its own accounts (:func:`funded_key`), so the
    tests do not depend on each other's nonces.
    """
    process = NodeProcess(tmp_path_factory.mktemp("node") / "node.log").start()
    yield process
    process.stop()


@pytest.fixture
def funded_key(node) -> str:
    """A fresh funded account on the shared node."""
    return fund(node)
