"""Content-addressed store of ONNX models and the catalogue entry of each.

A model is added as bytes; the store validates it (size, ONNX checker, a loadable
onnxruntime session), computes its CID and gas cost, and keeps a :class:`ModelInfo`.
The bytes are hashed again on every load, so a file changed on disk is never run.
A validator only needs the catalogue (``ModelInfo`` by CID), never the bytes.
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

import onnx
import onnxruntime as ort

from ogevm.constants import MAX_MODEL_BYTES
from ogevm.errors import InvalidModel, ModelIntegrityError, ModelNotFound, ModelStoreError, ModelTooLarge
from ogevm.models.batching import measured_batch_sizes, row_mixing
from ogevm.models.cid import compute_cid, verify_cid
from ogevm.models.cost import ModelCost, analyse_model

# Failures are reported as revert reasons; keep onnxruntime's own log off stderr.
ort.set_default_logger_severity(4)


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output: name, ONNX type (``tensor(float)``...) and shape.

    A shape entry is an int, or a str / None for a symbolic dimension.
    """

    name: str
    type: str
    shape: tuple[int | str | None, ...]

    @property
    def batch_dimension(self) -> bool:
        """True when the leading dimension is symbolic (requests can be stacked on it)."""
        return bool(self.shape) and not isinstance(self.shape[0], int)


@dataclass(frozen=True)
class ModelInfo:
    """Catalogue entry of a model: what the precompile needs without the bytes."""

    cid: str
    size: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    #: Work and largest tensor as functions of a call's input shapes (charged per call).
    cost: ModelCost
    #: Model gas of one row at the smallest shapes (every free dimension 1), for display.
    gas_per_sample: int
    #: Why one request's rows could change another's when stacked (None: they cannot); from
    #: the graph alone, so every node agrees (:func:`~ogevm.models.batching.row_mixing`).
    row_mixing: str | None
    #: Stack sizes this node verified bit-identical to runs alone (empty: never stacked).
    #: A measurement of the local onnxruntime, so not part of the entry's identity.
    batch_sizes: tuple[int, ...] = field(compare=False)

    @property
    def batchable(self) -> bool:
        """Rows are independent: requests may be stacked at the verified ``batch_sizes``."""
        return self.row_mixing is None

    def input(self, name: str) -> TensorSpec | None:
        """The input spec called ``name``, if any."""
        return next((spec for spec in self.inputs if spec.name == name), None)


def session_options() -> ort.SessionOptions:
    """One intra-op and one inter-op thread: parallelism comes from the caller's pool."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 4
    return options


#: Operators that draw random numbers (Dropout is not one: inference runs it as the identity).
RANDOM_OPERATORS = frozenset({"Bernoulli", "Multinomial", "RandomNormal", "RandomNormalLike", "RandomUniform",
                              "RandomUniformLike"})


def random_operators(graph: onnx.GraphProto) -> set[str]:
    """The random operators of ``graph`` and of its subgraphs."""
    found = set()
    for node in graph.node:
        if node.op_type in RANDOM_OPERATORS and node.domain in ("", "ai.onnx"):
            found.add(node.op_type)
        for attribute in node.attribute:
            for subgraph in (*attribute.graphs, *([attribute.g] if attribute.HasField("g") else [])):
                found |= random_operators(subgraph)
    return found


def inspect_model(data: bytes, max_bytes: int = MAX_MODEL_BYTES) -> ModelInfo:
    """Validate ONNX bytes and describe them.

    Raises :class:`ModelTooLarge` over ``max_bytes`` and :class:`InvalidModel` when the
    bytes are not ONNX, fail the checker, or onnxruntime cannot load them.
    """
    if len(data) > max_bytes:
        raise ModelTooLarge(len(data), max_bytes)
    try:
        model = onnx.load_model_from_string(data)
        onnx.checker.check_model(model)
    except Exception as exc:  # the ONNX parser and checker raise several unrelated types
        raise InvalidModel(f"not a valid ONNX model: {_first_line(exc)}") from exc
    if not model.graph.node:
        raise InvalidModel("not a valid ONNX model: the graph has no nodes")
    drawn = sorted(random_operators(model.graph))
    if drawn:
        raise InvalidModel(f"the model draws random numbers ({', '.join(drawn)}): its output would not be a "
                           "function of its input, so a call and its replay could disagree")
    cost = analyse_model(model)
    try:
        session = ort.InferenceSession(data, session_options(), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own unexported exception types
        raise InvalidModel(f"onnxruntime cannot load the model: {_first_line(exc)}") from exc
    inputs = tuple(_spec(arg) for arg in session.get_inputs())
    cid = compute_cid(data)
    mixing = row_mixing(model)
    batch_sizes = () if mixing else measured_batch_sizes(cid, lambda feeds: session.run(None, feeds), inputs)
    return ModelInfo(
        cid=cid,
        size=len(data),
        inputs=inputs,
        outputs=tuple(_spec(arg) for arg in session.get_outputs()),
        cost=cost,
        gas_per_sample=cost.gas(cost.minimal_values(), rows=1),
        row_mixing=mixing,
        batch_sizes=batch_sizes,
    )


class ModelStore(Mapping[str, ModelInfo]):
    """Models by CID; a mapping of CID to :class:`ModelInfo` (the catalogue).

    With ``directory`` the bytes live in ``<cid>.onnx`` files there (and the store
    loads the ones present); without, in memory. Safe to use from several threads.
    Language models are apart, in :attr:`llms` (files in ``<directory>/llm/``).
    """

    def __init__(self, directory: Path | str | None = None, max_bytes: int = MAX_MODEL_BYTES):
        self._directory = Path(directory) if directory is not None else None
        self._max_bytes = max_bytes
        self._infos: dict[str, ModelInfo] = {}
        self._memory: dict[str, bytes] = {}
        self._llm_data: dict[str, bytes] = {}
        self._llm_folders: dict[str, tuple[str, str]] = {}
        self._llms = None
        self._llms_lock = threading.Lock()
        self._lock = threading.Lock()
        #: Files of ``directory`` that could not be loaded, with the reason.
        self.skipped: dict[Path, str] = {}
        if self._directory is not None:
            self._directory.mkdir(parents=True, exist_ok=True)
            for path in sorted(self._directory.glob("*.onnx")):
                try:
                    info = self.add(path.read_bytes())
                except ModelStoreError as exc:
                    self.skipped[path] = str(exc)
                    continue
                if path.stem != info.cid:
                    self.skipped[path] = f"file name is not the CID of its bytes ({info.cid})"

    def add(self, data: bytes) -> ModelInfo:
        """Validate and store ``data``; return its catalogue entry (idempotent)."""
        data = bytes(data)
        info = inspect_model(data, self._max_bytes)
        with self._lock:
            if info.cid not in self._infos:
                if self._directory is None:
                    self._memory[info.cid] = data
                else:
                    _write_once(self._directory / f"{info.cid}.onnx", lambda tmp: tmp.write_bytes(data))
                self._infos[info.cid] = info
        return info

    def add_file(self, path: Path | str) -> ModelInfo:
        """Add the model in the file at ``path``."""
        return self.add(Path(path).read_bytes())

    def load(self, cid: str) -> bytes:
        """The model's bytes, hash-checked. Raises :class:`ModelNotFound`, ModelIntegrityError."""
        if cid not in self._infos:
            raise ModelNotFound(cid)
        if self._directory is None:
            data = self._memory[cid]
        else:
            try:
                data = (self._directory / f"{cid}.onnx").read_bytes()
            except OSError as exc:
                raise ModelIntegrityError(f"stored model {cid} cannot be read: {exc.strerror}") from exc
        verify_cid(cid, data)
        return data

    @property
    def llms(self):
        """The language models LLM calls may name (an :class:`~ogevm.llm.LLMRuntime`): the
        fixture model ``tiny_chat``, those kept in ``<directory>/llm/`` and those added with
        :meth:`add_llm` or :meth:`add_llm_folder`. Made on first use (loading a model builds an
        onnxruntime session)."""
        with self._llms_lock:
            if self._llms is None:
                from ogevm.llm import default_runtime

                self._llms = default_runtime()
                if self._directory is not None:
                    self._load_llms(self._directory / "llm")
            return self._llms

    def _load_llms(self, folder: Path) -> None:
        """The language models kept in ``folder``: ``<cid>.onnx`` files and ``<cid>/`` model
        folders (named by ``<cid>.name``); one that fails to load is skipped with the reason."""
        for path in sorted(folder.glob("*")):
            try:
                if path.suffix == ".onnx":
                    self._add_llm(self._llms, path.read_bytes())
                elif path.is_dir() and not path.name.endswith(".tmp"):
                    name = path.with_name(f"{path.name}.name").read_text()
                    self._add_llm_folder(self._llms, path, name, kept_as=path.name)
            except (ModelStoreError, OSError) as exc:
                self.skipped[path] = str(exc)

    def add_llm(self, data: bytes):
        """Validate a language model file (a :class:`~ogevm.llm.WindowModel`), keep its bytes
        (``<directory>/llm/<cid>.onnx``) and make it callable by CID and name; return it."""
        model = self._add_llm(self.llms, bytes(data))
        if self._directory is not None:
            _write_once(self._directory / "llm" / f"{model.cid}.onnx", lambda tmp: tmp.write_bytes(data))
        return model

    def add_llm_folder(self, folder: Path | str, name: str | None = None):
        """Validate an onnxruntime-genai model folder (a :class:`~ogevm.llm.genai.GenaiModel`,
        named ``name`` or after the folder) and make it callable by CID and name; with a
        directory, keep a copy as ``<directory>/llm/<cid>/`` (its name in ``<cid>.name``) so the
        store knows it after a restart. Returns it."""
        folder = Path(folder)
        name = name or folder.name
        if self._directory is None:
            return self._add_llm_folder(self.llms, folder, name)
        from ogevm.llm.genai import GenaiModel

        cid = GenaiModel(folder, name=name).cid  # validates the folder before anything is copied
        kept = self._directory / "llm" / cid
        _write_once(kept, lambda tmp: shutil.copytree(folder, tmp))
        (kept.with_name(f"{cid}.name")).write_text(name)
        return self._add_llm_folder(self.llms, kept, name, kept_as=cid)

    def llm_files(self) -> dict[str, bytes]:
        """The files of the language models added to this store, by CID: what another process
        needs to know the same models."""
        self.llms  # the files of the directory are read with the models
        with self._lock:
            return dict(self._llm_data)

    def llm_folders(self) -> dict[str, tuple[str, str]]:
        """The model folders added to this store, by CID: ``(path, name)``, what another process
        on this machine needs to load the same models."""
        self.llms
        with self._lock:
            return dict(self._llm_folders)

    def _add_llm(self, runtime, data: bytes):
        from ogevm.llm.model import WindowModel

        model = WindowModel(data)
        with self._lock:
            runtime.add(model)
            self._llm_data[model.cid] = data
        return model

    def _add_llm_folder(self, runtime, folder: Path, name: str, kept_as: str | None = None):
        """Load and add a model folder; ``kept_as``: the CID the folder was kept under."""
        from ogevm.llm.genai import GenaiModel

        model = GenaiModel(folder, name=name)
        if kept_as is not None and model.cid != kept_as:
            raise ModelIntegrityError(f"folder name is not the CID of its files ({model.cid})")
        with self._lock:
            runtime.add(model)
            self._llm_folders[model.cid] = (str(folder), name)
        return model

    def __getitem__(self, cid: str) -> ModelInfo:
        return self._infos[cid]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._infos))

    def __len__(self) -> int:
        return len(self._infos)


def _spec(arg) -> TensorSpec:
    return TensorSpec(arg.name, arg.type, tuple(arg.shape))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _write_once(path: Path, write) -> None:
    """``write(tmp)`` a file or folder next to ``path``, then move it into place, unless
    ``path`` exists: a reader never sees half of one."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.is_dir():
        shutil.rmtree(tmp)
    write(tmp)
    tmp.replace(path)
