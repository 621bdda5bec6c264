"""The dev controls of anvil and the Hardhat node: ``evm_*``, ``anvil_*``, ``hardhat_*``.

Each control is served under the names both tools give it, with their parameters; where the
two answer differently the ``hardhat_`` name answers ``true`` and the ``anvil_`` one ``null``.
``evm_setIntervalMining`` takes milliseconds (Hardhat), ``anvil_setIntervalMining`` seconds
(anvil). Documented in ``docs/RPC.md``.
"""

from __future__ import annotations

import functools

from ogevm.node import params
from ogevm.node.clock import MAX_TIMESTAMP
from ogevm.node.dump import pack
from ogevm.node.params import Param, ParamError, takes
from ogevm.node.rpc.base import ADDRESS, Namespace, data, qty

#: Most blocks one ``anvil_mine`` / ``hardhat_mine`` builds (each is a real py-evm block).
MAX_MINE_BLOCKS = 1_000
#: Interval mining: at least a second (a block costs milliseconds in py-evm), at most a year.
MIN_INTERVAL_SECONDS, MAX_INTERVAL_SECONDS = 1, 365 * 86_400

SNAPSHOT_ID = Param("snapshotId", params.uint256)
TIMESTAMP = Param("timestamp", params.uint64)
ENABLED = Param("enabled", params.boolean)


def _answering_true(method):
    """The ``hardhat_`` twin of an ``anvil_`` method: same params, answers true."""

    @functools.wraps(method)  # the same signature and declared params
    def twin(self, *args):
        method(self, *args)
        return True

    return twin


class DevMethods(Namespace):
    # --- snapshots ---------------------------------------------------------------------------
    def rpc_evm_snapshot(self):
        return qty(self.node.snapshot())

    @takes(SNAPSHOT_ID)
    def rpc_evm_revert(self, snapshot_id):
        return self.node.revert(snapshot_id)

    rpc_anvil_snapshot, rpc_anvil_revert = rpc_evm_snapshot, rpc_evm_revert

    # --- mining ------------------------------------------------------------------------------
    @takes(Param("timestamp", params.uint64, None))
    def rpc_evm_mine(self, timestamp):
        if timestamp is not None:
            self._check_next_timestamp(timestamp, "timestamp")
        self.node.mine(timestamp=timestamp)
        return "0x0"

    @takes(Param("blocks", params.uint64, 1), Param("interval", params.uint64, 1))
    def rpc_anvil_mine(self, blocks, interval):
        if blocks > MAX_MINE_BLOCKS:
            raise ParamError("blocks", f"at most {MAX_MINE_BLOCKS} blocks at a time")
        if self.node.clock.next_block(self.chain.head.timestamp) + blocks * max(interval, 1) > MAX_TIMESTAMP:
            raise ParamError("interval", f"the blocks would be stamped after {MAX_TIMESTAMP} (the year 3000)")
        if blocks:
            self.node.mine(blocks, interval)

    rpc_hardhat_mine = _answering_true(rpc_anvil_mine)

    @takes(ENABLED)
    def rpc_anvil_setAutomine(self, enabled):
        self.node.set_mining(automine=enabled)

    rpc_evm_setAutomine = _answering_true(rpc_anvil_setAutomine)

    def rpc_anvil_getAutomine(self):
        return self.node.automine

    rpc_hardhat_getAutomine = rpc_anvil_getAutomine

    @takes(Param("interval", params.uint64))
    def rpc_anvil_setIntervalMining(self, seconds):
        """Seconds between blocks, 0 to stop (anvil's unit)."""
        if seconds and not MIN_INTERVAL_SECONDS <= seconds <= MAX_INTERVAL_SECONDS:
            raise ParamError("interval", f"0 (off) or {MIN_INTERVAL_SECONDS} to {MAX_INTERVAL_SECONDS} seconds")
        self.node.set_mining(interval=seconds)

    @takes(Param("interval", params.uint64))
    def rpc_evm_setIntervalMining(self, milliseconds):
        """Milliseconds between blocks, 0 to stop (Hardhat's unit)."""
        if milliseconds and not 1000 * MIN_INTERVAL_SECONDS <= milliseconds <= 1000 * MAX_INTERVAL_SECONDS:
            raise ParamError("interval", f"0 (off) or {1000 * MIN_INTERVAL_SECONDS} to "
                                         f"{1000 * MAX_INTERVAL_SECONDS} milliseconds")
        self.node.set_mining(interval=milliseconds / 1000)
        return True

    # --- time --------------------------------------------------------------------------------
    @takes(Param("seconds", params.uint64))
    def rpc_evm_increaseTime(self, seconds):
        """Move the clock forward; answers the total offset in seconds."""
        clock = self.node.clock
        if clock.now() + seconds > MAX_TIMESTAMP:
            raise ParamError("seconds", f"the clock would pass {MAX_TIMESTAMP} (the year 3000)")
        clock.offset += seconds
        return clock.offset

    @takes(TIMESTAMP)
    def rpc_evm_setNextBlockTimestamp(self, timestamp):
        self._check_next_timestamp(timestamp, "timestamp")
        self.node.clock.fixed = timestamp

    rpc_anvil_increaseTime, rpc_anvil_setNextBlockTimestamp = rpc_evm_increaseTime, rpc_evm_setNextBlockTimestamp

    def _check_next_timestamp(self, timestamp: int, name: str) -> None:
        head = self.chain.head.timestamp
        if timestamp <= head:
            raise ParamError(name, f"{timestamp} is not after the latest block's timestamp {head}")
        if timestamp > MAX_TIMESTAMP:
            raise ParamError(name, f"{timestamp} is after {MAX_TIMESTAMP} (the year 3000)")

    # --- state -------------------------------------------------------------------------------
    @takes(ADDRESS, Param("balance", params.uint256))
    def rpc_anvil_setBalance(self, address, balance):
        self.node.edit_state(lambda state: state.set_balance(address, balance))

    @takes(ADDRESS, Param("code", params.data))
    def rpc_anvil_setCode(self, address, code):
        self.node.edit_state(lambda state: state.set_code(address, code))

    @takes(ADDRESS, Param("nonce", params.uint64))
    def rpc_anvil_setNonce(self, address, nonce):
        self.node.edit_state(lambda state: state.set_nonce(address, nonce))

    @takes(ADDRESS, Param("slot", params.uint256), Param("value", params.hash32))
    def rpc_anvil_setStorageAt(self, address, slot, value):
        self.node.edit_state(lambda state: state.set_storage(address, slot, int.from_bytes(value, "big")))

    rpc_hardhat_setBalance = _answering_true(rpc_anvil_setBalance)
    rpc_hardhat_setCode = _answering_true(rpc_anvil_setCode)
    rpc_hardhat_setStorageAt = _answering_true(rpc_anvil_setStorageAt)

    @takes(ADDRESS, Param("nonce", params.uint64))
    def rpc_hardhat_setNonce(self, address, nonce):
        """As ``anvil_setNonce``, but never lower (Hardhat's rule)."""
        current = self.chain.state().get_nonce(address)
        if nonce < current:
            raise ParamError("nonce", f"{nonce} is lower than the account's nonce {current}")
        self.rpc_anvil_setNonce(address, nonce)
        return True

    # --- dump and load -----------------------------------------------------------------------
    def rpc_anvil_dumpState(self):
        """The head state's accounts, gzip-compressed JSON (:mod:`ogevm.node.dump`)."""
        return data(pack(self.node.dump_state()))

    @takes(Param("state", params.data))
    def rpc_anvil_loadState(self, raw):
        self.node.load_state(raw)
        return True

    # --- impersonation -----------------------------------------------------------------------
    @takes(ADDRESS)
    def rpc_anvil_impersonateAccount(self, address):
        self.node.impersonate(address)

    rpc_hardhat_impersonateAccount = _answering_true(rpc_anvil_impersonateAccount)

    @takes(ADDRESS)
    def rpc_anvil_stopImpersonatingAccount(self, address):
        self.node.impersonate(address, on=False)

    @takes(ADDRESS)
    def rpc_hardhat_stopImpersonatingAccount(self, address):
        """Whether ``address`` was impersonated (Hardhat's answer)."""
        return self.node.impersonate(address, on=False)
