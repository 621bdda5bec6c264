"""The local dev node: JSON-RPC over HTTP with PIPE inside, stored in LevelDB."""

from ogevm.node.node import DevNode, NodeConfig

__all__ = ["DevNode", "NodeConfig"]
