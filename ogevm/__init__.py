"""ogevm: py-evm with native ONNX inference and PIPE, parallelized inference pre-execution."""

__version__ = "0.1.0"

__all__ = ["Client", "InferenceResult", "__version__"]


def __getattr__(name: str):
    # ``from ogevm import Client`` without importing the client (and numpy) with the package
    if name in ("Client", "InferenceResult"):
        from ogevm import client

        return getattr(client, name)
    raise AttributeError(f"module 'ogevm' has no attribute {name!r}")
