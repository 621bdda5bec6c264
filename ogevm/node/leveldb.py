"""A LevelDB database for py-evm (via plyvel), with atomic batches on disk.

py-evm 0.12 ships only an in-memory backend; a dev node needs its chain to survive a
crash. Every ``atomic_batch`` becomes one LevelDB write batch, so a block is either
entirely on disk or not at all.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import plyvel
from eth.abc import AtomicWriteBatchAPI
from eth.db.atomic import AtomicDBWriteBatch
from eth.db.backends.base import BaseAtomicDB


class LevelDB(BaseAtomicDB):
    """A py-evm ``AtomicDatabaseAPI`` stored in a LevelDB directory."""

    def __init__(self, path: Path | str) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        self.db = plyvel.DB(str(path), create_if_missing=True)

    def __getitem__(self, key: bytes) -> bytes:
        value = self.db.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.db.put(key, value)

    def __delitem__(self, key: bytes) -> None:
        if self.db.get(key) is None:
            raise KeyError(key)
        self.db.delete(key)

    def _exists(self, key: bytes) -> bool:
        return self.db.get(key) is not None

    @contextmanager
    def atomic_batch(self) -> Iterator[AtomicWriteBatchAPI]:
        with _LevelDBWriteBatch._commit_unless_raises(self) as batch:
            yield batch

    def prefixed(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """(key without prefix, value) of every key starting with ``prefix``."""
        for key, value in self.db.iterator(prefix=prefix):
            yield key[len(prefix):], value

    def close(self) -> None:
        self.db.close()


class _LevelDBWriteBatch(AtomicDBWriteBatch):
    def _commit(self) -> None:
        target: LevelDB = self._write_target_db
        with target.db.write_batch(transaction=True) as batch:
            self._diff().apply_to(_BatchWriter(batch), apply_deletes=True)


class _BatchWriter:
    """Lets ``DBDiff.apply_to`` write into a plyvel write batch."""

    def __init__(self, batch) -> None:
        self._batch = batch

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._batch.put(key, value)

    def __delitem__(self, key: bytes) -> None:
        self._batch.delete(key)
