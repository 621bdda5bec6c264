"""``eth_call``, ``eth_estimateGas`` and ``eth_createAccessList``: calls run on a throwaway
state after the block named, models INLINE."""

from __future__ import annotations

from eth.vm.chain_context import ChainContext
from eth_utils import ValidationError

from ogevm.abi.codec import decode_revert_reason
from ogevm.node import params
from ogevm.node.params import BlockRef, CallArgs, ParamError, takes
from ogevm.node.rpc.base import BLOCK, CALL, EXECUTION_REVERTED, Namespace, RpcError, data, qty
from ogevm.pipe.admission import floor_gas
from ogevm.vm.calls import CALL_GAS, execute_call

#: EIP-2930: an access list pays 2,400 per address and 1,900 per storage key, and spares the
#: 2,500 (account) or 2,000 (slot) extra of a first, cold access: 100 gas less per cold entry;
#: an address that starts warm anyway (the recipient) only costs its 2,400.
ACCESS_LIST_ADDRESS_GAS = 2_400
ACCESS_LIST_SAVING_PER_ENTRY = 100


def _recording(state_class):
    """A subclass of ``state_class`` that keeps each address and slot it warms (EIP-2929)."""

    class Recording(state_class):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.warmed: dict[bytes, set[int]] = {}

        def mark_address_warm(self, address):
            self.warmed.setdefault(address, set())
            super().mark_address_warm(address)

        def mark_storage_warm(self, address, slot):
            self.warmed.setdefault(address, set()).add(slot)
            super().mark_storage_warm(address, slot)

    return Recording


class CallMethods(Namespace):
    @takes(CALL, BLOCK)
    def rpc_eth_call(self, call, block):
        computation = self._execute(call, block)
        if computation.is_error:
            raise self._revert(computation)
        return data(computation.output)

    @takes(CALL, BLOCK)
    def rpc_eth_estimateGas(self, call, block):
        return qty(self._estimate_gas(call, block))

    @takes(CALL, BLOCK)
    def rpc_eth_createAccessList(self, call, block):
        """geth's answer: the addresses and slots the call touches (not the sender, the
        recipient, the coinbase or a precompile, which start warm, unless their slots are
        touched) and the gas the transaction uses with that list."""
        state = self._call_state(block, _recording)
        computation = self._run(state, call, self._gas_cap(call) - _intrinsic_gas(call))
        if computation.is_error:
            raise self._revert(computation)
        warm = {call.sender or self.chain.accounts[0].address, call.to, state.coinbase,
                *state.computation_class.get_precompiles()}
        accessed = {a: slots for a, slots in state.warmed.items() if slots or a not in warm}
        listed_warm = sum(1 for a in accessed if a in warm)
        cold = len(accessed) - listed_warm + sum(len(slots) for slots in accessed.values())
        used = _gas_used(call, computation)
        used += ACCESS_LIST_ADDRESS_GAS * listed_warm - ACCESS_LIST_SAVING_PER_ENTRY * cold
        return {"accessList": [{"address": data(a), "storageKeys": [data(s.to_bytes(32, "big")) for s in sorted(slots)]}
                               for a, slots in sorted(accessed.items())],
                "gasUsed": qty(max(used, floor_gas(call.data)))}

    # --- helpers ----------------------------------------------------------------------------------
    def _gas_cap(self, call: CallArgs) -> int:
        """The gas a call may use: its own ``gas``, at most the block gas limit (geth caps
        calls too), so no call runs unbounded."""
        limit = self.chain.head.gas_limit
        return limit if call.gas is None else min(call.gas, limit)

    def _call_state(self, block: BlockRef, state_class=None):
        """A throwaway state after ``block``, at the timestamp the next block would get;
        ``state_class(base)`` derives the state's class if given."""
        header = self._header(block)
        vm_class = self.chain.vm_class
        if state_class is not None:
            vm_class = vm_class.configure(_state_class=state_class(vm_class._state_class))
        chain = self.chain.chain
        child = vm_class.create_header_from_parent(header, timestamp=self.node.clock.next_block(header.timestamp))
        return vm_class(header=child, chaindb=chain.chaindb, chain_context=ChainContext(chain.chain_id),
                        consensus_context=chain.consensus_context).state

    def _run(self, state, call: CallArgs, gas: int):
        sender = call.sender or self.chain.accounts[0].address
        for who, address in (("sender", sender), ("recipient", call.to)):
            if address is not None and call.value > params.UINT256_MAX - state.get_balance(address):
                raise ParamError("transaction.value", f"the {who}'s balance plus value is above 2^256-1")
        try:
            return execute_call(state, call.to, call.data, sender, call.value, max(gas, 0))
        except ValidationError as exc:  # py-evm refuses the state a call would make (a balance above 2^256-1)
            raise RpcError(EXECUTION_REVERTED, f"execution failed: {exc}") from exc

    def _execute(self, call: CallArgs, block: BlockRef, gas: int | None = None):
        if gas is None:
            gas = self._gas_cap(call) - _intrinsic_gas(call) if call.gas is not None else CALL_GAS
        return self._run(self._call_state(block), call, gas)

    def _succeeds(self, call: CallArgs, block: BlockRef, gas: int) -> bool:
        return not self._execute(call, block, gas - _intrinsic_gas(call)).is_error

    def _estimate_gas(self, call: CallArgs, block: BlockRef) -> int:
        cap = self._gas_cap(call)
        computation = self._execute(call, block, cap - _intrinsic_gas(call))
        if computation.is_error:
            raise self._revert(computation)
        low = max(_gas_used(call, computation), floor_gas(call.data))
        if self._succeeds(call, block, low):  # the exact amount is enough (plain transfers: 21000)
            return low
        # the 63/64 rule can make the exact amount fail: search upwards, checking by execution
        high = cap
        candidate = min(high, low * 64 // 63 + 2_300)
        if self._succeeds(call, block, candidate):
            high = candidate
        while high - low > 1_000:
            middle = (low + high) // 2
            if self._succeeds(call, block, middle):
                high = middle
            else:
                low = middle
        return high

    @staticmethod
    def _revert(computation) -> RpcError:
        reason = decode_revert_reason(computation.output)
        message = f"execution reverted: {reason}" if reason else "execution reverted"
        if computation.output:
            return RpcError(EXECUTION_REVERTED, message, data(computation.output))
        return RpcError(EXECUTION_REVERTED, f"{message} ({type(computation.error).__name__})")


def _gas_used(call: CallArgs, computation) -> int:
    """The gas a transaction doing ``call`` would use: intrinsic and execution, less the refund."""
    used = computation.get_gas_used()
    return _intrinsic_gas(call) + used - min(computation.get_gas_refund(), used // 5)


def _intrinsic_gas(call: CallArgs) -> int:
    zeros = call.data.count(0)
    gas = 21_000 + 4 * zeros + 16 * (len(call.data) - zeros)
    if call.to is None:
        gas += 32_000 + 2 * ((len(call.data) + 31) // 32)
    return gas
