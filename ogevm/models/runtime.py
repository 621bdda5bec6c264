"""Running models: an LRU cache of onnxruntime sessions and the encoded result of a run."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Sequence

import numpy as np
import onnxruntime as ort

from ogevm.abi.types import ModelOutput
from ogevm.errors import ModelExecutionError
from ogevm.models.binding import Feeds, encode_outputs
from ogevm.models.store import ModelInfo, ModelStore, session_options


class ModelRuntime:
    """Runs stored models; keeps at most ``capacity`` sessions, least recently used out.

    Sessions use one intra-op thread each (parallelism comes from the caller's pool);
    ``run`` is safe from several threads, onnxruntime releases the GIL while it runs.
    ``providers`` are onnxruntime's execution providers, in order of preference.
    """

    def __init__(self, store: ModelStore, capacity: int = 32,
                 providers: Sequence[str] = ("CPUExecutionProvider",)) -> None:
        self.store = store
        self.capacity = capacity
        self.providers = list(providers)
        self._sessions: OrderedDict[str, ort.InferenceSession] = OrderedDict()
        self._lock = threading.Lock()

    def session(self, cid: str) -> ort.InferenceSession:
        """The cached session of ``cid``, created from hash-checked bytes on a miss."""
        with self._lock:
            session = self._sessions.get(cid)
            if session is not None:
                self._sessions.move_to_end(cid)
                return session
        session = ort.InferenceSession(
            self.store.load(cid), session_options(), providers=self.providers
        )
        with self._lock:
            self._sessions[cid] = session
            self._sessions.move_to_end(cid)
            while len(self._sessions) > self.capacity:
                self._sessions.popitem(last=False)
        return session

    def run_raw(self, info: ModelInfo, feeds: Feeds) -> list:
        """What onnxruntime returns for ``feeds``. Raises :class:`ModelExecutionError`."""
        try:
            return self.session(info.cid).run(None, dict(feeds))
        except Exception as exc:  # onnxruntime's own exception types are not exported
            # The reason can end up in contract state: keep it free of version-specific text.
            raise ModelExecutionError("model execution failed: onnxruntime rejected the input") from exc

    def run(self, info: ModelInfo, feeds: Feeds) -> ModelOutput:
        """Run the model and encode its outputs canonically.

        Raises :class:`ModelExecutionError` when onnxruntime fails and
        :class:`~ogevm.errors.InvalidOutput` when an output cannot be encoded.
        """
        return encode_outputs(info, self.run_raw(info, feeds))


def stack_feeds(info: ModelInfo, batch: list[Feeds]) -> tuple[dict[str, np.ndarray], list[int]]:
    """Concatenate several requests' feeds along the leading dimension; return their sizes."""
    sizes = [len(feeds[info.inputs[0].name]) for feeds in batch]
    stacked = {spec.name: np.concatenate([f[spec.name] for f in batch]) for spec in info.inputs}
    return stacked, sizes
