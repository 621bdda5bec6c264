"""Read-only message calls on a state: ``eth_call`` and registry reads."""

from __future__ import annotations

from eth._utils.address import generate_contract_address
from eth.abc import ComputationAPI, StateAPI
from eth.constants import CREATE_CONTRACT_ADDRESS
from eth.vm.message import Message

from ogevm.abi.codec import decode_revert_reason
from ogevm.abi.contract import Function
from ogevm.errors import TransactionFailed

CALL_GAS = 30_000_000
ZERO_ADDRESS = b"\x00" * 20


def execute_call(state: StateAPI, to: bytes | None, data: bytes, sender: bytes = ZERO_ADDRESS, value: int = 0,
                 gas: int = CALL_GAS) -> ComputationAPI:
    """The computation of a call on ``state`` (``to=None``: run ``data`` as init code, as a
    deployment would); the state is left unchanged."""
    snapshot = state.snapshot()
    try:
        context = state.get_transaction_context_class()(gas_price=0, origin=sender)
        if value:
            state.delta_balance(sender, value)  # calls are not charged; fund the transfer
        if to is None:
            address = generate_contract_address(sender, state.get_nonce(sender))
            message = Message(gas=gas, to=CREATE_CONTRACT_ADDRESS, sender=sender, value=value, data=b"",
                              code=data, create_address=address)
            return state.computation_class.apply_create_message(state, message, context)
        message = Message(gas=gas, to=to, sender=sender, value=value, data=data, code=state.get_code(to))
        return state.computation_class.apply_message(state, message, context)
    finally:
        state.revert(snapshot)


def call_function(state: StateAPI, to: bytes, function: Function, *args) -> tuple:
    """Decoded outputs of ``function(*args)`` called on ``to``. Raises TransactionFailed."""
    computation = execute_call(state, to, function.encode(*args))
    if computation.is_error:
        raise TransactionFailed(decode_revert_reason(computation.output), computation.output)
    return function.decode(computation.output)
