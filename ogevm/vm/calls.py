"""Read-only message calls on a state: ``eth_call`` and registry reads."""

from __future__ import annotations

from eth.abc import ComputationAPI, StateAPI
from eth.vm.message import Message

from ogevm.abi.codec import decode_revert_reason
from ogevm.abi.contract import Function
from ogevm.errors import TransactionFailed

CALL_GAS = 30_000_000
ZERO_ADDRESS = b"\x00" * 20


def execute_call(state: StateAPI, to: bytes, data: bytes, sender: bytes = ZERO_ADDRESS, value: int = 0,
                 gas: int = CALL_GAS) -> ComputationAPI:
    """The computation of a call on ``state``; the state is left unchanged."""
    snapshot = state.snapshot()
    try:
        message = Message(gas=gas, to=to, sender=sender, value=value, data=data, code=state.get_code(to))
        context = state.get_transaction_context_class()(gas_price=0, origin=sender)
        if value:
            state.delta_balance(sender, value)  # calls are not charged; fund the transfer
        return state.computation_class.apply_message(state, message, context)
    finally:
        state.revert(snapshot)


def call_function(state: StateAPI, to: bytes, function: Function, *args) -> tuple:
    """Decoded outputs of ``function(*args)`` called on ``to``. Raises TransactionFailed."""
    computation = execute_call(state, to, function.encode(*args))
    if computation.is_error:
        raise TransactionFailed(decode_revert_reason(computation.output), computation.output)
    return function.decode(computation.output)
