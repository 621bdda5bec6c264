"""Inference forks of py-evm: Cancun and Prague with the precompiles at ``0x…F4``, ``0x…F5``
and ``0x…F6``, and the scheduled tasks at the top of each block.

:func:`with_inference` derives a fork from any py-evm VM by adding to its inherited
precompile table (as each py-evm fork does) and by giving each transaction a context
that knows the transaction hash and counts inference calls. The results provider is
a class attribute of the state, set with ``configure``: :meth:`with_provider`. Block
pre-processing, which both block building and py-evm's ``import_block`` run, ends with
the due tasks of the genesis scheduler (:mod:`ogevm.vm.scheduler`).
"""

from __future__ import annotations

import itertools
from typing import Type

from eth.abc import BlockAPI, SignedTransactionAPI, TransactionContextAPI
from eth.vm.base import VM
from eth.vm.forks.cancun import CancunVM
from eth.vm.forks.prague import PragueVM

from ogevm.abc import ResultsProvider
from ogevm.constants import (
    ATTESTATION_PRECOMPILE_ADDRESS,
    INFERENCE_PRECOMPILE_ADDRESS,
    PREPROCESSING_PRECOMPILE_ADDRESS,
)
from ogevm.precompile.attestation import attestation_precompile
from ogevm.precompile.inference import inference_precompile
from ogevm.precompile.preprocessing import preprocessing_precompile
from ogevm.records import ZERO_HASH, RequestId
from ogevm.vm.scheduler import TaskRun, run_due_tasks


def with_inference(base: Type[VM]) -> Type[VM]:
    """A subclass of ``base`` whose computations serve the inference precompile."""
    base_state = base._state_class
    base_computation = base_state.computation_class
    base_context = base_state.transaction_context_class

    class Computation(base_computation):
        _precompiles = {
            **base_computation.get_precompiles(),
            INFERENCE_PRECOMPILE_ADDRESS: inference_precompile,
            ATTESTATION_PRECOMPILE_ADDRESS: attestation_precompile,
            PREPROCESSING_PRECOMPILE_ADDRESS: preprocessing_precompile,
        }

    class TransactionContext(base_context):
        """Adds the transaction hash and the count of inference calls so far."""

        inference_tx_hash: bytes = ZERO_HASH

        def next_inference_id(self) -> RequestId:
            calls = self.__dict__.setdefault("_inference_calls", itertools.count())
            return RequestId(self.inference_tx_hash, next(calls))

    class State(base_state):
        computation_class = Computation
        transaction_context_class = TransactionContext
        inference_provider: ResultsProvider | None = None

        def get_transaction_context(self, transaction: SignedTransactionAPI) -> TransactionContextAPI:
            context = super().get_transaction_context(transaction)
            context.inference_tx_hash = getattr(transaction, "hash", ZERO_HASH)
            return context

    class InferenceVM(base):
        fork = f"{base.fork}+inference"
        _state_class = State
        #: The scheduled calls this VM's block ran, in order (set by block pre-processing).
        scheduled_runs: tuple[TaskRun, ...] = ()

        def block_preprocessing(self, block: BlockAPI) -> None:
            super().block_preprocessing(block)
            self.scheduled_runs = tuple(run_due_tasks(self.state))

        @classmethod
        def with_provider(cls, provider: ResultsProvider) -> Type[VM]:
            """This VM with ``provider`` answering the precompile."""
            return cls.configure(_state_class=cls._state_class.configure(inference_provider=provider))

    prefix = base.__name__.removesuffix("VM")
    for cls, suffix in ((Computation, "Computation"), (TransactionContext, "TransactionContext"),
                        (State, "State"), (InferenceVM, "VM")):
        cls.__name__ = cls.__qualname__ = f"Inference{prefix}{suffix}"
    return InferenceVM


InferenceCancunVM = with_inference(CancunVM)
InferencePragueVM = with_inference(PragueVM)
