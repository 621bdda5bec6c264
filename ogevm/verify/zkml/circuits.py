"""Circuits of models: built with ezkl, cached on disk by model CID, and the mapping
between a request's arrays and the circuit's integers (inputs quantized, outputs scaled)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from eth_utils import keccak

from ogevm.errors import OgevmError, ProofInvalid, ZkmlUnsupported
from ogevm.models.cid import verify_cid
from ogevm.verify.zkml.backend import Scratch, ezkl_module, first_line, output_silenced
from ogevm.verify.zkml.encoding import decode_proof, signed

SRS_LABEL = "development SRS (secret known locally: not for production)"

#: Range checks are decomposed in ``DECOMP_LEGS`` digits of ``DECOMP_BASE``: the same
#: 2**28 range as ezkl's default (2 legs of 16384), but a 128-row table instead of a
#: 16384-row one, so small models fit in 2**11 rows instead of 2**15 (setup and proving
#: are about 20 times faster).
DECOMP_BASE = 128
DECOMP_LEGS = 4

#: Rescale after every multiplication (ezkl's calibration otherwise picks 10 for small
#: models, leaving outputs at twice the input scale: with the 2**28 range above, an output
#: at scale 26 must stay within +-4, so ``x = [1, 2, 3, 4]`` could not be proven for the
#: linear regression fixture, whose output is 7.1).
SCALE_REBASE_MULTIPLIER = 1

#: Seed and size of the calibration input (see :func:`calibration_input`).
CALIBRATION_SEED = 0
CALIBRATION_SAMPLES = 8

#: What checking a proof needs (a validator's store holds only these, and the SRS)...
_VERIFYING_ARTIFACTS = ("settings.json", "vk.key", "circuit.json")
#: ...and what computing witnesses and proofs needs on top.
_PROVING_ARTIFACTS = ("model.compiled", "pk.key")
_ARTIFACTS = _VERIFYING_ARTIFACTS + _PROVING_ARTIFACTS
_MAX_EXACT = 2**53  # |n| up to this is exact in float64 once divided by 2**scale


@dataclass(frozen=True)
class CircuitInfo:
    """What a verifier needs to know about a model's circuit, besides its files.

    ``vk_hash`` is ``keccak256`` of the verifying-key file; it depends on the model *and* on
    the SRS, so two stores with different SRS files give different hashes for one model.
    """

    cid: str
    vk_hash: bytes
    logrows: int
    input_scales: tuple[int, ...]
    output_scales: tuple[int, ...]
    input_names: tuple[str, ...]
    input_shapes: tuple[tuple[int, ...], ...]
    output_shapes: tuple[tuple[int, ...], ...]
    srs: str = SRS_LABEL


class CircuitFiles:
    """ezkl artifacts of models, cached on disk by model CID.

    Layout: ``<directory>/<cid>/`` holds ``settings.json``, ``model.compiled``, ``vk.key``,
    ``pk.key`` and ``circuit.json`` (input names, dtypes and the SRS hash);
    ``<directory>/srs/kzg<logrows>.srs`` holds one development SRS per size, shared by all
    circuits of that size. A circuit directory appears atomically (built aside, then
    renamed), so several processes may share one store; temporary files live in the
    circuit's directory and are removed after each call.
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._infos: dict[str, CircuitInfo] = {}
        self._meta: dict[str, dict] = {}

    def prepare(self, cid: str, onnx_bytes: bytes) -> CircuitInfo:
        """Build (or find) the circuit of the model ``cid`` whose bytes are ``onnx_bytes``.

        Idempotent: a prepared circuit is returned as it is. Raises
        :class:`~ogevm.errors.ModelIntegrityError` if the bytes do not hash to ``cid``, and
        :class:`ZkmlUnsupported` if ezkl cannot build a circuit for the model.
        """
        verify_cid(cid, onnx_bytes)
        with self._lock:
            try:
                return self._load(cid)
            except KeyError:
                pass
            final = self.directory / cid
            if final.exists():  # incomplete or built on an SRS that has since changed
                shutil.rmtree(final, ignore_errors=True)
            work = Path(tempfile.mkdtemp(prefix=f".build-{cid}-", dir=self.directory))
            try:
                self._build(work, onnx_bytes)
                try:
                    os.rename(work, final)
                except OSError:  # another process finished first: keep its circuit
                    pass
            finally:
                shutil.rmtree(work, ignore_errors=True)
            return self._load(cid)

    def info(self, cid: str) -> CircuitInfo:
        """The prepared circuit of ``cid``. Raises KeyError if it is not prepared (or stale)."""
        with self._lock:
            return self._load(cid)

    def _proving_info(self, cid: str) -> CircuitInfo:
        """:meth:`info`, for a store that can also prove with it (a validator's cannot)."""
        info = self.info(cid)
        if not all(self._path(cid, name).is_file() for name in _PROVING_ARTIFACTS):
            raise KeyError(f"the circuit of model {cid} has only its verifying files here: it can check "
                           "proofs, not make them")
        return info

    def export(self, cid: str) -> dict[str, bytes]:
        """The prepared circuit's files (and its SRS) by path under the store: what another
        machine's store needs to prove with it (see :meth:`install`). Raises KeyError."""
        info = self._proving_info(cid)
        paths = [self._path(cid, name) for name in _ARTIFACTS] + [self._srs_path(info.logrows)]
        return {str(path.relative_to(self.directory)): path.read_bytes() for path in paths}

    def install(self, files: Mapping[str, bytes]) -> None:
        """Write files from :meth:`export` that this store lacks (each appears atomically)."""
        for name, content in files.items():
            if Path(name).is_absolute() or ".." in Path(name).parts:
                raise ValueError(f"circuit file outside the store: {name!r}")
            path = self.directory / name
            if path.is_file():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".install-", dir=path.parent)
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
            os.replace(tmp, path)

    def _build(self, work: Path, onnx_bytes: bytes) -> None:
        ezkl = ezkl_module()
        specs = _onnx_inputs(onnx_bytes)
        model = work / "model.onnx"
        model.write_bytes(onnx_bytes)
        settings = work / "settings.json"
        run_args = ezkl.PyRunArgs()
        run_args.input_visibility = "public"
        run_args.output_visibility = "public"
        run_args.param_visibility = "fixed"
        run_args.decomp_base = DECOMP_BASE
        run_args.decomp_legs = DECOMP_LEGS
        symbols = sorted({d for _, _, shape in specs for d in shape if isinstance(d, str)})
        if symbols:
            run_args.variables = [(symbol, 1) for symbol in symbols]
        data = work / "calibration.json"
        data.write_text(json.dumps({"input_data": calibration_input(specs)}))
        try:
            ezkl.gen_settings(model=str(model), output=str(settings), py_run_args=run_args)
            with output_silenced():  # calibration prints a report table
                ezkl.calibrate_settings(data=str(data), model=str(model), settings=str(settings),
                                        target="resources", scale_rebase_multiplier=[SCALE_REBASE_MULTIPLIER])
            _canonicalize_settings(settings)
            ezkl.compile_circuit(model=str(model), compiled_circuit=str(work / "model.compiled"),
                                 settings_path=str(settings))
        except Exception as exc:
            raise ZkmlUnsupported(f"ezkl cannot build a circuit for this model: {first_line(exc)}") from exc
        parsed = json.loads(settings.read_text())
        logrows = int(parsed["run_args"]["logrows"])
        shapes = parsed["model_instance_shapes"]
        if len(shapes) != len(specs) + len(parsed["model_output_scales"]):
            raise ZkmlUnsupported("ezkl cannot build a circuit for this model: unexpected public values")
        srs = self._ensure_srs(logrows)
        try:
            ok = ezkl.setup(model=str(work / "model.compiled"), vk_path=str(work / "vk.key"),
                            pk_path=str(work / "pk.key"), srs_path=str(srs))
        except Exception as exc:
            raise ZkmlUnsupported(f"ezkl setup failed for this model: {first_line(exc)}") from exc
        if ok is not True:
            raise ZkmlUnsupported("ezkl setup failed for this model")
        model.unlink()
        data.unlink()
        meta = {
            "inputs": [{"name": name, "dtype": dtype} for name, dtype, _ in specs],
            "output_types": [str(t) for t in parsed.get("output_types") or []],
            "srs_keccak": keccak(srs.read_bytes()).hex(),
        }
        (work / "circuit.json").write_text(json.dumps(meta, sort_keys=True))

    def _load(self, cid: str) -> CircuitInfo:
        if cid in self._infos:
            return self._infos[cid]
        base = self.directory / cid
        if not all((base / name).is_file() for name in _VERIFYING_ARTIFACTS):
            raise KeyError(f"no prepared circuit for model {cid}")
        settings = json.loads((base / "settings.json").read_text())
        meta = json.loads((base / "circuit.json").read_text())
        logrows = int(settings["run_args"]["logrows"])
        srs = self._srs_path(logrows)
        if not srs.is_file() or keccak(srs.read_bytes()).hex() != meta["srs_keccak"]:
            raise KeyError(f"the circuit of model {cid} was set up with an SRS this store no longer has")
        n_in = len(meta["inputs"])
        shapes = [tuple(int(d) for d in shape) for shape in settings["model_instance_shapes"]]
        info = CircuitInfo(
            cid=cid,
            vk_hash=keccak((base / "vk.key").read_bytes()),
            logrows=logrows,
            input_scales=tuple(int(s) for s in settings["model_input_scales"]),
            output_scales=tuple(int(s) for s in settings["model_output_scales"]),
            input_names=tuple(spec["name"] for spec in meta["inputs"]),
            input_shapes=tuple(shapes[:n_in]),
            output_shapes=tuple(shapes[n_in:]),
        )
        meta["lookup_range"] = [int(v) for v in settings["run_args"].get("lookup_range") or (0, 0)]
        meta["lookups"] = bool(settings.get("required_lookups"))
        self._meta[cid] = meta
        self._infos[cid] = info
        return info

    def _ensure_srs(self, logrows: int) -> Path:
        path = self._srs_path(logrows)
        if path.is_file():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".kzg{logrows}-", suffix=".srs", dir=path.parent)
        os.close(fd)
        try:
            ezkl_module().gen_srs(tmp, logrows)
            try:
                os.link(tmp, path)  # atomic create-if-absent: never replace a used SRS
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
        return path

    def _srs_path(self, logrows: int) -> Path:
        return self.directory / "srs" / f"kzg{logrows}.srs"

    def _path(self, cid: str, name: str) -> Path:
        return self.directory / cid / name

    def _scratch(self, cid: str) -> "Scratch":
        return Scratch(self.directory / cid)

    def _decode_outputs(self, info: CircuitInfo, columns: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Output arrays from the circuit's signed integers and the output scales."""
        types = self._meta[info.cid]["output_types"]
        outputs = []
        for index, (ints, scale, shape) in enumerate(zip(columns, info.output_scales, info.output_shapes)):
            if scale == 0 and index < len(types) and types[index] in ("Int", "Bool"):
                outputs.append(np.array(ints, dtype=np.int64).reshape(shape))
                continue
            if any(abs(n) > _MAX_EXACT for n in ints):
                raise ZkmlUnsupported("a proven output is too large to represent exactly in float64")
            outputs.append((np.array(ints, dtype=np.float64) / np.float64(2.0**scale)).reshape(shape))
        return outputs

    def _quantize_inputs(self, info: CircuitInfo, feeds: Mapping[str, np.ndarray],
                         error: type[OgevmError] = ZkmlUnsupported) -> list[list[int]]:
        """The integers ezkl feeds the circuit: ``round_half_away(x * 2**scale)`` per value."""
        columns = []
        for name, scale, arr in zip(info.input_names, info.input_scales, self._arrays(info, feeds, error)):
            unit = Fraction(2) ** scale
            column = []
            for value in arr.reshape(-1).tolist():
                exact = Fraction(value) * unit
                magnitude = (abs(exact) + Fraction(1, 2)).__floor__()
                column.append(-magnitude if exact < 0 else magnitude)
            columns.append(column)
        return columns

    def _input_json(self, info: CircuitInfo, feeds: Mapping[str, np.ndarray]) -> dict:
        return {"input_data": [arr.reshape(-1).tolist() for arr in self._arrays(info, feeds)]}

    def _arrays(self, info: CircuitInfo, feeds: Mapping[str, np.ndarray],
                error: type[OgevmError] = ZkmlUnsupported) -> list[np.ndarray]:
        dtypes = {spec["name"]: spec["dtype"] for spec in self._meta[info.cid]["inputs"]}
        arrays = []
        for name, shape in zip(info.input_names, info.input_shapes):
            if name not in feeds:
                raise error(f"missing input {name!r}")
            arr = np.asarray(feeds[name])
            if arr.shape != shape:
                if arr.ndim == len(shape) and arr.ndim and arr.shape[0] != shape[0]:
                    raise error("ZKML proves one sample per request")
                raise error(f"input {name!r} has shape {list(arr.shape)}; the circuit takes {list(shape)}")
            if arr.dtype.kind == "f":
                if not np.all(np.isfinite(arr)):
                    raise error(f"input {name!r} contains NaN or infinity")
                arr = arr.astype(np.float64)  # exact; tolist() gives Python floats
            elif arr.dtype.kind in "iub":
                arr = arr.astype(np.int64) if dtypes[name] != "float" else arr.astype(np.float64)
            else:
                raise error(f"input {name!r} has dtype {arr.dtype}, which a circuit cannot take")
            arrays.append(arr)
        return arrays

    def _parse(self, info: CircuitInfo, proof: bytes) -> tuple[dict, tuple[list[list[int]], list[list[int]]]]:
        """Decode a canonical proof; return the proof file ezkl will verify and the signed
        public values, split into inputs and outputs."""
        felts, body = decode_proof(proof)
        sizes = [int(np.prod(s)) for s in (*info.input_shapes, *info.output_shapes)]
        if len(felts) != sum(sizes):
            raise ProofInvalid(
                f"the proof has {len(felts)} public values; the circuit of {info.cid} has {sum(sizes)}"
            )
        values = [signed(felt) for felt in felts]
        columns, start = [], 0
        for size in sizes:
            columns.append(values[start:start + size])
            start += size
        n_in = len(info.input_shapes)
        snark = {"instances": [[felt.to_bytes(32, "little").hex() for felt in felts]], "proof": list(body)}
        return snark, (columns[:n_in], columns[n_in:])


def calibration_input(specs: Sequence[tuple[str, str, tuple]]) -> list[list[float | int]]:
    """The deterministic input a circuit is calibrated on, as ezkl's ``input_data``.

    ``CALIBRATION_SAMPLES`` samples (symbolic dimensions 1), concatenated per input: all
    -1, all +1, then uniform draws in [-1, 1] from ``numpy.random.default_rng(CALIBRATION_SEED)``
    (integers: -1, 0 or 1; bools: 0 or 1; bools are all 0, then all 1, for the first two),
    drawn sample by sample and, within a sample, input by input in graph order.
    """
    rng = np.random.default_rng(CALIBRATION_SEED)
    data: list[list] = [[] for _ in specs]
    for sample in range(CALIBRATION_SAMPLES):
        for column, (_, dtype, shape) in zip(data, specs):
            size = int(np.prod([d if isinstance(d, int) else 1 for d in shape]))
            if dtype == "bool":
                values = [1 if sample == 1 else 0] * size if sample < 2 else rng.integers(0, 2, size).tolist()
            elif dtype == "int":
                values = [(-1, 1)[sample]] * size if sample < 2 else rng.integers(-1, 2, size).tolist()
            else:
                values = [(-1.0, 1.0)[sample]] * size if sample < 2 else rng.uniform(-1, 1, size).tolist()
            column.extend(values)
    return data


def _onnx_inputs(onnx_bytes: bytes) -> list[tuple[str, str, tuple[int | str, ...]]]:
    """(name, "float" | "int" | "bool", shape) of each graph input, in order."""
    import onnx

    try:
        graph = onnx.load_model_from_string(onnx_bytes).graph
    except Exception as exc:  # the ONNX parser raises several unrelated types
        raise ZkmlUnsupported(f"ezkl cannot build a circuit for this model: {first_line(exc)}") from exc
    initializers = {init.name for init in graph.initializer}
    specs = []
    for value in graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        if not value.type.HasField("tensor_type"):
            raise ZkmlUnsupported(f"ezkl cannot build a circuit for this model: input {value.name!r} is not a tensor")
        elem = onnx.TensorProto.DataType.Name(tensor.elem_type)
        if elem in ("FLOAT", "DOUBLE", "FLOAT16", "BFLOAT16"):
            kind = "float"
        elif elem == "BOOL":
            kind = "bool"
        elif elem.startswith("INT") or elem.startswith("UINT"):
            kind = "int"
        else:
            raise ZkmlUnsupported(
                f"ezkl cannot build a circuit for this model: input {value.name!r} has type {elem.lower()}"
            )
        shape = []
        for dim in tensor.shape.dim:
            if dim.HasField("dim_value"):
                shape.append(int(dim.dim_value))
            elif dim.dim_param:
                shape.append(dim.dim_param)
            else:
                raise ZkmlUnsupported(
                    f"model is not batch-1 compatible: input {value.name!r} has an unnamed free dimension"
                )
        specs.append((value.name, kind, tuple(shape)))
    return specs


def _canonicalize_settings(path: Path) -> None:
    """Make ezkl's settings file a function of the model alone.

    ezkl writes some sets in hash order, which changes from one process to the next, and
    the order of ``required_range_checks`` decides the circuit's table layout: without
    sorting, one model gets a different verifying key in every process, even on the same
    SRS. Sorting them (and zeroing the timestamp, and sorting keys) fixes the layout.
    """
    settings = json.loads(path.read_text())
    for key in ("required_range_checks", "required_lookups"):
        if isinstance(settings.get(key), list):
            settings[key] = sorted(settings[key], key=lambda item: json.dumps(item, sort_keys=True))
    if "timestamp" in settings:
        settings["timestamp"] = 0
    path.write_text(json.dumps(settings, sort_keys=True))
