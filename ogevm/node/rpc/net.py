"""``web3_*`` and ``net_*``: who the node is."""

from __future__ import annotations

from eth_utils import keccak

from ogevm import __version__
from ogevm.node import params
from ogevm.node.params import Param, takes
from ogevm.node.rpc.base import Namespace, data


class NetMethods(Namespace):
    def rpc_web3_clientVersion(self):
        return f"ogevm/{__version__}"

    @takes(Param("data", params.data))
    def rpc_web3_sha3(self, payload):
        return data(keccak(payload))

    def rpc_net_version(self):
        return str(self.chain.chain.chain_id)

    def rpc_net_listening(self):
        return True
