"""A chain database that keeps the changes committed through it, for copies elsewhere.

Simulation workers hold a copy of the chain's database and follow the head by applying
the changes each new block wrote (trie nodes, code, headers, canonical pointers), never
by executing the block again. :class:`RecordingDB` wraps the node's database and
collects those changes; :meth:`RecordingDB.drain` hands them over, :meth:`RecordingDB.contents`
gives a new copy everything.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from eth.abc import AtomicDatabaseAPI, AtomicWriteBatchAPI
from eth.db.atomic import AtomicDB, AtomicDBWriteBatch
from eth.db.backends.base import BaseAtomicDB
from eth.db.backends.memory import MemoryDB

#: Changes by key: the new value, or None for a deleted key.
Changes = dict[bytes, "bytes | None"]


class RecordingDB(BaseAtomicDB):
    """``inner`` (an in-memory ``AtomicDB`` or the node's LevelDB), with every committed
    write recorded until :meth:`drain`. A batch is recorded only once it is committed."""

    def __init__(self, inner: AtomicDatabaseAPI) -> None:
        self.inner = inner
        self._changes: Changes = {}
        self._lock = threading.Lock()

    def __getitem__(self, key: bytes) -> bytes:
        return self.inner[key]

    def __setitem__(self, key: bytes, value: bytes) -> None:
        with self._lock:
            self.inner[key] = value
            self._changes[key] = value

    def __delitem__(self, key: bytes) -> None:
        with self._lock:
            del self.inner[key]
            self._changes[key] = None

    def _exists(self, key: bytes) -> bool:
        return key in self.inner

    @contextmanager
    def atomic_batch(self) -> Iterator[AtomicWriteBatchAPI]:
        committed: Changes = {}
        with self.inner.atomic_batch() as inner_batch:
            with AtomicDBWriteBatch._commit_unless_raises(_Tee(inner_batch, committed)) as batch:
                yield batch
        with self._lock:
            self._changes.update(committed)

    def drain(self) -> Changes:
        """The changes committed since the last drain (the latest write of each key)."""
        with self._lock:
            changes, self._changes = self._changes, {}
        return changes

    def contents(self) -> Changes:
        """Every key and value of the database (what a new copy starts from)."""
        inner = self.inner
        if isinstance(inner, AtomicDB) and isinstance(inner.wrapped_db, MemoryDB):
            return dict(inner.wrapped_db.kv_store)
        if hasattr(inner, "prefixed"):  # ogevm.node.leveldb.LevelDB
            return dict(inner.prefixed(b""))
        raise TypeError(f"cannot copy a {type(inner).__name__}: use AtomicDB or LevelDB")


def apply_changes(db: AtomicDatabaseAPI, changes: Changes) -> None:
    """Apply ``changes`` (from :meth:`RecordingDB.drain` or ``contents``) to a copy, atomically."""
    with db.atomic_batch() as batch:
        for key, value in changes.items():
            if value is None:
                batch.delete(key)
            else:
                batch[key] = value


class _Tee:
    """Writes a committed batch into the inner database's batch and records them."""

    def __init__(self, target, committed: Changes) -> None:
        self._target = target
        self._committed = committed

    def __getitem__(self, key: bytes) -> bytes:
        return self._target[key]

    def __contains__(self, key: bytes) -> bool:
        return key in self._target

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._target[key] = value
        self._committed[key] = value

    def __delitem__(self, key: bytes) -> None:
        del self._target[key]
        self._committed[key] = None
