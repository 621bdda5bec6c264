"""py-evm forks with the inference precompile, and an in-process chain built on them."""

from ogevm.vm.forks import InferenceCancunVM, InferencePragueVM, with_inference

__all__ = ["InferenceCancunVM", "InferencePragueVM", "with_inference"]
