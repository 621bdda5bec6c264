"""pytest fixtures for SolidML contracts: an in-process chain, a dev node, accounts, contracts,
models, mocks and Hypothesis inputs (guide: ``docs/TESTING.md``).

Installed with ogevm and loaded by pytest through the ``pytest11`` entry point. It is inert
until a test asks for one of its fixtures: ogevm itself is imported only then, so collecting a
suite that does not use it costs nothing.

* ``ogevm_chain``: a fresh :class:`~ogevm.vm.chain.DevChain` per test (a new chain costs a few
  milliseconds, less than a snapshot and revert would), models run INLINE; its mocks
  (``mock_inference``) end with it.
* ``ogevm_accounts``: the ten funded development accounts.
* ``ogevm_deploy``: ``deploy(artifact, *args, sender=0)`` on ``ogevm_chain``; ``artifact`` is a
  path to an ``ogevm compile`` artifact or a ``ContractInterface``.
* ``ogevm_add_model``: ``add(path or ONNX bytes) -> CID`` on ``ogevm_chain``.
* ``ogevm_inputs``: ``inputs(cid)``, a Hypothesis strategy of valid inputs for a model of
  ``ogevm_chain`` (:func:`ogevm.testing.valid_input_for`), to draw from with ``st.data()``.
* ``ogevm_node``: a dev node serving JSON-RPC on a free port, shared by the session (its data in
  pytest's temporary folder); each test runs inside ``evm_snapshot`` / ``evm_revert`` and its
  mocks are cleared after it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def ogevm_chain():
    """A fresh in-process development chain (INLINE inference)."""
    from ogevm.vm.chain import DevChain

    return DevChain()


@pytest.fixture
def ogevm_accounts():
    """The ten funded development accounts (anvil's and Hardhat's)."""
    from ogevm.vm.accounts import DEV_ACCOUNTS

    return DEV_ACCOUNTS


@pytest.fixture
def ogevm_deploy(ogevm_chain):
    """``deploy(artifact, *args, sender=0)``: deploy a compiled contract, get a ``DeployedContract``."""
    from ogevm.abi.contract import ContractInterface

    def deploy(artifact: ContractInterface | Path | str, *args: Any, sender: int = 0):
        interface = artifact if isinstance(artifact, ContractInterface) else _load_artifact(Path(artifact))
        return ogevm_chain.deploy(interface, *args, sender=sender)

    return deploy


def _load_artifact(path: Path):
    """The contract of an ``ogevm compile`` artifact; a readable ``ValueError`` for anything else."""
    import json

    from ogevm.abi.contract import ContractInterface

    try:
        return ContractInterface.from_artifact(path)
    except FileNotFoundError:
        raise ValueError(f"no artifact at {path}: compile the contract with `ogevm compile`") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ValueError(f"{path} is not a contract artifact of `ogevm compile` ({type(exc).__name__}: {exc})") from exc


@pytest.fixture
def ogevm_add_model(ogevm_chain):
    """``add(path or ONNX bytes) -> CID``: add a model to ``ogevm_chain``."""

    def add(model: Path | str | bytes) -> str:
        return ogevm_chain.add_model(model).cid

    return add


@pytest.fixture
def ogevm_inputs(ogevm_chain):
    """``inputs(cid)``: a Hypothesis strategy of inputs the model ``cid`` accepts."""
    from ogevm.testing import valid_input_for

    def inputs(cid: str, batch: int | None = 1):
        info = ogevm_chain.models.get(cid)
        if info is None:
            raise ValueError(f"unknown model CID {cid!r}: add it first (ogevm_add_model)")
        return valid_input_for(info, batch=batch)

    return inputs


class ServedNode:
    """A :class:`~ogevm.node.node.DevNode` with its JSON-RPC server on ``url`` (HTTP and WebSocket)."""

    def __init__(self, data_dir: Path) -> None:
        from ogevm.node.node import DevNode, NodeConfig
        from ogevm.node.rpc import RpcMethods
        from ogevm.node.server import ThreadedServer

        # its files (chain, models, ZKML circuits) live in pytest's temporary folder, not in the system's
        self.node = DevNode(NodeConfig(data_dir=data_dir, sim_workers=0)).start()
        try:
            self._served = ThreadedServer(RpcMethods(self.node))
        except BaseException:
            self.node.stop()
            raise
        self.url = self._served.url.rstrip("/")

    @property
    def chain(self):
        return self.node.chain

    def rpc(self, method: str, *params: Any) -> Any:
        """The result of one JSON-RPC call; raises :class:`RuntimeError` with the node's error."""
        import json
        import urllib.request

        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']['message']}")
        return answer["result"]

    def stop(self) -> None:
        self._served.stop()
        self.node.stop()


@pytest.fixture(scope="session")
def _ogevm_served_node(tmp_path_factory):
    served = ServedNode(tmp_path_factory.mktemp("ogevm-node"))
    yield served
    served.stop()


@pytest.fixture
def ogevm_node(_ogevm_served_node):
    """The session's dev node (``.url``, ``.rpc(method, *params)``, ``.node``), reverted to its
    state before the test and cleared of mocks afterwards."""
    snapshot = _ogevm_served_node.rpc("evm_snapshot")
    yield _ogevm_served_node
    _ogevm_served_node.rpc("og_clearMocks")
    _ogevm_served_node.rpc("evm_revert", snapshot)
