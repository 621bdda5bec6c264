"""ogevm: py-evm with native ONNX inference and PIPE, parallelized inference pre-execution."""

__version__ = "0.1.0"
