"""ZKML verification: a proof that a model's circuit maps the request's inputs to its outputs.

A node proves an inference with ezkl (Halo2 over BN254 with KZG commitments); a validator
checks the proof against the model's verifying key, without the model and without running
it. What is proven is the *quantized* circuit, not onnxruntime's float computation: ezkl
works on integers ``round(x * 2**scale)``, so a ZKML result differs from a VANILLA one by up
to a few quantization steps. The proven outputs are exact dyadic rationals (see
:meth:`CircuitStore.witness`), so a result can be compared with a proof bit for bit.

The API is small and explicit on purpose: ezkl is file based, slow to prepare, and its
error messages and file formats are not a stable interface. Everything that touches ezkl
is in :class:`CircuitStore`, which caches each model's artifacts on disk by CID, checks
every proof itself before ezkl sees it, and turns ezkl's failures into one of two errors:
:class:`ZkmlUnsupported` (this model or input cannot be proven) and :class:`ProofInvalid`
(a proof must be rejected).

Rules a client must reproduce (``docs/SPEC.md`` §9):

* Circuit settings: inputs and outputs public, parameters fixed, every symbolic dimension
  set to 1 (one sample per proof), range checks decomposed in 4 legs of base 128;
  ``calibrate_settings(target="resources", scale_rebase_multiplier=[1])`` on
  :func:`calibration_input`; then hash-ordered lists in the settings sorted (see
  :func:`_canonicalize_settings`), so one model and one SRS give one verifying key.
* An input ``x`` at scale ``s`` is the integer ``round_half_away_from_zero(x * 2**s)``.
* A public value is a BN254 scalar-field element ``v`` in ``[0, p)``, 32 bytes little
  endian; it stands for the integer ``n = v`` if ``v <= (p - 1) / 2`` else ``v - p``; an
  output at scale ``s`` is the rational ``n / 2**s``.
* A circuit covers a bounded range: every range-checked value within 2**28 at its scale
  (with scale 13: |value| < 32768), and the inputs of nonlinear lookups (log, sigmoid...)
  within the table calibrated on inputs in [-1, 1] (twice the calibrated range). Requests
  beyond it get :class:`ZkmlUnsupported`, never a proof.
* A proof is stored in its canonical encoding (:func:`encode_proof`), never as ezkl's
  proof file: ezkl reads only some fields of that file, so re-indenting it or changing an
  unread field would give one proof many valid encodings (and one block many bundle roots).
* The SRS is generated locally by ``ezkl.gen_srs``: its secret is known to whoever made it,
  so these proofs only show what they show to someone who trusts that party.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import rlp
from eth_utils import keccak
from rlp.exceptions import RLPException
from rlp.sedes import Binary, CountableList, List

from ogevm.errors import OgevmError, ProofInvalid, ZkmlUnsupported

if TYPE_CHECKING:
    from ogevm.abi.types import ModelOutput
    from ogevm.models.store import ModelInfo

SRS_LABEL = "development SRS (secret known locally: not for production)"

#: The BN254 scalar field modulus: ezkl's public values are elements of this field.
FIELD_MODULUS = 0x30644E72E131A029B85045B68181585D2833E84879B9709143E1F593F0000001

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


class CircuitStore:
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

    # --- preparing circuits ----------------------------------------------------------
    def prepare(self, cid: str, onnx_bytes: bytes) -> CircuitInfo:
        """Build (or find) the circuit of the model ``cid`` whose bytes are ``onnx_bytes``.

        Idempotent: a prepared circuit is returned as it is. Raises
        :class:`~ogevm.errors.ModelIntegrityError` if the bytes do not hash to ``cid``, and
        :class:`ZkmlUnsupported` if ezkl cannot build a circuit for the model.
        """
        from ogevm.models.cid import verify_cid

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

    # --- proving -----------------------------------------------------------------------
    def witness(self, cid: str, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """The outputs the circuit computes for ``feeds``: what a proof would prove.

        Each output element is exactly ``n / 2**scale`` for the circuit's integer ``n`` and
        the output's scale: a float64 array for float outputs (exact: ``|n| <= 2**53``), an
        int64 array for integer and bool outputs (scale 0). Shapes are the circuit's, with
        every symbolic dimension 1.

        Raises KeyError if ``cid`` is not prepared, and :class:`ZkmlUnsupported` when the
        feeds are not one sample of the circuit's shapes (``"ZKML proves one sample per
        request"`` for a batch), hold NaN or infinity, need a value outside the circuit's
        range (``"input outside the range the circuit supports: ..."``), or ezkl cannot
        compute the witness.
        """
        info = self._proving_info(cid)
        with self._scratch(cid) as scratch:
            witness = self._gen_witness(info, feeds, scratch.path("witness"), scratch)
        try:
            columns = [[_felt_to_int(felt) for felt in column] for column in witness["outputs"]]
        except (KeyError, TypeError, ProofInvalid) as exc:
            raise ZkmlUnsupported(f"ezkl returned a witness this version cannot read: {exc}") from exc
        return self._decode_outputs(info, columns)

    def prove(self, cid: str, feeds: Mapping[str, np.ndarray]) -> tuple[bytes, list[np.ndarray]]:
        """A proof for ``feeds`` and the outputs it proves (equal to :meth:`witness`'s).

        The proof is ezkl's, in its canonical encoding (:func:`encode_proof`). It is checked with
        :meth:`verify` (outputs and inputs included) before it is returned, so a proof that
        would fail later is reported here instead.

        Raises KeyError if ``cid`` is not prepared, :class:`ZkmlUnsupported` for everything
        :meth:`witness` rejects, when ezkl fails to prove, or when its proof does not verify.
        """
        info = self._proving_info(cid)
        with self._scratch(cid) as scratch:
            witness = scratch.path("witness")
            proof_path = scratch.path("proof")
            self._gen_witness(info, feeds, witness, scratch)
            _call_ezkl("prove", "prove", witness=str(witness), model=str(self._path(cid, "model.compiled")),
                       pk_path=str(self._path(cid, "pk.key")), proof_path=str(proof_path),
                       srs_path=str(self._srs_path(info.logrows)))
            proof = _from_ezkl_proof_file(proof_path.read_bytes())
        _, values = self._parse(info, proof)
        outputs = self._decode_outputs(info, values[1])
        try:
            self.verify(cid, proof, outputs, feeds)
        except ProofInvalid as exc:
            raise ZkmlUnsupported(
                f"ezkl made a proof that does not verify: {exc.reason}"
            ) from exc
        return proof, outputs

    # --- verifying -----------------------------------------------------------------------
    def verify(
        self,
        cid: str,
        proof: bytes,
        expected_outputs: Sequence[np.ndarray],
        feeds: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Accept ``proof`` as a proof that the circuit of ``cid`` outputs ``expected_outputs``.

        ``expected_outputs`` must equal the proven outputs exactly (``n / 2**scale``, see
        :meth:`witness`), with the same shapes. With ``feeds``, the proof's public inputs
        must also be the quantized ``feeds`` (without them a proof for *any* input is
        accepted: pass them whenever the request is known).

        Raises KeyError if ``cid`` is not prepared, and :class:`ProofInvalid` when the proof
        is not in its canonical encoding (ezkl's proof file included), its public values
        differ from the expected ones, or ezkl rejects it (including a proof made for another
        model's circuit).
        """
        info = self.info(cid)
        snark, (inputs, outputs) = self._parse(info, proof)
        _check_outputs(info, outputs, expected_outputs)
        if feeds is not None:
            quantized = self._quantize_inputs(info, feeds, error=ProofInvalid)
            for name, got, want in zip(info.input_names, inputs, quantized):
                if got != want:
                    raise ProofInvalid(f"the proof is for another value of input {name!r}")
        self._ezkl_verify(info, snark)
        # ezkl stops reading at the proof's end and ignores what follows: without this, one
        # proof would have as many valid encodings as byte strings it can be followed by.
        try:
            self._ezkl_verify(info, {**snark, "proof": snark["proof"][:-1]})
        except ProofInvalid:
            return
        raise ProofInvalid("the proof has bytes after its end")

    def _ezkl_verify(self, info: CircuitInfo, snark: dict) -> None:
        """Raise :class:`ProofInvalid` unless ezkl accepts the proof file ``snark``."""
        with self._scratch(info.cid) as scratch:
            path = scratch.write("verify", snark)
            try:
                ok = _ezkl_module().verify(
                    proof_path=str(path), settings_path=str(self._path(info.cid, "settings.json")),
                    vk_path=str(self._path(info.cid, "vk.key")),
                    srs_path=str(self._srs_path(info.logrows)))
            except Exception as exc:  # ezkl raises RuntimeError, ValueError, panics...
                raise ProofInvalid(f"ezkl rejected the proof: {_first_line(exc)}") from exc
        if ok is not True:
            raise ProofInvalid("ezkl rejected the proof")

    # --- internals -----------------------------------------------------------------------
    def _gen_witness(self, info: CircuitInfo, feeds: Mapping[str, np.ndarray], output: Path,
                     scratch: "_Scratch") -> dict:
        """ezkl's witness for ``feeds``, written to ``output``; refuses values ezkl cannot prove.

        ezkl computes a witness for a value outside its lookup tables (``Ln``, ``Sigmoid``...)
        without complaint, and its prover then never returns (measured with ezkl 23.0.5:
        ``Log`` of an input beyond the table hangs the calling thread for good). So the
        witness's lookup inputs are checked against the table range the settings declare.
        """
        data = scratch.write("input", self._input_json(info, feeds))
        witness = _call_ezkl("compute the witness", "gen_witness", data=str(data),
                             model=str(self._path(info.cid, "model.compiled")), output=str(output))
        low, high = self._meta[info.cid]["lookup_range"]
        if self._meta[info.cid]["lookups"]:
            try:
                least, most = int(witness["min_lookup_inputs"]), int(witness["max_lookup_inputs"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ZkmlUnsupported(f"ezkl returned a witness this version cannot read: {exc}") from exc
            if least < low or most > high:
                raise ZkmlUnsupported(
                    f"input outside the range the circuit supports: a lookup needs "
                    f"[{least}, {most}], the tables cover [{low}, {high}] (scaled integers)"
                )
        return witness

    def _build(self, work: Path, onnx_bytes: bytes) -> None:
        ezkl = _ezkl_module()
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
            with _output_silenced():  # calibration prints a report table
                ezkl.calibrate_settings(data=str(data), model=str(model), settings=str(settings),
                                        target="resources", scale_rebase_multiplier=[SCALE_REBASE_MULTIPLIER])
            _canonicalize_settings(settings)
            ezkl.compile_circuit(model=str(model), compiled_circuit=str(work / "model.compiled"),
                                 settings_path=str(settings))
        except Exception as exc:
            raise ZkmlUnsupported(f"ezkl cannot build a circuit for this model: {_first_line(exc)}") from exc
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
            raise ZkmlUnsupported(f"ezkl setup failed for this model: {_first_line(exc)}") from exc
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
            _ezkl_module().gen_srs(tmp, logrows)
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

    def _scratch(self, cid: str) -> "_Scratch":
        return _Scratch(self.directory / cid)

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
        values = [_signed(felt) for felt in felts]
        columns, start = [], 0
        for size in sizes:
            columns.append(values[start:start + size])
            start += size
        n_in = len(info.input_shapes)
        snark = {"instances": [[felt.to_bytes(32, "little").hex() for felt in felts]], "proof": list(body)}
        return snark, (columns[:n_in], columns[n_in:])


class _Scratch:
    """Temporary files in a circuit's directory, removed on exit."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._paths: list[Path] = []

    def path(self, stem: str) -> Path:
        fd, name = tempfile.mkstemp(prefix=f".tmp-{stem}-", suffix=".json", dir=self.directory)
        os.close(fd)
        path = Path(name)
        self._paths.append(path)
        return path

    def write(self, stem: str, content: dict) -> Path:
        path = self.path(stem)
        path.write_text(json.dumps(content))
        return path

    def __enter__(self) -> "_Scratch":
        return self

    def __exit__(self, *exc) -> None:
        for path in self._paths:
            path.unlink(missing_ok=True)


def prove_in_process(directory: Path | str, cid: str, feeds: Mapping[str, np.ndarray]):
    """:meth:`CircuitStore.prove` in a fresh store on ``directory``: for process pools.

    Every argument and the result pickle, so this can be submitted to a
    ``concurrent.futures.ProcessPoolExecutor``. Raises what :meth:`CircuitStore.prove` raises.
    """
    return CircuitStore(directory).prove(cid, dict(feeds))


#: The canonical proof: ``rlp([public values, proof bytes])``, each public value a 32-byte
#: little-endian field element, the proof bytes ezkl's (not empty).
_PROOF_SEDES = List([CountableList(Binary.fixed_length(32)), Binary(min_length=1)], strict=True)
_NOT_CANONICAL = "the proof is not in its canonical encoding (rlp([public values, proof bytes]))"


def encode_proof(felts: Sequence[int], body: bytes) -> bytes:
    """The one encoding of a proof with public values ``felts`` (field elements in ``[0, p)``)
    and proof bytes ``body``: what records store and node signatures cover."""
    return rlp.encode([[felt.to_bytes(32, "little") for felt in felts], bytes(body)], sedes=_PROOF_SEDES)


def decode_proof(proof: bytes) -> tuple[list[int], bytes]:
    """The public values (field elements) and proof bytes of a canonical proof.

    Raises :class:`ProofInvalid` unless ``proof`` is exactly ``encode_proof`` of what it
    decodes to: other RLP forms, trailing bytes, a public value of another length or not
    below the field modulus, or an empty proof are all refused.
    """
    try:
        raw_felts, body = rlp.decode(bytes(proof), sedes=_PROOF_SEDES, strict=True)
    except (RLPException, RecursionError, TypeError) as exc:  # nested lists recurse in rlp
        raise ProofInvalid(_NOT_CANONICAL) from exc
    felts = [int.from_bytes(raw, "little") for raw in raw_felts]
    if any(felt >= FIELD_MODULUS for felt in felts):
        raise ProofInvalid("a public value is not a canonical field element")
    if encode_proof(felts, body) != bytes(proof):
        raise ProofInvalid(_NOT_CANONICAL)
    return felts, body


def _from_ezkl_proof_file(data: bytes) -> bytes:
    """The canonical encoding of the proof in ezkl's proof file (one column of public values)."""
    try:
        snark = json.loads(data)
        (column,) = snark["instances"]
        felts = [int.from_bytes(bytes.fromhex(felt), "little") for felt in column]
        body = bytes(snark["proof"])
        return encode_proof(felts, body)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ZkmlUnsupported(f"ezkl returned a proof file this version cannot read: {_first_line(exc)}") from exc


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


# --- helpers ---------------------------------------------------------------------------
def _call_ezkl(what: str, function: str, **kwargs):
    """Call an ezkl function; its failure means this request cannot be proven."""
    try:
        return getattr(_ezkl_module(), function)(**kwargs)
    except Exception as exc:  # ezkl raises RuntimeError, ValueError, panics...
        raise ZkmlUnsupported(f"ezkl cannot {what} for this request: {_first_line(exc)}") from exc


@contextlib.contextmanager
def _output_silenced():
    """Send file descriptors 1 and 2 to /dev/null: ezkl's Rust code writes its calibration
    report there directly (its failures still arrive as exceptions)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)


def _ezkl_module():
    os.environ.setdefault("RUST_LOG", "error")  # ezkl's calibration report otherwise goes to stdout
    try:
        import ezkl
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ZkmlUnsupported("ZKML needs the ezkl package (pip install 'ogevm[zkml]')") from exc
    return ezkl


def _onnx_inputs(onnx_bytes: bytes) -> list[tuple[str, str, tuple[int | str, ...]]]:
    """(name, "float" | "int" | "bool", shape) of each graph input, in order."""
    import onnx

    try:
        graph = onnx.load_model_from_string(onnx_bytes).graph
    except Exception as exc:  # the ONNX parser raises several unrelated types
        raise ZkmlUnsupported(f"ezkl cannot build a circuit for this model: {_first_line(exc)}") from exc
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


def _felt_to_int(felt) -> int:
    """The signed integer a public value (64 hex digits, little endian) stands for."""
    if not isinstance(felt, str) or len(felt) != 64:
        raise ProofInvalid("a public value is not 32 bytes of hex")
    try:
        value = int.from_bytes(bytes.fromhex(felt), "little")
    except ValueError as exc:
        raise ProofInvalid("a public value is not 32 bytes of hex") from exc
    if value >= FIELD_MODULUS:
        raise ProofInvalid("a public value is not a canonical field element")
    return _signed(value)


def _signed(felt: int) -> int:
    """The signed integer a field element stands for."""
    return felt - FIELD_MODULUS if felt > FIELD_MODULUS // 2 else felt


def _check_outputs(info: CircuitInfo, proven: list[list[int]], expected: Sequence[np.ndarray]) -> None:
    if len(expected) != len(proven):
        raise ProofInvalid(f"{len(expected)} expected outputs; the circuit has {len(proven)}")
    for index, (ints, scale, shape, want) in enumerate(
        zip(proven, info.output_scales, info.output_shapes, expected)
    ):
        want = np.asarray(want)
        if want.shape != shape:
            raise ProofInvalid(f"expected output {index} has shape {list(want.shape)}; the circuit's is {list(shape)}")
        unit = Fraction(2) ** scale
        for position, (n, value) in enumerate(zip(ints, want.reshape(-1).tolist())):
            if isinstance(value, float) and not np.isfinite(value):
                raise ProofInvalid(f"expected output {index} contains NaN or infinity")
            if Fraction(value) * unit != n:
                raise ProofInvalid(
                    f"output {index}[{position}] is {Fraction(n) / unit} in the proof, not {value}"
                )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


# --- using circuits in the pipeline ------------------------------------------------------
@contextlib.contextmanager
def request_failures(model_cid: str):
    """Turn a ZKML request's failures into the inference errors (revert reasons) that INLINE
    and the executor both give: no circuit here, or a request the circuit cannot prove."""
    from ogevm.errors import InvalidInput, ResultUnavailable

    try:
        yield
    except KeyError as exc:
        raise ResultUnavailable(f"no ZKML circuit for model {model_cid!r} on this node") from exc
    except ZkmlUnsupported as exc:
        raise InvalidInput(f"ZKML cannot prove this request: {exc.reason}") from exc


def zk_output(info: ModelInfo, outputs: Sequence[np.ndarray]) -> ModelOutput:
    """The ``ModelOutput`` a ZKML request returns: the proven values, exactly (``n / 2**s``)."""
    from ogevm.abi.types import ModelOutput
    from ogevm.tensors import array_to_exact_number_tensor

    return ModelOutput(tuple(array_to_exact_number_tensor(spec.name, np.asarray(value))
                             for spec, value in zip(info.outputs, outputs)), (), (), False)


def expected_outputs(output: ModelOutput) -> list[np.ndarray]:
    """The arrays a ZKML ``output`` claims, for :meth:`CircuitStore.verify`."""
    from ogevm.tensors import number_to_fraction

    arrays = []
    for tensor in output.numbers:
        values = [number_to_fraction(number) for number in tensor.values]
        if all(value.denominator == 1 for value in values):
            arrays.append(np.array([int(v) for v in values], dtype=np.int64).reshape(tensor.shape))
        else:
            arrays.append(np.array([float(v) for v in values], dtype=np.float64).reshape(tensor.shape))
    return arrays


class ZkProver:
    """Proves requests in worker processes (spawned: ezkl hangs in forked workers)."""

    def __init__(self, directory: Path | str, workers: int = 1) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.directory = Path(directory)
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))

    def prove(self, cid: str, feeds: Mapping[str, np.ndarray]) -> tuple[bytes, list[np.ndarray]]:
        """Proof and proven outputs. Raises ZkmlUnsupported, KeyError (no circuit)."""
        return self._pool.submit(prove_in_process, str(self.directory), cid, dict(feeds)).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class CircuitProofChecker:
    """A validator's ZKML check against a circuit store's verifying keys."""

    def __init__(self, circuits: CircuitStore) -> None:
        self.circuits = circuits

    def vk_hash(self, model_cid: str) -> bytes:
        try:
            return self.circuits.info(model_cid).vk_hash
        except KeyError:
            return b""

    def check(self, record, feeds: Mapping[str, np.ndarray]) -> None:
        """Raise :class:`ProofInvalid` unless ``record.proof`` proves its output for ``feeds``."""
        try:
            self.circuits.verify(record.model_cid, record.proof, expected_outputs(record.result.output), feeds)
        except KeyError as exc:
            raise ProofInvalid(f"no circuit for model {record.model_cid}") from exc
