"""``eth_getLogs`` and the polling filters (``eth_newFilter`` and friends), kept in memory."""

from __future__ import annotations

import itertools
import threading
from dataclasses import replace

from ogevm.node import params
from ogevm.node.params import LogFilter, Param, ParamError, takes
from ogevm.node.rpc.base import FILTER_ID, Namespace, data, qty
from ogevm.node.rpc.shapes import log_json, log_matches


class FilterMethods(Namespace):
    def __init__(self, node) -> None:
        self._filters: dict[str, dict] = {}
        self._filter_ids = itertools.count(1)
        self._filter_lock = threading.Lock()
        super().__init__(node)

    @takes(Param("filter", params.log_filter))
    def rpc_eth_getLogs(self, criteria):
        return self._logs(criteria)

    @takes(Param("filter", params.log_filter))
    def rpc_eth_newFilter(self, criteria):
        self._block_range(criteria)  # unknown blocks are refused now, not at the first poll
        start = self.chain.head.block_number + 1 if criteria.from_block == "latest" else \
            self._header(criteria.from_block, "filter.fromBlock").block_number
        return self._new_filter({"kind": "logs", "criteria": criteria, "next": start})

    def rpc_eth_newBlockFilter(self):
        return self._new_filter({"kind": "blocks", "next": self.chain.head.block_number + 1})

    def rpc_eth_newPendingTransactionFilter(self):
        return self._new_filter({"kind": "pending", "seen": set()})

    @takes(FILTER_ID)
    def rpc_eth_getFilterChanges(self, filter_id):
        with self._filter_lock:
            flt = self._filters.get(filter_id)
            if flt is None:
                raise ParamError("filterId", "filter not found")
            head = self.chain.head.block_number
            if flt["kind"] == "pending":
                hashes = [e.hash for e in self.node.pipeline.pool.entries() if e.hash not in flt["seen"]]
                flt["seen"].update(hashes)
                return [data(h) for h in hashes]
            start, flt["next"] = flt["next"], head + 1
            if flt["kind"] == "blocks":
                return [data(self.chain.chain.get_canonical_block_header_by_number(n).hash)
                        for n in range(start, head + 1)]
            if start > head:
                return []
            return self._logs(replace(flt["criteria"], from_block=start, to_block=head))

    @takes(FILTER_ID)
    def rpc_eth_getFilterLogs(self, filter_id):
        flt = self._filters.get(filter_id)
        if flt is None or flt["kind"] != "logs":
            raise ParamError("filterId", "filter not found")
        return self._logs(flt["criteria"])

    @takes(FILTER_ID)
    def rpc_eth_uninstallFilter(self, filter_id):
        with self._filter_lock:
            return self._filters.pop(filter_id, None) is not None

    # --- helpers ----------------------------------------------------------------------------------
    def _new_filter(self, flt: dict) -> str:
        with self._filter_lock:
            filter_id = qty(next(self._filter_ids))
            self._filters[filter_id] = flt
            return filter_id

    def _block_range(self, criteria: LogFilter) -> range:
        if criteria.block_hash is not None:
            number = self._header(criteria.block_hash, "filter.blockHash").block_number
            return range(number, number + 1)
        start = self._header(criteria.from_block, "filter.fromBlock").block_number
        stop = self._header(criteria.to_block, "filter.toBlock").block_number
        return range(start, stop + 1)

    def _logs(self, criteria: LogFilter) -> list[dict]:
        found = []
        for number in self._block_range(criteria):
            block = self.chain.chain.get_canonical_block_by_number(number)
            receipts = block.get_receipts(self.chain.chain.chaindb)
            log_index = 0
            for tx_index, receipt in enumerate(receipts):
                for log in receipt.logs:
                    if log_matches(log, criteria):
                        found.append(log_json(log, block, tx_index, log_index))
                    log_index += 1
        return found
