"""Proving ZKML requests: witnesses and proofs from a circuit's proving key, in this
process or in worker processes, and the result a ZKML request returns."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from ogevm.abi.types import ModelOutput
from ogevm.errors import InvalidInput, ProofInvalid, ResultUnavailable, ZkmlUnsupported
from ogevm.tensors import array_to_exact_number_tensor
from ogevm.verify.zkml.backend import Scratch, call_ezkl, first_line
from ogevm.verify.zkml.checker import CircuitVerifier
from ogevm.verify.zkml.circuits import CircuitInfo
from ogevm.verify.zkml.encoding import encode_proof, felt_to_int

if TYPE_CHECKING:
    from ogevm.models.store import ModelInfo


class CircuitStore(CircuitVerifier):
    """ezkl artifacts of models (:class:`~ogevm.verify.zkml.circuits.CircuitFiles`) that
    check proofs and, where the proving files are present, make them. A store holding only
    a circuit's verifying files checks its proofs; proving with it raises KeyError."""

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
            columns = [[felt_to_int(felt) for felt in column] for column in witness["outputs"]]
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
            call_ezkl("prove", "prove", witness=str(witness), model=str(self._path(cid, "model.compiled")),
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

    def _gen_witness(self, info: CircuitInfo, feeds: Mapping[str, np.ndarray], output: Path,
                     scratch: "Scratch") -> dict:
        """ezkl's witness for ``feeds``, written to ``output``; refuses values ezkl cannot prove.

        ezkl computes a witness for a value outside its lookup tables (``Ln``, ``Sigmoid``...)
        without complaint, and its prover then never returns (measured with ezkl 23.0.5:
        ``Log`` of an input beyond the table hangs the calling thread for good). So the
        witness's lookup inputs are checked against the table range the settings declare.
        """
        data = scratch.write("input", self._input_json(info, feeds))
        witness = call_ezkl("compute the witness", "gen_witness", data=str(data),
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


def prove_in_process(directory: Path | str, cid: str, feeds: Mapping[str, np.ndarray]):
    """:meth:`CircuitStore.prove` in a fresh store on ``directory``: for process pools.

    Every argument and the result pickle, so this can be submitted to a
    ``concurrent.futures.ProcessPoolExecutor``. Raises what :meth:`CircuitStore.prove` raises.
    """
    return CircuitStore(directory).prove(cid, dict(feeds))


def _from_ezkl_proof_file(data: bytes) -> bytes:
    """The canonical encoding of the proof in ezkl's proof file (one column of public values)."""
    try:
        snark = json.loads(data)
        (column,) = snark["instances"]
        felts = [int.from_bytes(bytes.fromhex(felt), "little") for felt in column]
        body = bytes(snark["proof"])
        return encode_proof(felts, body)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ZkmlUnsupported(f"ezkl returned a proof file this version cannot read: {first_line(exc)}") from exc


@contextlib.contextmanager
def request_failures(model_cid: str):
    """Turn a ZKML request's failures into the inference errors (revert reasons) that INLINE
    and the executor both give: no circuit here, or a request the circuit cannot prove."""
    try:
        yield
    except KeyError as exc:
        raise ResultUnavailable(f"no ZKML circuit for model {model_cid!r} on this node") from exc
    except ZkmlUnsupported as exc:
        raise InvalidInput(f"ZKML cannot prove this request: {exc.reason}") from exc


def zk_output(info: ModelInfo, outputs: Sequence[np.ndarray]) -> ModelOutput:
    """The ``ModelOutput`` a ZKML request returns: the proven values, exactly (``n / 2**s``)."""
    return ModelOutput(tuple(array_to_exact_number_tensor(spec.name, np.asarray(value))
                             for spec, value in zip(info.outputs, outputs)), (), (), False)


class ZkProver:
    """Proves requests in worker processes (spawned: ezkl hangs in forked workers)."""

    def __init__(self, directory: Path | str, workers: int = 1) -> None:
        self.directory = Path(directory)
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))

    def prove(self, cid: str, feeds: Mapping[str, np.ndarray]) -> tuple[bytes, list[np.ndarray]]:
        """Proof and proven outputs. Raises ZkmlUnsupported, KeyError (no circuit)."""
        return self._pool.submit(prove_in_process, str(self.directory), cid, dict(feeds)).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
