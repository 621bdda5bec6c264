"""Block time of the dev node: the wall clock moved by ``evm_increaseTime``, or a timestamp
fixed for the next block by ``evm_setNextBlockTimestamp`` (as anvil and Hardhat keep it)."""

from __future__ import annotations

import time
from dataclasses import dataclass

#: Latest block timestamp the dev node accepts (the year 3000): time travel stays in range.
MAX_TIMESTAMP = 32_503_680_000


@dataclass
class DevClock:
    """``offset`` seconds added to the wall clock; ``fixed``: the next block's timestamp."""

    offset: int = 0
    fixed: int | None = None

    def now(self) -> int:
        return int(time.time()) + self.offset

    def next_block(self, parent_timestamp: int) -> int:
        """The timestamp of a block on a parent with ``parent_timestamp``."""
        if self.fixed is not None:
            return self.fixed
        return max(self.now(), parent_timestamp + 1)

    def sealed(self, timestamp: int) -> None:
        """A block with ``timestamp`` was sealed: a fixed time is used up and later blocks
        follow on from it (the offset moves with it)."""
        if self.fixed is not None:
            self.offset = timestamp - int(time.time())
            self.fixed = None
