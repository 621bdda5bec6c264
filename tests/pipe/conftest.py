"""Fixtures of the PIPE tests (helpers live in ``pipe_helpers``)."""

from __future__ import annotations

import pytest

from ogevm.pipe.pipeline import Pipeline

from pipe_helpers import NODE_KEY


@pytest.fixture
def pipeline(chain):
    """A PIPE pipeline on the ``chain`` fixture, signing as the registered development node."""
    return Pipeline(chain, NODE_KEY)
